//! The directory in storage: users and their roles, groups and memberships.

use crate::{decode, unavailable, SqlStore};
use async_trait::async_trait;
use sb_core::directory::NewUser;
use sb_core::store::{DirectoryStore, StoreResult};
use sb_core::{Address, Group, GroupId, Millis, Role, StoreError, User, UserId};
use sqlx::any::AnyRow;
use sqlx::Row;

const USER_COLS: &str = "id, address, display_name, email, locale, roles, disabled";

fn user_from_row(r: &AnyRow) -> Result<User, sqlx::Error> {
    let address: String = r.try_get("address")?;
    Ok(User {
        id: UserId(r.try_get("id")?),
        address: Address::parse(&address).map_err(|e| sqlx::Error::Decode(e.to_string().into()))?,
        display_name: r.try_get("display_name")?,
        email: r.try_get("email")?,
        locale: r.try_get("locale")?,
        roles: Role::parse_list(&r.try_get::<String, _>("roles")?),
        disabled: r.try_get::<i64, _>("disabled")? != 0,
    })
}

fn group_from_row(r: &AnyRow) -> Result<Group, sqlx::Error> {
    Ok(Group { id: GroupId(r.try_get("id")?), slug: r.try_get("slug")?, name: r.try_get("name")? })
}

#[async_trait]
impl DirectoryStore for SqlStore {
    async fn create_user(&self, u: NewUser, now: Millis) -> StoreResult<User> {
        let row = sqlx::query(&format!(
            "INSERT INTO users (address, display_name, email, locale, roles, password_hash, disabled, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 0, $7) RETURNING {USER_COLS}"
        ))
        .bind(u.address.as_str())
        .bind(&u.display_name)
        .bind(&u.email)
        .bind(&u.locale)
        .bind(Role::join(&u.roles))
        .bind(u.password_hash)
        .bind(now)
        .fetch_one(&self.writer)
        .await
        .map_err(|e| match unavailable(e) {
            StoreError::Conflict(_) => StoreError::Conflict(format!("user {} already exists", u.address)),
            other => other,
        })?;
        user_from_row(&row).map_err(unavailable)
    }

    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        let row = sqlx::query(&format!("SELECT {USER_COLS} FROM users WHERE id = $1"))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.as_ref().map(user_from_row).transpose().map_err(unavailable)
    }

    async fn user_by_address(&self, address: &Address) -> StoreResult<Option<User>> {
        let row = sqlx::query(&format!("SELECT {USER_COLS} FROM users WHERE address = $1"))
            .bind(address.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.as_ref().map(user_from_row).transpose().map_err(unavailable)
    }

    async fn users(&self, query: &str, limit: i64) -> StoreResult<Vec<User>> {
        let needle: String = query.to_lowercase().chars().filter(|c| !matches!(c, '%' | '_' | '\\')).collect();
        let pattern = format!("%{needle}%");
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLS} FROM users WHERE address LIKE $1 OR lower(display_name) LIKE $2 ORDER BY display_name, address LIMIT $3"
        ))
        .bind(&pattern)
        .bind(&pattern)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        decode(rows, user_from_row)
    }

    async fn users_by_addresses(&self, addresses: &[Address]) -> StoreResult<Vec<User>> {
        let mut out = Vec::with_capacity(addresses.len());
        for chunk in addresses.chunks(500) {
            let list = (1..=chunk.len()).map(|i| self.ph(i)).collect::<Vec<_>>().join(", ");
            let sql = format!("SELECT {USER_COLS} FROM users WHERE address IN ({list})");
            let mut q = sqlx::query(&sql);
            for a in chunk {
                q = q.bind(a.as_str());
            }
            out.extend(decode(q.fetch_all(&self.pool).await.map_err(unavailable)?, user_from_row)?);
        }
        Ok(out)
    }

    async fn users_by_ids(&self, ids: &[UserId]) -> StoreResult<Vec<User>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(1000) {
            // Ids are integers: inlined, one statement for both dialects.
            let list = chunk.iter().map(|u| u.0.to_string()).collect::<Vec<_>>().join(",");
            let rows = sqlx::query(&format!("SELECT {USER_COLS} FROM users WHERE id IN ({list})"))
                .fetch_all(&self.pool)
                .await
                .map_err(unavailable)?;
            out.extend(decode(rows, user_from_row)?);
        }
        Ok(out)
    }

    async fn count_users(&self) -> StoreResult<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&self.pool).await.map_err(unavailable)
    }

    async fn set_roles(&self, id: UserId, roles: &[Role]) -> StoreResult<()> {
        self.exec_one(sqlx::query("UPDATE users SET roles = $1 WHERE id = $2").bind(Role::join(roles)).bind(id.0)).await
    }

    async fn set_disabled(&self, id: UserId, disabled: bool) -> StoreResult<()> {
        self.exec_one(sqlx::query("UPDATE users SET disabled = $1 WHERE id = $2").bind(i64::from(disabled)).bind(id.0))
            .await
    }

    async fn create_group(&self, slug: &str, name: &str) -> StoreResult<Group> {
        let id: i64 = sqlx::query_scalar("INSERT INTO directory_groups (slug, name) VALUES ($1, $2) RETURNING id")
            .bind(slug)
            .bind(name)
            .fetch_one(&self.writer)
            .await
            .map_err(|e| match unavailable(e) {
                StoreError::Conflict(_) => StoreError::Conflict(format!("group {slug} already exists")),
                other => other,
            })?;
        Ok(Group { id: GroupId(id), slug: slug.to_string(), name: name.to_string() })
    }

    async fn groups(&self) -> StoreResult<Vec<Group>> {
        let rows = sqlx::query("SELECT id, slug, name FROM directory_groups ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        decode(rows, group_from_row)
    }

    async fn group(&self, slug: &str) -> StoreResult<Option<Group>> {
        let row = sqlx::query("SELECT id, slug, name FROM directory_groups WHERE slug = $1")
            .bind(slug)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.as_ref().map(group_from_row).transpose().map_err(unavailable)
    }

    async fn delete_group(&self, id: GroupId) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM group_members WHERE group_id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        sqlx::query("DELETE FROM directory_groups WHERE id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)
    }

    async fn add_group_member(&self, group: GroupId, user: UserId) -> StoreResult<()> {
        sqlx::query("INSERT INTO group_members (group_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(group.0)
            .bind(user.0)
            .execute(&self.writer)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn remove_group_member(&self, group: GroupId, user: UserId) -> StoreResult<()> {
        sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND user_id = $2")
            .bind(group.0)
            .bind(user.0)
            .execute(&self.writer)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn group_memberships(&self) -> StoreResult<Vec<(GroupId, UserId)>> {
        let rows = sqlx::query("SELECT group_id, user_id FROM group_members")
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(|r| Ok((GroupId(r.try_get("group_id")?), UserId(r.try_get("user_id")?))))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(unavailable)
    }

    async fn groups_of(&self, user: UserId) -> StoreResult<Vec<Group>> {
        let rows = sqlx::query(
            "SELECT g.id, g.slug, g.name FROM directory_groups g JOIN group_members m ON m.group_id = g.id WHERE m.user_id = $1 ORDER BY g.name",
        )
        .bind(user.0)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        decode(rows, group_from_row)
    }
}
