//! The storage port's contract, on both backends.

use sb_core::conversation::Member;
use sb_core::directory::NewUser;
use sb_core::store::prelude::*;
use sb_core::{Address, ConversationId, ConversationKind, EventId, EventKind, NewEvent, Role, StoreError};
use sqlx::Executor;
use switchboard_store::SqlStore;

async fn stores() -> Vec<(SqlStore, Option<String>)> {
    let dir = std::env::temp_dir().join(format!("sbstore-{}-{:x}", std::process::id(), rand_u32()));
    std::fs::create_dir_all(&dir).unwrap();
    let sqlite = SqlStore::connect(&format!("sqlite://{}", dir.join("s.db").display())).await.unwrap();
    sqlx::any::install_default_drivers();
    let name = format!("sb_test_store_{}_{:x}", std::process::id(), rand_u32());
    let admin = sqlx::AnyPool::connect("postgres://postgres@127.0.0.1:5432/postgres").await.expect("PostgreSQL");
    admin.execute(format!("CREATE DATABASE {name}").as_str()).await.unwrap();
    admin.close().await;
    let pg = SqlStore::connect(&format!("postgres://postgres@127.0.0.1:5432/{name}")).await.unwrap();
    vec![(sqlite, None), (pg, Some(name))]
}

fn rand_u32() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos()
}

async fn cleanup(store: SqlStore, pg: Option<String>) {
    store.close().await;
    if let Some(name) = pg {
        let admin = sqlx::AnyPool::connect("postgres://postgres@127.0.0.1:5432/postgres").await.unwrap();
        let _ = admin.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str()).await;
    }
}

fn msg(conversation: ConversationId, actor: &Member, body: &str, client_id: Option<&str>) -> NewEvent {
    NewEvent {
        conversation,
        kind: EventKind::Message,
        actor: Some(actor.clone()),
        body: body.into(),
        client_id: client_id.map(str::to_string),
        ts: 1,
        note: None,
    }
}

#[tokio::test]
async fn a_batch_numbers_events_per_conversation_and_answers_retries() {
    for (store, pg) in stores().await {
        let mut members = Vec::new();
        for name in ["a", "b", "c"] {
            let u = store
                .create_user(
                    NewUser {
                        address: Address::parse(&format!("{name}@x.test")).unwrap(),
                        display_name: name.into(),
                        email: String::new(),
                        locale: "en".into(),
                        roles: vec![Role::User],
                        password_hash: None,
                    },
                    0,
                )
                .await
                .unwrap();
            members.push(Member { id: u.id, address: u.address });
        }
        let (c1, _) =
            store.create_conversation(ConversationKind::Direct, "", &[members[0].id, members[1].id], 0).await.unwrap();
        let (c2, _) = store.create_conversation(ConversationKind::Group, "g", &[members[0].id], 0).await.unwrap();
        let (again, created) =
            store.create_conversation(ConversationKind::Direct, "", &[members[1].id, members[0].id], 0).await.unwrap();
        assert_eq!((again, created), (c1, false), "one direct conversation per pair");

        let a = &members[0];
        let out = store
            .append_events(&[
                msg(c1, a, "one", Some("x")),
                msg(c2, a, "other", None),
                msg(c1, a, "one", Some("x")), // a retry inside the batch
                msg(c1, a, "two", Some("y")),
                NewEvent {
                    kind: EventKind::Joined,
                    body: String::new(),
                    client_id: None,
                    ..msg(c2, &members[2], "", None)
                },
            ])
            .await
            .unwrap();
        let seqs: Vec<(i64, i64, bool)> =
            out.iter().map(|x| (x.event.conversation.0, x.event.seq, x.duplicate)).collect();
        assert_eq!(seqs, vec![(c1.0, 1, false), (c2.0, 1, false), (c1.0, 1, true), (c1.0, 2, false), (c2.0, 2, false)]);
        assert_eq!(out[0].event.id, out[2].event.id);
        assert!(out.windows(2).filter(|w| !w[1].duplicate).all(|w| w[0].event.id < w[1].event.id || w[0].duplicate));
        let conv2 = store.conversation(c2).await.unwrap().unwrap();
        assert!(conv2.is_member(members[2].id), "the Joined event added the member");

        // A retry in a later batch is answered with the stored event.
        let later = store.append_events(&[msg(c1, a, "two", Some("y")), msg(c1, a, "three", None)]).await.unwrap();
        assert!(later[0].duplicate);
        assert_eq!(later[0].event.id, out[3].event.id);
        assert_eq!(later[1].event.seq, 3);

        // A batch naming a conversation that does not exist stores nothing.
        let bad = store.append_events(&[msg(c1, a, "lost?", None), msg(ConversationId(9999), a, "x", None)]).await;
        assert_eq!(bad.unwrap_err(), StoreError::NotFound);
        let h = store.history(c1, None, None, 100).await.unwrap();
        assert_eq!(h.iter().map(|e| e.body.as_str()).collect::<Vec<_>>(), ["one", "two", "three"]);
        assert_eq!(store.events_after(members[1].id, EventId(0), 100).await.unwrap().len(), 3, "b sees c1 only");
        cleanup(store, pg).await;
    }
}

/// What the policy asks to keep with an act (a flagged crossing, a disclaimer shown) is
/// stored in the act's own transaction: with it, or not at all.
#[tokio::test]
async fn policy_records_share_the_acts_transaction() {
    use sb_core::archive::ArchiveEntry;
    use sb_core::store::PolicyRecord;
    use sb_core::walls::{Violation, WallMode};
    for (store, pg) in stores().await {
        let mut members = Vec::new();
        for name in ["p", "q"] {
            let new = NewUser {
                address: Address::parse(&format!("{name}@x.test")).unwrap(),
                display_name: name.into(),
                email: String::new(),
                locale: "en".into(),
                roles: vec![Role::User],
                password_hash: None,
            };
            let u = store.create_user(new, 0).await.unwrap();
            members.push(Member { id: u.id, address: u.address });
        }
        let (c, _) =
            store.create_conversation(ConversationKind::Direct, "", &[members[0].id, members[1].id], 0).await.unwrap();
        let violation = |detail: &str| {
            let v = Violation {
                id: 0,
                ts: 1,
                wall: 7,
                mode: WallMode::Monitor,
                action: "flagged".into(),
                actor: members[0].id,
                other: members[1].id,
                conversation: Some(c.0),
                detail: detail.into(),
            };
            let archived = ArchiveEntry {
                ts: 1,
                kind: "wall.flagged".into(),
                conversation: Some(c.0),
                conversation_kind: None,
                event: None,
                actor: Some(members[0].address.to_string()),
                body: String::new(),
                meta: "{}".into(),
            };
            PolicyRecord::Violation(v, archived)
        };
        let shown = |day| PolicyRecord::DisclaimerShown { rule: 3, pair: "1:2".into(), day };

        // A batch that fails (its second event names no conversation) keeps nothing.
        let failed = store
            .append_with(
                &[msg(c, &members[0], "lost", None), msg(ConversationId(9999), &members[0], "x", None)],
                &[violation("failed"), shown(10)],
            )
            .await;
        assert!(failed.is_err());
        assert!(
            !store.disclaimer_seen(3, "1:2", 10).await.unwrap(),
            "the disclaimer mark rolled back with the message"
        );
        assert!(store.violations(10).await.unwrap().is_empty(), "the flag rolled back with the message");
        assert!(store.history(c, None, None, 10).await.unwrap().is_empty());

        // One that commits keeps all of it, and names the violations it stored.
        let (stored, ids) =
            store.append_with(&[msg(c, &members[0], "kept", None)], &[violation("kept"), shown(10)]).await.unwrap();
        assert_eq!(stored.len(), 1);
        assert!(store.disclaimer_seen(3, "1:2", 10).await.unwrap());
        assert!(!store.disclaimer_seen(3, "1:2", 11).await.unwrap(), "marks are per day");
        let v = store.violations(10).await.unwrap();
        assert_eq!((v.len(), ids, v[0].detail.as_str()), (1, vec![v[0].id], "kept"));
        cleanup(store, pg).await;
    }
}
