//! Credentials in storage: password hashes, sign-in sessions (and retiring the guests that
//! are done), applications and their tokens.

use super::{Application, AuthSession, StoreResult};
use crate::clock::Millis;
use crate::directory::UserId;
use async_trait::async_trait;

#[async_trait]
pub trait CredentialStore: Send + Sync {
    async fn password_hash(&self, id: UserId) -> StoreResult<Option<String>>;
    async fn set_password_hash(&self, id: UserId, hash: Option<String>) -> StoreResult<()>;
    async fn create_session(&self, session: AuthSession) -> StoreResult<()>;
    /// A live session: not expired by `now`, of a user not disabled — or of a retired guest
    /// (its chat is over; the runtime lets it read and rate, nothing more).
    async fn session(&self, token_hash: &str, now: Millis) -> StoreResult<Option<AuthSession>>;
    async fn delete_session(&self, token_hash: &str) -> StoreResult<()>;
    async fn delete_sessions_of(&self, user: UserId) -> StoreResult<()>;
    /// Make a user's sessions end at `at` at the latest (those that would live longer).
    async fn end_sessions_of(&self, user: UserId, at: Millis) -> StoreResult<()>;
    /// Delete the sessions that expired by `now`; returns how many.
    async fn prune_sessions(&self, now: Millis) -> StoreResult<u64>;
    /// Retire, in one transaction, the guests that are done: disabled, their sessions
    /// deleted. Done is: every queue chat of theirs is over (closed, abandoned, overflowed
    /// — an offline message is not), or — for guests made before `created_before` — they
    /// never got a chat, or have no session left at `now`. Guests are never deleted: the
    /// archive and the chats' records name them. Returns the guests retired.
    async fn retire_finished_guests(&self, created_before: Millis, now: Millis) -> StoreResult<Vec<UserId>>;
    async fn create_application(
        &self,
        name: &str,
        token_hash: &str,
        scopes: &[String],
        now: Millis,
    ) -> StoreResult<Application>;
    async fn application(&self, token_hash: &str) -> StoreResult<Option<Application>>;
    async fn applications(&self) -> StoreResult<Vec<Application>>;
    async fn revoke_application(&self, name: &str) -> StoreResult<()>;
}
