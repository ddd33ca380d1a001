//! The directory: users, groups, roles, addresses.

use crate::error::CoreError;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub i64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId(pub i64);

/// A canonical address `name@domain`: lower case, validated. Used for users, and later for
/// queues and the alert sender, which are reachable like people. It is also an XMPP bare JID.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address(String);

impl Address {
    pub fn parse(raw: &str) -> Result<Self, CoreError> {
        let s = raw.trim().to_lowercase();
        let bad = |why: &str| CoreError::Invalid(format!("invalid address {raw:?}: {why}"));
        if s.len() > 254 {
            return Err(bad("longer than 254 characters"));
        }
        let (local, domain) = s.split_once('@').ok_or_else(|| bad("expected name@domain"))?;
        if local.is_empty() || domain.is_empty() {
            return Err(bad("expected name@domain"));
        }
        let local_ok = local.chars().all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '+'));
        let domain_ok = domain.split('.').all(|l| !l.is_empty() && l.chars().all(|c| c.is_alphanumeric() || c == '-'));
        if !local_ok {
            return Err(bad("the name may hold letters, digits and . _ - +"));
        }
        if !domain_ok {
            return Err(bad("the domain is not a host name"));
        }
        Ok(Self(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn local(&self) -> &str {
        self.0.split('@').next().unwrap_or_default()
    }
    pub fn domain(&self) -> &str {
        self.0.split('@').nth(1).unwrap_or_default()
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Roles from PRODUCT.md. A user may hold several.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    User,
    Expert,
    QueueManager,
    Admin,
    ComplianceOfficer,
    Auditor,
    /// A website visitor without an account: may use one queue chat and nothing else.
    Guest,
    /// A queue's own directory entry (its address, reachable like a person). Never signs in;
    /// the server speaks for it.
    Queue,
    /// A sender the server speaks for (the alerts address). Never signs in.
    Service,
}

impl Role {
    pub const ALL: [Role; 9] = [
        Role::User,
        Role::Expert,
        Role::QueueManager,
        Role::Admin,
        Role::ComplianceOfficer,
        Role::Auditor,
        Role::Guest,
        Role::Queue,
        Role::Service,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Expert => "expert",
            Role::QueueManager => "queue_manager",
            Role::Admin => "admin",
            Role::ComplianceOfficer => "compliance_officer",
            Role::Auditor => "auditor",
            Role::Guest => "guest",
            Role::Queue => "queue",
            Role::Service => "service",
        }
    }
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| CoreError::Invalid(format!("unknown role {s:?}")))
    }
    /// Roles stored as a comma-separated list.
    pub fn parse_list(s: &str) -> Vec<Role> {
        let mut v: Vec<Role> = s.split(',').filter_map(|r| Role::parse(r.trim()).ok()).collect();
        v.sort();
        v.dedup();
        v
    }
    pub fn join(roles: &[Role]) -> String {
        roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(",")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub address: Address,
    pub display_name: String,
    pub email: String,
    pub locale: String,
    pub roles: Vec<Role>,
    pub disabled: bool,
}

impl User {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    pub fn is_guest(&self) -> bool {
        self.has_role(Role::Guest)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub address: Address,
    pub display_name: String,
    pub email: String,
    pub locale: String,
    pub roles: Vec<Role>,
    /// An Argon2id PHC string, or `None` for an account that cannot sign in with a password.
    pub password_hash: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: GroupId,
    /// Short stable name (slug), e.g. `engineering`.
    pub slug: String,
    pub name: String,
}

/// A validated group slug: lower-case letters, digits and `-`.
pub fn parse_slug(raw: &str) -> Result<String, CoreError> {
    let s = raw.trim().to_lowercase();
    if s.is_empty() || s.len() > 64 || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(CoreError::Invalid(format!("invalid id {raw:?}: use 1-64 of a-z, 0-9 and -")));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_canonical_and_validated() {
        assert_eq!(Address::parse(" Alice@Example.COM ").unwrap().as_str(), "alice@example.com");
        for bad in ["", "alice", "@x.com", "a@", "a b@x.com", "a@x..com", "<img>@x.com"] {
            assert!(Address::parse(bad).is_err(), "{bad:?} accepted");
        }
        let a = Address::parse("bob.smith@corp.example").unwrap();
        assert_eq!((a.local(), a.domain()), ("bob.smith", "corp.example"));
    }

    #[test]
    fn roles_round_trip() {
        let roles = Role::parse_list("admin, user,bogus,admin");
        assert_eq!(roles, vec![Role::User, Role::Admin]);
        assert_eq!(Role::join(&roles), "user,admin");
    }
}
