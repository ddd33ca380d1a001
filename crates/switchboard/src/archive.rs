//! `switchboard archive`: compliance officers' tools on the archive, straight on the
//! database (they work beside a running server).

use crate::config::Config;
use clap::Subcommand;
use sb_core::archive::Verifier;
use sb_core::store::prelude::*;

#[derive(clap::Args)]
pub struct Filters {
    /// Keywords; every one must occur.
    #[arg(long, default_value = "")]
    q: String,
    /// Address of someone who took part.
    #[arg(long)]
    participant: Option<String>,
    /// Group slug.
    #[arg(long)]
    group: Option<String>,
    /// direct, group or queue.
    #[arg(long)]
    kind: Option<String>,
    /// From this date (YYYY-MM-DD, UTC), inclusive.
    #[arg(long)]
    from: Option<String>,
    /// Until this date (YYYY-MM-DD, UTC), exclusive.
    #[arg(long)]
    to: Option<String>,
}

impl Filters {
    fn filters(&self, from: Option<i64>, to: Option<i64>) -> sb_service::compliance::ArchiveFilters<'_> {
        sb_service::compliance::ArchiveFilters {
            keywords: &self.q,
            participant: self.participant.as_deref(),
            group: self.group.as_deref(),
            kind: self.kind.as_deref(),
            from,
            to,
        }
    }
}

fn day_ms(date: &Option<String>) -> anyhow::Result<Option<i64>> {
    match date {
        None => Ok(None),
        Some(d) => {
            let day: jiff::civil::Date =
                d.parse().map_err(|e| anyhow::anyhow!("{d:?} is not a date YYYY-MM-DD: {e}"))?;
            let ts = day.to_zoned(jiff::tz::TimeZone::UTC)?.timestamp();
            Ok(Some(ts.as_millisecond()))
        }
    }
}

#[derive(Subcommand)]
pub enum ArchiveCommand {
    /// Purge what the retention policies let go (legal holds respected); the chain still
    /// verifies afterwards. The server also does this about once an hour.
    Purge,
    /// E-discovery search, newest first (recorded in the audit log).
    Search {
        #[command(flatten)]
        filters: Filters,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// One JSON object per hit.
        #[arg(long)]
        json: bool,
    },
    /// Export the conversations with a hit, whole (recorded in the audit log).
    Export {
        #[command(flatten)]
        filters: Filters,
        /// Export this conversation only.
        #[arg(long)]
        conversation: Option<i64>,
        /// eml (an mbox for several conversations), jsonl, csv or xml (Actiance-style).
        #[arg(long, default_value = "jsonl")]
        format: String,
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Walk the hash chain and report the first record changed, removed, inserted or
    /// reordered behind the server's back. Exit 1 when the archive was tampered with.
    Verify {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(config: &Config, command: ArchiveCommand) -> anyhow::Result<()> {
    let store = crate::open_existing_store(config).await?;
    let service = || {
        sb_service::Service::start(
            store.clone() as std::sync::Arc<dyn Store>,
            config.settings(),
            std::sync::Arc::new(sb_service::SystemClock),
        )
    };
    match command {
        ArchiveCommand::Purge => {
            let r = service().purge_expired(None).await?;
            println!(
                "purged {} records and {} log events in {} conversations; {} conversations kept under legal hold",
                r.records, r.events, r.conversations, r.held
            );
            Ok(())
        }
        ArchiveCommand::Search { filters: f, limit, json } => {
            let service = service();
            let (from, to) = (day_ms(&f.from)?, day_ms(&f.to)?);
            let q = service.archive_query(&f.filters(from, to), limit, 0).await?;
            for h in service.archive_search(None, &q).await? {
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"id": h.id, "ts": h.ts, "kind": h.kind, "conversation": h.conversation,
                            "conversation_kind": h.conversation_kind, "actor": h.actor,
                            "snippet": h.snippet.replace([sb_core::archive::HIT_START, sb_core::archive::HIT_END], "")})
                    );
                } else {
                    let when = jiff::Timestamp::from_millisecond(h.ts).map(|t| t.to_string()).unwrap_or_default();
                    let snippet =
                        h.snippet.replace(sb_core::archive::HIT_START, "[").replace(sb_core::archive::HIT_END, "]");
                    println!(
                        "#{}\t{when}\tconversation {}\t{}\t{}",
                        h.id,
                        h.conversation.unwrap_or_default(),
                        h.actor.unwrap_or_default(),
                        snippet.replace(['\n', '\t'], " ")
                    );
                }
            }
            Ok(())
        }
        ArchiveCommand::Export { filters: f, conversation, format, out } => {
            let service = service();
            let (from, to) = (day_ms(&f.from)?, day_ms(&f.to)?);
            let mut q = service.archive_query(&f.filters(from, to), 1000, 0).await?;
            q.conversation = conversation;
            let file = service.archive_export(None, &q, &format).await?;
            match out {
                Some(path) => {
                    std::fs::write(&path, &file.body)?;
                    eprintln!("wrote {} ({} bytes, {})", path.display(), file.body.len(), file.content_type);
                }
                None => print!("{}", file.body),
            }
            Ok(())
        }
        ArchiveCommand::Verify { json } => {
            let key = config.existing_archive_key()?;
            let mut v = Verifier::new(&key);
            let mut after = 0;
            let problem = 'walk: loop {
                let page = store.archive_records(after, 5000).await?;
                let Some(last) = page.last() else { break None };
                after = last.id;
                for r in &page {
                    if let Err(t) = v.check(r) {
                        break 'walk Some(t);
                    }
                }
            };
            let (head_id, head_hash) = v.head();
            match (&problem, json) {
                (None, false) => println!(
                    "archive verified: {} records ({} purged), head #{head_id} {}",
                    v.records,
                    v.purged,
                    &head_hash[..16.min(head_hash.len())]
                ),
                (Some(t), false) => {
                    let hint = if v.records == 0 { " (or this is not the archive key it was sealed with)" } else { "" };
                    println!("archive TAMPERED: {t}{hint}; {} records before it verified", v.records);
                }
                (_, true) => println!(
                    "{}",
                    serde_json::json!({
                        "ok": problem.is_none(), "records": v.records, "purged": v.purged, "head": head_id,
                        "problem": problem.as_ref().map(ToString::to_string),
                    })
                ),
            }
            if problem.is_some() {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}
