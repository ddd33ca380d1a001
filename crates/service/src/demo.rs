//! The demo organisation (`serve --demo`): enough people, groups and roles to try
//! everything at once. Every demo password is `demo`; the binary says so loudly.

use crate::{auth, Result, Service};
use sb_core::directory::NewUser;
use sb_core::queue::{QueueDef, QueueMember, RoutingMethod};
use sb_core::{Address, CoreError, Role};

pub const DEMO_PASSWORD: &str = "demo";

/// (local part, display name, group slug, extra roles)
const PEOPLE: &[(&str, &str, &str, &[Role])] = &[
    ("alice", "Alice Anderson", "engineering", &[]),
    ("bob", "Bob Brown", "engineering", &[]),
    ("carol", "Carol Clark", "engineering", &[]),
    ("dave", "Dave Davis", "engineering", &[]),
    ("erin", "Erin Evans", "engineering", &[]),
    ("frank", "Frank Fischer", "sales", &[Role::Expert]),
    ("grace", "Grace Garcia", "sales", &[Role::Expert]),
    ("heidi", "Heidi Hill", "sales", &[Role::Expert, Role::QueueManager]),
    ("ivan", "Ivan Ivanov", "sales", &[Role::Expert]),
    ("judy", "Judy Jones", "support", &[Role::Expert]),
    ("mallory", "Mallory Moore", "support", &[Role::Expert]),
    ("niaj", "Niaj Nguyen", "support", &[Role::Expert]),
    ("olivia", "Olivia Olsen", "support", &[Role::Expert, Role::QueueManager]),
    ("peggy", "Peggy Parker", "finance", &[]),
    ("rupert", "Rupert Reed", "finance", &[]),
    ("sybil", "Sybil Scott", "finance", &[Role::Auditor]),
    ("trent", "Trent Turner", "legal", &[Role::ComplianceOfficer]),
    ("victor", "Victor Vance", "legal", &[]),
    ("walter", "Walter White", "legal", &[]),
    ("wendy", "Wendy Wu", "legal", &[]),
];

const GROUPS: &[(&str, &str)] = &[
    ("engineering", "Engineering"),
    ("sales", "Sales"),
    ("support", "Support"),
    ("finance", "Finance"),
    ("legal", "Legal"),
];

/// (id, display name, routing method, welcome, members)
const QUEUES: &[(&str, &str, RoutingMethod, &str, &[&str])] = &[
    (
        "support",
        "Demo Support",
        RoutingMethod::LongestIdle,
        "Welcome to Demo Support. An expert will be with you shortly.",
        &["judy", "mallory", "niaj", "olivia"],
    ),
    (
        "sales",
        "Demo Sales",
        RoutingMethod::Broadcast,
        "Thanks for your interest! A sales expert will answer in a moment.",
        &["frank", "grace", "heidi", "ivan"],
    ),
];

/// Seed the demo organisation; what already exists is left alone. Returns how many users
/// were created.
pub async fn seed(service: &Service) -> Result<usize> {
    let store = service.store();
    let domain = &service.settings().domain;
    for (slug, name) in GROUPS {
        if store.group(slug).await?.is_none() {
            store.create_group(slug, name).await?;
        }
    }
    let mut people: Vec<(&str, &str, Option<&str>, Vec<Role>)> =
        PEOPLE.iter().map(|(l, n, g, r)| (*l, *n, Some(*g), r.to_vec())).collect();
    people.push(("admin", "Administrator", None, vec![Role::Admin]));
    // Argon2 is deliberately slow: hash on every core (the service bounds it).
    let hashed: Vec<String> = futures_util::future::join_all(
        people
            .iter()
            .map(|_| async { service.argon2(|| auth::hash_password(DEMO_PASSWORD)).await.unwrap_or_default() }),
    )
    .await;
    let mut created = 0;
    for ((local, name, group, mut roles), hash) in people.into_iter().zip(hashed) {
        let address = Address::parse(&format!("{local}@{domain}"))?;
        let user = match store.user_by_address(&address).await? {
            Some(u) => u,
            None => {
                roles.push(Role::User);
                roles.sort();
                created += 1;
                let new = NewUser {
                    email: address.to_string(),
                    address,
                    display_name: name.to_string(),
                    locale: "en".into(),
                    roles,
                    password_hash: Some(hash),
                };
                store.create_user(new, service.now()).await?
            }
        };
        if let Some(slug) = group {
            let g = store.group(slug).await?.ok_or(CoreError::NotFound("group"))?;
            store.add_group_member(g.id, user.id).await?;
        }
    }
    // Queues, open around the clock.
    let existing = store.queues().await?;
    for (id, name, method, welcome, members) in QUEUES {
        if existing.iter().any(|q| q.id == *id) {
            continue;
        }
        let mut def = QueueDef::new(id, name, Address::parse(&format!("{id}@{domain}"))?);
        def.method = *method;
        def.welcome = welcome.to_string();
        def.description = format!("{name}: try it as a seeker, or sign in as one of its experts.");
        for (i, local) in members.iter().enumerate() {
            let u = store
                .user_by_address(&Address::parse(&format!("{local}@{domain}"))?)
                .await?
                .ok_or(CoreError::NotFound("user"))?;
            // Its experts with the queue manager role manage it (Olivia support, Heidi sales).
            if u.has_role(Role::QueueManager) {
                def.managers.push(sb_core::queue::QueueManager { user: u.id, address: u.address.clone() });
            }
            def.members.push(QueueMember { user: u.id, address: u.address, priority: i as i32, skills: Vec::new() });
        }
        service.save_queue(def).await?;
    }
    service.reload_queues().await?;
    Ok(created)
}
