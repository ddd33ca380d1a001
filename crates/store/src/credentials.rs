//! Credentials in storage: password hashes, sign-in sessions (and retiring the guests that
//! are done), applications and their tokens.

use crate::{decode, unavailable, SqlStore};
use async_trait::async_trait;
use sb_core::store::{Application, AuthSession, CredentialStore, StoreResult};
use sb_core::{Millis, StoreError, UserId};
use sqlx::any::AnyRow;
use sqlx::Row;

fn app_from_row(r: &AnyRow) -> Result<Application, sqlx::Error> {
    Ok(Application {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        scopes: r.try_get::<String, _>("scopes")?.split_whitespace().map(str::to_string).collect(),
        created_at: r.try_get("created_at")?,
        revoked: r.try_get::<i64, _>("revoked")? != 0,
    })
}

#[async_trait]
impl CredentialStore for SqlStore {
    async fn password_hash(&self, id: UserId) -> StoreResult<Option<String>> {
        let h: Option<Option<String>> = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(h.flatten())
    }

    async fn set_password_hash(&self, id: UserId, hash: Option<String>) -> StoreResult<()> {
        self.exec_one(sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2").bind(hash).bind(id.0)).await
    }

    async fn create_session(&self, s: AuthSession) -> StoreResult<()> {
        sqlx::query("INSERT INTO auth_sessions (token_hash, user_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&s.token_hash)
            .bind(s.user.0)
            .bind(&s.csrf_token)
            .bind(s.created_at)
            .bind(s.expires_at)
            .execute(&self.writer)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn session(&self, token_hash: &str, now: Millis) -> StoreResult<Option<AuthSession>> {
        let row = sqlx::query(
            "SELECT s.token_hash, s.user_id, s.csrf_token, s.created_at, s.expires_at FROM auth_sessions s \
             JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1 AND s.expires_at > $2 \
             AND (u.disabled = 0 OR u.roles = 'guest')",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        row.map(|r| {
            Ok(AuthSession {
                token_hash: r.try_get("token_hash")?,
                user: UserId(r.try_get("user_id")?),
                csrf_token: r.try_get("csrf_token")?,
                created_at: r.try_get("created_at")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .transpose()
        .map_err(unavailable)
    }

    async fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM auth_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.writer)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn delete_sessions_of(&self, user: UserId) -> StoreResult<()> {
        sqlx::query("DELETE FROM auth_sessions WHERE user_id = $1")
            .bind(user.0)
            .execute(&self.writer)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn end_sessions_of(&self, user: UserId, at: Millis) -> StoreResult<()> {
        sqlx::query("UPDATE auth_sessions SET expires_at = $1 WHERE user_id = $2 AND expires_at > $1")
            .bind(at)
            .bind(user.0)
            .execute(&self.writer)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn prune_sessions(&self, now: Millis) -> StoreResult<u64> {
        let r = sqlx::query("DELETE FROM auth_sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.writer)
            .await
            .map_err(unavailable)?;
        Ok(r.rows_affected())
    }

    async fn retire_finished_guests(&self, created_before: Millis, now: Millis) -> StoreResult<Vec<UserId>> {
        let mut tx = self.begin_write().await?;
        let ids: Vec<i64> = sqlx::query_scalar(
            "UPDATE users SET disabled = 1 WHERE roles = 'guest' AND disabled = 0 AND ( \
               (NOT EXISTS (SELECT 1 FROM queue_chats q WHERE q.seeker_id = users.id \
                            AND q.state IN ('queued', 'assigned', 'wrap_up', 'offline')) \
                AND (EXISTS (SELECT 1 FROM queue_chats q WHERE q.seeker_id = users.id) OR created_at < $1)) \
               OR (created_at < $1 AND NOT EXISTS (SELECT 1 FROM auth_sessions s \
                                                   WHERE s.user_id = users.id AND s.expires_at > $2))) \
             RETURNING id",
        )
        .bind(created_before)
        .bind(now)
        .fetch_all(&mut *tx)
        .await
        .map_err(unavailable)?;
        if !ids.is_empty() {
            // Ids we just read; inlined, one statement for both dialects.
            let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
            sqlx::query(&format!("DELETE FROM auth_sessions WHERE user_id IN ({list})"))
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(ids.into_iter().map(UserId).collect())
    }

    async fn create_application(
        &self,
        name: &str,
        token_hash: &str,
        scopes: &[String],
        now: Millis,
    ) -> StoreResult<Application> {
        let row = sqlx::query(
            "INSERT INTO applications (name, token_hash, scopes, created_at, revoked) VALUES ($1, $2, $3, $4, 0) \
             RETURNING id, name, scopes, created_at, revoked",
        )
        .bind(name)
        .bind(token_hash)
        .bind(scopes.join(" "))
        .bind(now)
        .fetch_one(&self.writer)
        .await
        .map_err(|e| match unavailable(e) {
            StoreError::Conflict(_) => StoreError::Conflict(format!("application {name} already exists")),
            other => other,
        })?;
        app_from_row(&row).map_err(unavailable)
    }

    async fn application(&self, token_hash: &str) -> StoreResult<Option<Application>> {
        let row = sqlx::query(
            "SELECT id, name, scopes, created_at, revoked FROM applications WHERE token_hash = $1 AND revoked = 0",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        row.as_ref().map(app_from_row).transpose().map_err(unavailable)
    }

    async fn applications(&self) -> StoreResult<Vec<Application>> {
        let rows = sqlx::query("SELECT id, name, scopes, created_at, revoked FROM applications ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        decode(rows, app_from_row)
    }

    async fn revoke_application(&self, name: &str) -> StoreResult<()> {
        self.exec_one(sqlx::query("UPDATE applications SET revoked = 1 WHERE name = $1").bind(name)).await
    }
}
