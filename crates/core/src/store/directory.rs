//! The directory in storage: users and their roles, groups and memberships.

use super::StoreResult;
use crate::clock::Millis;
use crate::directory::{Address, Group, GroupId, NewUser, Role, User, UserId};
use async_trait::async_trait;

#[async_trait]
pub trait DirectoryStore: Send + Sync {
    async fn create_user(&self, user: NewUser, now: Millis) -> StoreResult<User>;
    async fn user(&self, id: UserId) -> StoreResult<Option<User>>;
    async fn user_by_address(&self, address: &Address) -> StoreResult<Option<User>>;
    async fn users(&self, query: &str, limit: i64) -> StoreResult<Vec<User>>;
    /// The users with these addresses (those that exist), in any order.
    async fn users_by_addresses(&self, addresses: &[Address]) -> StoreResult<Vec<User>>;
    /// The users with these ids (those that exist), in any order.
    async fn users_by_ids(&self, ids: &[UserId]) -> StoreResult<Vec<User>>;
    async fn count_users(&self) -> StoreResult<i64>;
    async fn set_roles(&self, id: UserId, roles: &[Role]) -> StoreResult<()>;
    async fn set_disabled(&self, id: UserId, disabled: bool) -> StoreResult<()>;
    async fn create_group(&self, slug: &str, name: &str) -> StoreResult<Group>;
    async fn groups(&self) -> StoreResult<Vec<Group>>;
    async fn group(&self, slug: &str) -> StoreResult<Option<Group>>;
    async fn delete_group(&self, id: GroupId) -> StoreResult<()>;
    async fn add_group_member(&self, group: GroupId, user: UserId) -> StoreResult<()>;
    async fn remove_group_member(&self, group: GroupId, user: UserId) -> StoreResult<()>;
    /// Every (group, user) pair, for the directory-by-group view.
    async fn group_memberships(&self) -> StoreResult<Vec<(GroupId, UserId)>>;
    async fn groups_of(&self, user: UserId) -> StoreResult<Vec<Group>>;
}
