//! `switchboard loadtest alerts`: one alert to many signed-in recipients — how long until
//! the last one has it — then sustained alerts/s to small audiences.

use crate::loadtest::{bar, connect_all, Api, Common, Ws};
use anyhow::Context;
use clap::Args;
use futures_util::{stream, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

#[derive(Args, Clone)]
pub struct AlertsArgs {
    #[command(flatten)]
    common: Common,
    /// Signed-in recipients of the big alert.
    #[arg(long, default_value_t = 10_000)]
    recipients: usize,
    /// Big alerts to send, one after the other (the first also opens each recipient's
    /// conversation with the alerts address).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Seconds of sustained small alerts (10 recipients each) afterwards.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Small alerts in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
}

/// Read frames until an `alert` with this title arrives; when.
async fn wait_alert(mut ws: Ws, title: String, deadline: Instant) -> (Ws, Option<Instant>) {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                if t.contains("\"type\":\"alert\"") && t.contains(&title) {
                    return (ws, Some(Instant::now()));
                }
            }
            Ok(Some(Ok(_))) => {}
            _ => return (ws, None),
        }
    }
}

pub async fn run(a: AlertsArgs) -> anyhow::Result<()> {
    let api = Arc::new(Api::connect(&a.common).await?);
    let pb = bar(a.common.json, a.recipients as u64);
    let accounts = api.accounts_with(a.recipients, "r", &[], &pb).await?;
    pb.set_position(0);
    pb.set_message("connecting");
    let sockets: Vec<Ws> = connect_all(&api, &accounts, &pb).await.into_iter().collect::<Result<_, _>>()?;
    pb.finish_and_clear();
    let users: Vec<&str> = accounts.iter().map(|(a, _)| a.as_str()).collect();

    // Big alerts: every recipient listens; the clock runs from the request to the last arrival.
    let mut sockets = sockets;
    let mut rounds = Vec::new();
    for round in 0..a.rounds {
        let title = format!("Load alert {} round {round}", api.run);
        let deadline = Instant::now() + Duration::from_secs(60);
        let waiting: Vec<_> =
            sockets.into_iter().map(|ws| tokio::spawn(wait_alert(ws, title.clone(), deadline))).collect();
        let started = Instant::now();
        let sent = api
            .post(
                &api.admin_token,
                "/api/v1/alerts",
                json!({"title": title, "priority": "high", "audience": {"users": users}, "ttl_s": 600}),
            )
            .await
            .context("sending the big alert")?;
        let answered = started.elapsed();
        let mut last = Duration::ZERO;
        let mut got = 0usize;
        let mut back = Vec::with_capacity(waiting.len());
        for w in waiting {
            let (ws, when) = w.await?;
            if let Some(t) = when {
                got += 1;
                last = last.max(t.duration_since(started));
            }
            back.push(ws);
        }
        sockets = back;
        rounds.push(json!({
            "round": round, "alert": sent["id"], "recipients": sent["recipients"], "received": got,
            "request_ms": answered.as_secs_f64() * 1000.0, "last_delivery_ms": last.as_secs_f64() * 1000.0,
        }));
        if !a.common.json {
            eprintln!(
                "  round {round}: {got}/{} received; API answered in {:.0} ms, last delivery after {:.0} ms",
                a.recipients,
                answered.as_secs_f64() * 1000.0,
                last.as_secs_f64() * 1000.0
            );
        }
    }
    drop(sockets);

    // Sustained: small alerts (10 recipients each, no sessions needed: held) back to back.
    let small: Vec<Vec<&str>> = users.chunks(10).map(|c| c.to_vec()).collect();
    let end = Instant::now() + Duration::from_secs_f64(a.duration);
    let mut h = Histogram::<u64>::new(3)?;
    let results: Vec<anyhow::Result<Duration>> = stream::iter(0..)
        .take_while(|_| std::future::ready(Instant::now() < end))
        .map(|i| {
            let (api, to) = (api.clone(), small[i % small.len().max(1)].clone());
            async move {
                let t = Instant::now();
                api.post(
                    &api.admin_token,
                    "/api/v1/alerts",
                    json!({"title": format!("small {i}"), "audience": {"users": to}}),
                )
                .await?;
                Ok(t.elapsed())
            }
        })
        .buffer_unordered(a.concurrency)
        .collect()
        .await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let errors = results.len() - ok;
    if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
        eprintln!("first error: {e:#}");
    }
    for d in results.iter().flatten() {
        h.record(d.as_micros() as u64)?;
    }
    let report: Value = json!({
        "test": "alerts",
        "recipients": a.recipients,
        "big_alerts": rounds,
        "sustained": {
            "alerts": ok, "errors": errors, "per_s": ok as f64 / a.duration,
            "latency_ms": {"p50": h.value_at_quantile(0.5) as f64 / 1000.0, "p99": h.value_at_quantile(0.99) as f64 / 1000.0},
        },
    });
    if a.common.json {
        println!("{report}");
    } else {
        println!(
            "sustained: {ok} alerts of 10 recipients in {:.0} s = {:.0} alerts/s ({errors} errors), p50 {:.1} ms, p99 {:.1} ms",
            a.duration,
            ok as f64 / a.duration,
            h.value_at_quantile(0.5) as f64 / 1000.0,
            h.value_at_quantile(0.99) as f64 / 1000.0
        );
    }
    Ok(())
}
