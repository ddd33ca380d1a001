//! `switchboard alert send …`: send an alert through a running server's API, as scripts
//! and cron jobs do (an application token with the `alerts:send` scope).

use anyhow::{bail, Context};
use clap::Subcommand;
use serde_json::{json, Value};

#[derive(Subcommand)]
pub enum AlertCommand {
    /// Send an alert; prints its id and how many people it reaches.
    Send {
        /// Base URL of the server.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// An application token with the alerts:send scope (`switchboard admin app create`).
        #[arg(long, env = "SWITCHBOARD_ALERT_TOKEN", hide_env_values = true)]
        token: String,
        #[arg(long)]
        title: String,
        #[arg(long, default_value = "")]
        body: String,
        /// low, normal, high or urgent.
        #[arg(long, default_value = "normal")]
        priority: String,
        /// A recipient's address (repeat).
        #[arg(long = "to")]
        users: Vec<String>,
        /// A group (repeat).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// The experts of a queue (repeat).
        #[arg(long = "queue")]
        queues: Vec<String>,
        #[arg(long)]
        everyone: bool,
        /// any, online or available.
        #[arg(long)]
        presence: Option<String>,
        /// Seconds it may wait for people who are away.
        #[arg(long, default_value_t = 3600)]
        ttl: i64,
        /// Only people online now (others are not held).
        #[arg(long)]
        drop_offline: bool,
        /// Ask for acknowledgement.
        #[arg(long)]
        ack: bool,
        /// Re-send to those who have not acknowledged after this many minutes.
        #[arg(long)]
        escalate_after: Option<u32>,
        #[arg(long)]
        dedup_key: Option<String>,
    },
}

pub async fn run(command: AlertCommand) -> anyhow::Result<()> {
    let AlertCommand::Send {
        url,
        token,
        title,
        body,
        priority,
        users,
        groups,
        queues,
        everyone,
        presence,
        ttl,
        drop_offline,
        ack,
        escalate_after,
        dedup_key,
    } = command;
    let request = json!({
        "title": title, "body": body, "priority": priority,
        "audience": {"users": users, "groups": groups, "queues": queues, "everyone": everyone, "presence": presence},
        "ttl_s": ttl, "offline": if drop_offline { "drop" } else { "hold" }, "ack_required": ack,
        "escalation": escalate_after.map(|m| json!({"after_minutes": m})), "dedup_key": dedup_key,
    });
    let base = url.trim_end_matches('/');
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/v1/alerts"))
        .bearer_auth(token)
        .json(&request)
        .send()
        .await
        .with_context(|| format!("cannot reach {base}"))?;
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{status}: {}", v["error"]["message"].as_str().unwrap_or("(no message)"));
    }
    let dup = if v["duplicate"] == true { " (a duplicate of this open alert: nothing sent again)" } else { "" };
    println!("alert {} to {} recipients{dup}", v["id"], v["recipients"]);
    Ok(())
}
