//! `switchboard loadtest queues`: seekers arrive at queues at a steady rate, experts (real
//! WebSocket sessions) accept every offer, send a message and end the chat after a short
//! handle time, some experts step away and come back (churn), and web pages poll the public
//! status APIs. Prints request→offer and request→assigned latency, lost chats and the status
//! API's throughput. Bounded by `--duration`; stops by itself.

use crate::loadtest::{bar, connect_all, Api, Common, Ws};
use anyhow::{bail, Context};
use clap::Args;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

#[derive(Args, Clone)]
pub struct QueuesArgs {
    #[command(flatten)]
    common: Common,
    /// Queues to create.
    #[arg(long, default_value_t = 5)]
    queues: usize,
    /// Experts (spread over the queues, each in one).
    #[arg(long, default_value_t = 50)]
    experts: usize,
    /// Seeker accounts that take turns arriving.
    #[arg(long, default_value_t = 100)]
    seekers: usize,
    /// New chats per second, over all queues.
    #[arg(long, default_value_t = 20.0)]
    arrival_rate: f64,
    /// Status API requests per second (JSON and legacy, alternating).
    #[arg(long, default_value_t = 50.0)]
    api_rps: f64,
    /// Chance per expert per second of stepping away for 1–3 s.
    #[arg(long, default_value_t = 0.0)]
    churn: f64,
    /// Seconds of arrivals (then up to 10 s to finish the chats in progress).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Milliseconds an expert keeps a chat before ending it.
    #[arg(long, default_value_t = 200)]
    handle_ms: u64,
}

#[derive(Default)]
struct Shared {
    /// question token → when the seeker asked.
    asked: Mutex<HashMap<String, Instant>>,
    /// chat id → question token (learned from the offer).
    chats: Mutex<HashMap<i64, String>>,
    offer: Mutex<Option<Histogram<u64>>>,
    assigned: Mutex<Option<Histogram<u64>>>,
    requested: AtomicU64,
    request_errors: AtomicU64,
    offers: AtomicU64,
    accepted: AtomicU64,
    closed: AtomicU64,
    api_ok: AtomicU64,
    api_errors: AtomicU64,
}

fn record(h: &Mutex<Option<Histogram<u64>>>, d: Duration) {
    let mut h = h.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(h) = h.as_mut() {
        let _ = h.record((d.as_micros() as u64).max(1));
    }
}

pub async fn run(a: QueuesArgs) -> anyhow::Result<()> {
    if a.queues == 0 || a.experts < a.queues || a.seekers == 0 || a.arrival_rate <= 0.0 || a.duration <= 0.0 {
        bail!("need at least one queue, an expert per queue, a seeker, and positive rate and duration");
    }
    let api = Arc::new(Api::connect(&a.common).await?);
    let pb = bar(a.common.json, (a.experts + a.seekers) as u64);
    let experts = api.accounts_with(a.experts, "e", &["expert"], &pb).await?;
    let seekers = api.accounts_with(a.seekers, "s", &[], &pb).await?;
    pb.set_message("creating queues");
    let queue_ids: Vec<String> = (0..a.queues).map(|i| format!("lt-{}-q{i}", api.run)).collect();
    for (qi, id) in queue_ids.iter().enumerate() {
        let members: Vec<Value> = experts
            .iter()
            .enumerate()
            .filter(|(i, _)| i % a.queues == qi)
            .map(|(_, (addr, _))| json!({"address": addr}))
            .collect();
        api.send(
            reqwest::Method::PUT,
            &api.admin_token,
            &format!("/api/v1/queues/{id}"),
            json!({"display_name": format!("Load queue {qi}"), "method": "longest_idle", "offer_timeout_s": 10, "members": members}),
        )
        .await
        .with_context(|| format!("creating queue {id} (the admin needs the admin role)"))?;
    }
    pb.set_position(0);
    pb.set_length((a.experts + a.seekers) as u64);
    pb.set_message("connecting experts and seekers");
    let sockets: Vec<Ws> = connect_all(&api, &experts, &pb).await.into_iter().collect::<anyhow::Result<_>>()?;
    // Seekers stay connected while they wait, as the web client and the widget do: the
    // server takes a waiting chat whose seeker has no connection for a minute out of line.
    let seeker_sockets: Vec<Ws> = connect_all(&api, &seekers, &pb).await.into_iter().collect::<anyhow::Result<_>>()?;
    pb.finish_and_clear();

    let shared = Arc::new(Shared {
        offer: Mutex::new(Some(Histogram::new_with_bounds(1, 60_000_000, 3)?)),
        assigned: Mutex::new(Some(Histogram::new_with_bounds(1, 60_000_000, 3)?)),
        ..Default::default()
    });
    let start = Instant::now();
    let arrivals_end = start + Duration::from_secs_f64(a.duration);
    let hard_end = arrivals_end + Duration::from_secs(10);

    let mut tasks = tokio::task::JoinSet::new();
    for ws in sockets {
        tasks.spawn(expert(ws, shared.clone(), hard_end, a.churn, Duration::from_millis(a.handle_ms)));
    }
    for ws in seeker_sockets {
        tasks.spawn(seeker(ws, hard_end));
    }
    // Status pollers.
    if a.api_rps > 0.0 {
        let (api, shared, queues) = (api.clone(), shared.clone(), queue_ids.clone());
        let every = Duration::from_secs_f64(1.0 / a.api_rps);
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(every);
            let mut n = 0usize;
            while Instant::now() < arrivals_end {
                tick.tick().await;
                n += 1;
                let q = &queues[n % queues.len()];
                let url = if n.is_multiple_of(2) {
                    format!("{}/api/v1/queues/{q}/status", api.base)
                } else {
                    format!("{}/ITFramework/webclient?getSTStatus={q}", api.base)
                };
                let http = api.http.clone();
                let shared = shared.clone();
                tokio::spawn(async move {
                    match http.get(url).send().await {
                        Ok(r) if r.status().is_success() => shared.api_ok.fetch_add(1, Relaxed),
                        _ => shared.api_errors.fetch_add(1, Relaxed),
                    };
                });
            }
        });
    }
    // Arrivals.
    let every = Duration::from_secs_f64(1.0 / a.arrival_rate);
    let mut tick = tokio::time::interval(every);
    let mut n = 0usize;
    let progress = bar(a.common.json, 0);
    while Instant::now() < arrivals_end {
        tick.tick().await;
        n += 1;
        let (addr_token, queue) = (&seekers[n % seekers.len()], &queue_ids[n % queue_ids.len()]);
        let token = format!("lt:{n}");
        shared.asked.lock().unwrap_or_else(|e| e.into_inner()).insert(token.clone(), Instant::now());
        shared.requested.fetch_add(1, Relaxed);
        let (api, shared2, seeker_token, path) =
            (api.clone(), shared.clone(), addr_token.1.clone(), format!("/api/v1/queues/{queue}/chats"));
        tokio::spawn(async move {
            if api.post(&seeker_token, &path, json!({"question": token})).await.is_err() {
                shared2.request_errors.fetch_add(1, Relaxed);
            }
        });
        if n.is_multiple_of(50) {
            progress.set_message(format!(
                "requested {} assigned {} closed {}",
                shared.requested.load(Relaxed),
                shared.accepted.load(Relaxed),
                shared.closed.load(Relaxed)
            ));
            progress.tick();
        }
    }
    // Let the chats in progress finish, then stop.
    while Instant::now() < hard_end && shared.closed.load(Relaxed) < shared.requested.load(Relaxed) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tasks.abort_all();
    progress.finish_and_clear();

    let requested = shared.requested.load(Relaxed);
    let accepted = shared.accepted.load(Relaxed);
    let lost = requested.saturating_sub(accepted);
    let ms = |h: &Mutex<Option<Histogram<u64>>>, q: f64| {
        h.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map_or(0.0, |h| h.value_at_quantile(q) as f64 / 1000.0)
    };
    let max = |h: &Mutex<Option<Histogram<u64>>>| {
        h.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map_or(0.0, |h| h.max() as f64 / 1000.0)
    };
    let report = json!({
        "test": "queues",
        "queues": a.queues, "experts": a.experts, "seekers": a.seekers,
        "arrival_rate": a.arrival_rate, "duration_s": a.duration, "churn": a.churn,
        "requested": requested,
        "request_errors": shared.request_errors.load(Relaxed),
        "offers": shared.offers.load(Relaxed),
        "assigned": accepted,
        "closed": shared.closed.load(Relaxed),
        "lost": lost,
        "request_to_offer_ms": {"p50": ms(&shared.offer, 0.5), "p99": ms(&shared.offer, 0.99), "max": max(&shared.offer)},
        "request_to_assigned_ms": {"p50": ms(&shared.assigned, 0.5), "p99": ms(&shared.assigned, 0.99), "max": max(&shared.assigned)},
        "status_api": {"ok": shared.api_ok.load(Relaxed), "errors": shared.api_errors.load(Relaxed), "per_s": shared.api_ok.load(Relaxed) as f64 / a.duration},
    });
    if a.common.json {
        println!("{report}");
    } else {
        println!(
            "queues: {} queues, {} experts, {:.0} arrivals/s for {:.0} s",
            a.queues, a.experts, a.arrival_rate, a.duration
        );
        println!(
            "  requested {requested}, assigned {accepted}, closed {}, lost {lost}, request errors {}",
            shared.closed.load(Relaxed),
            shared.request_errors.load(Relaxed)
        );
        println!(
            "  request→offer ms: p50 {:.2}  p99 {:.2}  max {:.2}",
            ms(&shared.offer, 0.5),
            ms(&shared.offer, 0.99),
            max(&shared.offer)
        );
        println!(
            "  request→assigned ms: p50 {:.2}  p99 {:.2}  max {:.2}",
            ms(&shared.assigned, 0.5),
            ms(&shared.assigned, 0.99),
            max(&shared.assigned)
        );
        println!(
            "  status API: {} ok ({:.0}/s), {} errors",
            shared.api_ok.load(Relaxed),
            shared.api_ok.load(Relaxed) as f64 / a.duration,
            shared.api_errors.load(Relaxed)
        );
    }
    Ok(())
}

/// One seeker's connection: read (and drop) what comes, so the server sees them there.
async fn seeker(mut ws: Ws, end: Instant) {
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(Ok(_))) => {}
            _ => break,
        }
    }
}

/// One expert: accept every offer, say one thing, end the chat after `handle`; now and
/// then step away (presence `away`) and come back.
async fn expert(ws: Ws, shared: Arc<Shared>, end: Instant, churn: f64, handle: Duration) {
    let (mut tx, mut rx) = ws.split();
    let mut second = tokio::time::interval(Duration::from_secs(1));
    let mut back_at: Option<Instant> = None;
    let mut to_end: Vec<(Instant, i64)> = Vec::new();
    let mut poll = tokio::time::interval(Duration::from_millis(20));
    while Instant::now() < end {
        tokio::select! {
            msg = rx.next() => {
                let Some(Ok(Message::Text(text))) = msg else {
                    if matches!(msg, Some(Ok(_))) { continue } else { break }
                };
                let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                match v["type"].as_str() {
                    Some("queue_offer") => {
                        shared.offers.fetch_add(1, Relaxed);
                        let (chat, token) = (v["chat"].as_i64().unwrap_or(0), v["question"].as_str().unwrap_or("").to_string());
                        if let Some(t) = shared.asked.lock().unwrap_or_else(|e| e.into_inner()).get(&token) {
                            record(&shared.offer, t.elapsed());
                        }
                        shared.chats.lock().unwrap_or_else(|e| e.into_inner()).insert(chat, token);
                        if back_at.is_none() {
                            let _ = tx.send(Message::Text(json!({"type": "accept", "chat": chat}).to_string().into())).await;
                        }
                    }
                    Some("queue_chat") if v["state"] == "assigned" => {
                        let chat = v["chat"].as_i64().unwrap_or(0);
                        let token = shared.chats.lock().unwrap_or_else(|e| e.into_inner()).get(&chat).cloned();
                        let asked = token.and_then(|t| shared.asked.lock().unwrap_or_else(|e| e.into_inner()).get(&t).copied());
                        if let Some(t) = asked {
                            record(&shared.assigned, t.elapsed());
                            shared.accepted.fetch_add(1, Relaxed);
                            let conv = v["conversation"].as_i64().unwrap_or(0);
                            let hello = json!({"type": "send", "conversation": conv, "body": "Hello, how can I help?", "client_id": format!("x{chat}")});
                            let _ = tx.send(Message::Text(hello.to_string().into())).await;
                            to_end.push((Instant::now() + handle, chat));
                        }
                    }
                    Some("queue_chat") if v["state"] == "closed" => {
                        shared.closed.fetch_add(1, Relaxed);
                    }
                    _ => {}
                }
            }
            _ = poll.tick() => {
                let now = Instant::now();
                let (due, later): (Vec<_>, Vec<_>) = to_end.drain(..).partition(|(t, _)| *t <= now);
                to_end = later;
                for (_, chat) in due {
                    let _ = tx.send(Message::Text(json!({"type": "end_chat", "chat": chat}).to_string().into())).await;
                }
                if back_at.is_some_and(|t| t <= now) {
                    back_at = None;
                    let _ = tx.send(Message::Text(json!({"type": "presence", "state": "available"}).to_string().into())).await;
                }
            }
            _ = second.tick() => {
                if churn > 0.0 && back_at.is_none() && to_end.is_empty() && rand::random::<f64>() < churn {
                    back_at = Some(Instant::now() + Duration::from_millis(1000 + rand::random::<u64>() % 2000));
                    let _ = tx.send(Message::Text(json!({"type": "presence", "state": "away"}).to_string().into())).await;
                }
            }
        }
    }
}
