//! `switchboard loadtest archive`: the compliance archive's own figures, on a fresh
//! database of its own (never the server's): how fast sealed records are appended, how
//! fast the chain verifies, and e-discovery search latency over a large archive.
//!
//! Messages go through the store's one write path (`append_events`, batches as the writer
//! makes them), so each is stored, sealed into the chain and indexed for full text exactly
//! as in the server.

use anyhow::Context;
use clap::Args;
use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use sb_core::archive::{ArchiveQuery, Verifier};
use sb_core::conversation::Member;
use sb_core::directory::NewUser;
use sb_core::store::prelude::*;
use sb_core::{Address, ConversationId, ConversationKind, EventKind, NewEvent, Role, UserId};
use serde_json::json;
use std::time::Instant;

#[derive(Args, Clone)]
pub struct ArchiveArgs {
    /// Where the benchmark database goes (a new folder; PostgreSQL with --database-url).
    #[arg(long, default_value = "./switchboard-bench-archive")]
    dir: std::path::PathBuf,
    /// Use this (empty) PostgreSQL database instead of SQLite.
    #[arg(long)]
    database_url: Option<String>,
    /// Messages to archive.
    #[arg(long, default_value_t = 1_000_000)]
    messages: u64,
    /// People and conversations they share.
    #[arg(long, default_value_t = 500)]
    users: u64,
    #[arg(long, default_value_t = 5_000)]
    conversations: u64,
    /// Messages per write batch (the server's writer batches up to 256).
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Search queries to time (keyword + participant + 30-day window).
    #[arg(long, default_value_t = 300)]
    queries: usize,
    #[arg(long)]
    json: bool,
}

const DAY: i64 = 86_400_000;

/// A vocabulary with a long tail: word i is drawn with weight ~ 1/(i+1).
fn vocabulary() -> Vec<String> {
    const STEMS: [&str; 40] = [
        "budget", "forecast", "merger", "deadline", "invoice", "client", "trade", "audit", "vpn", "server", "release",
        "contract", "meeting", "report", "quarter", "pricing", "risk", "hedge", "bond", "equity", "lunch", "travel",
        "review", "design", "launch", "ticket", "outage", "backup", "policy", "legal", "offer", "deal", "margin",
        "cost", "update", "schedule", "draft", "approval", "customer", "partner",
    ];
    let mut v = Vec::new();
    for round in 0..50 {
        for s in STEMS {
            v.push(if round == 0 { s.to_string() } else { format!("{s}{round}") });
        }
    }
    v
}

fn pick(rng: &mut impl Rng, n: usize) -> usize {
    // Zipf-like by inverse transform on 1/x: cheap and skewed.
    let u: f64 = rng.gen_range(0.0..1.0);
    (((n as f64 + 1.0).powf(u) - 1.0) as usize).min(n - 1)
}

pub async fn run(a: ArchiveArgs) -> anyhow::Result<()> {
    let url = match &a.database_url {
        Some(u) => u.clone(),
        None => {
            anyhow::ensure!(!a.dir.exists(), "{} exists: give a new folder", a.dir.display());
            std::fs::create_dir_all(&a.dir)?;
            format!("sqlite://{}", a.dir.join("bench.db").display())
        }
    };
    let store = sb_store::SqlStore::connect(&url).await.context("open the benchmark database")?;
    let key = b"benchmark archive key".to_vec();
    store.set_archive_key(key.clone());
    let now = sb_core::Clock::now_ms(&sb_service::SystemClock);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let words = vocabulary();

    // People and their conversations.
    let mut people: Vec<(UserId, Address)> = Vec::new();
    for i in 0..a.users {
        let address = Address::parse(&format!("user{i}@bench.example"))?;
        let u = store
            .create_user(
                NewUser {
                    address: address.clone(),
                    display_name: format!("User {i}"),
                    email: String::new(),
                    locale: "en".into(),
                    roles: vec![Role::User],
                    password_hash: None,
                },
                now,
            )
            .await?;
        people.push((u.id, address));
    }
    let mut conversations: Vec<(ConversationId, [usize; 2])> = Vec::new();
    while (conversations.len() as u64) < a.conversations {
        let (x, y) = (rng.gen_range(0..people.len()), rng.gen_range(0..people.len()));
        if x == y {
            continue;
        }
        let (c, created) =
            store.create_conversation(ConversationKind::Direct, "", &[people[x].0, people[y].0], now).await?;
        if created {
            let m = Member { id: people[x].0, address: people[x].1.clone() };
            let created = NewEvent {
                conversation: c,
                kind: EventKind::Created,
                actor: Some(m),
                body: String::new(),
                client_id: None,
                ts: now - 366 * DAY,
                note: None,
            };
            store.append_events(&[created]).await?;
            conversations.push((c, [x, y]));
        }
    }

    // Appends: a year of messages, oldest first.
    let started = Instant::now();
    let mut written = 0u64;
    let span = 365 * DAY;
    while written < a.messages {
        let n = (a.messages - written).min(a.batch as u64) as usize;
        let batch: Vec<NewEvent> = (0..n)
            .map(|i| {
                let (c, pair) = conversations[rng.gen_range(0..conversations.len())];
                let who = &people[pair[rng.gen_range(0..2)]];
                let len = rng.gen_range(6..18);
                let body = (0..len).map(|_| words[pick(&mut rng, words.len())].as_str()).collect::<Vec<_>>().join(" ");
                let ts = now - span + span * (written + i as u64) as i64 / a.messages as i64;
                NewEvent {
                    conversation: c,
                    kind: EventKind::Message,
                    actor: Some(Member { id: who.0, address: who.1.clone() }),
                    body,
                    client_id: None,
                    ts,
                    note: None,
                }
            })
            .collect();
        store.append_events(&batch).await?;
        written += n as u64;
        // The server checkpoints the WAL in its once-a-second maintenance; do the same.
        if (written / a.batch as u64).is_multiple_of(40) {
            store.maintenance().await?;
        }
        if !a.json && written % 100_000 < a.batch as u64 {
            eprintln!("  archived {written} messages ({:.0}/s)", written as f64 / started.elapsed().as_secs_f64());
        }
    }
    let append_s = started.elapsed().as_secs_f64();
    store.maintenance().await?;

    // Verification: the whole chain.
    let started = Instant::now();
    let mut v = Verifier::new(&key);
    let mut after = 0;
    loop {
        let page = store.archive_records(after, 10_000).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for r in &page {
            v.check(r).map_err(|t| anyhow::anyhow!("{t}"))?;
        }
    }
    let verify_s = started.elapsed().as_secs_f64();

    // Searches: a mid-frequency keyword, a participant, a 30-day window.
    let mut h = Histogram::<u64>::new(3)?;
    let mut hits_total = 0usize;
    for _ in 0..a.queries {
        let word = &words[rng.gen_range(5..200)];
        let who = people[rng.gen_range(0..people.len())].0;
        let from = now - span + rng.gen_range(0..335) * DAY;
        let q = ArchiveQuery {
            keywords: vec![word.clone()],
            participant: Some(who),
            from: Some(from),
            to: Some(from + 30 * DAY),
            limit: 50,
            ..Default::default()
        };
        let t = Instant::now();
        hits_total += store.search_archive(&q).await?.len();
        h.record(t.elapsed().as_micros() as u64)?;
    }
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let db_bytes: u64 = ["bench.db", "bench.db-wal"]
        .iter()
        .map(|f| std::fs::metadata(a.dir.join(f)).map(|m| m.len()).unwrap_or(0))
        .sum();
    let out = json!({
        "test": "archive",
        "backend": store.backend(),
        "messages": a.messages,
        "records": v.records,
        "append_per_s": (a.messages as f64 / append_s).round(),
        "verify_records_per_s": (v.records as f64 / verify_s).round(),
        "search_queries": a.queries,
        "search_ms": {"p50": ms(0.5), "p95": ms(0.95), "p99": ms(0.99), "max": h.max() as f64 / 1000.0},
        "search_hits_avg": hits_total as f64 / a.queries.max(1) as f64,
        "database_bytes": db_bytes,
    });
    if a.json {
        println!("{out}");
    } else {
        println!(
            "archived {} messages in {append_s:.1} s: {} appends/s (sealed, indexed)",
            a.messages, out["append_per_s"]
        );
        println!("verified {} records in {verify_s:.1} s: {} records/s", v.records, out["verify_records_per_s"]);
        println!(
            "search (keyword + participant + 30 days), {} queries: p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {:.1} hits on average",
            a.queries, ms(0.5), ms(0.95), ms(0.99), h.max() as f64 / 1000.0, out["search_hits_avg"].as_f64().unwrap_or(0.0)
        );
    }
    store.close().await;
    Ok(())
}
