//! `switchboard archive`: compliance officers' tools on the archive, straight on the
//! database (they work beside a running server).

use crate::config::Config;
use clap::Subcommand;
use sb_core::archive::Verifier;
use sb_core::store::Store;

#[derive(Subcommand)]
pub enum ArchiveCommand {
    /// Walk the hash chain and report the first record changed, removed, inserted or
    /// reordered behind the server's back. Exit 1 when the archive was tampered with.
    Verify {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(config: &Config, command: ArchiveCommand) -> anyhow::Result<()> {
    let store = crate::open_store(config).await?;
    match command {
        ArchiveCommand::Verify { json } => {
            let key = config.archive_key()?;
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
