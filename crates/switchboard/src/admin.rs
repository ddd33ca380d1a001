//! `switchboard admin …`: directory and credential management straight on the database,
//! so it works with the server running (SQLite WAL, or PostgreSQL) or stopped. Users and
//! tokens are read from the database on each use; for what the server keeps in memory
//! (walls and group memberships, queues), a server running on the same data folder is told
//! through its control socket (`control`) and has applied the change when the command
//! returns.

use crate::config::Config;
use anyhow::{bail, Context};
use clap::Subcommand;
use sb_core::store::prelude::*;
use sb_core::{Address, Role};
use sb_service::{auth, Service, SystemClock};
use std::io::BufRead;
use std::sync::Arc;

#[derive(Subcommand)]
// Parsed once per command line: the size of the biggest variant does not matter.
#[allow(clippy::large_enum_variant)]
pub enum AdminCommand {
    /// Users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Directory groups.
    Group {
        #[command(subcommand)]
        command: GroupCommand,
    },
    /// Application tokens (for monitoring systems and scripts).
    App {
        #[command(subcommand)]
        command: AppCommand,
    },
    /// Expert queues. A running server on this data folder applies changes before the
    /// command returns.
    Queue {
        #[command(subcommand)]
        command: QueueCommand,
    },
    /// Issue a session token for a user (scripts, load tests). Printed once.
    Token { address: String },
}

#[derive(clap::Args, Default)]
pub struct QueueOptions {
    /// Display name, e.g. "IT Support".
    #[arg(long)]
    name: Option<String>,
    /// The queue's own address (default <id>@<domain>).
    #[arg(long)]
    address: Option<String>,
    #[arg(long)]
    description: Option<String>,
    /// broadcast, longest_idle, round_robin, least_busy, serial or manual.
    #[arg(long)]
    method: Option<String>,
    /// Concurrent chats per expert.
    #[arg(long)]
    capacity: Option<u32>,
    /// Seconds an offer stays open.
    #[arg(long)]
    offer_timeout: Option<i64>,
    /// Seconds a seeker may wait before the chat overflows.
    #[arg(long)]
    max_wait: Option<i64>,
    #[arg(long)]
    welcome: Option<String>,
    #[arg(long)]
    closed_message: Option<String>,
    /// Closed by an administrator (true/false).
    #[arg(long)]
    closed: Option<bool>,
    /// Enabled (true/false); a disabled queue does not exist publicly.
    #[arg(long)]
    enabled: Option<bool>,
    /// After max wait: close, offline_message, or queue:<id> to roll over.
    #[arg(long)]
    overflow: Option<String>,
    /// When no expert is signed in: close, offline_message, or queue:<id>.
    #[arg(long)]
    no_expert: Option<String>,
    /// Shown to a seeker whose chat was kept as an offline message.
    #[arg(long)]
    offline_message: Option<String>,
    /// Business hours as JSON, e.g. '{"tz":"Europe/Berlin","weekly":[{"day":"mon","open":"09:00","close":"17:00"}],"holidays":["2026-12-25"]}'; "none" for around the clock.
    #[arg(long)]
    hours: Option<String>,
    /// Pre-chat form fields as JSON, e.g. '[{"name":"email","label":"E-mail","kind":"email","required":true}]'.
    #[arg(long)]
    form: Option<String>,
    /// Canned responses as JSON, e.g. '[{"title":"Hello","text":"Hello! How can I help?"}]'.
    #[arg(long)]
    canned: Option<String>,
    /// Wrap-up tags, comma-separated.
    #[arg(long)]
    wrap_up_tags: Option<String>,
    /// Seconds of wrap-up after a chat ends (0: closes at once).
    #[arg(long)]
    wrap_up: Option<i64>,
    /// The queue's managers, comma-separated addresses (replaces the list; "" for none).
    #[arg(long)]
    managers: Option<String>,
}

/// `close`, `offline_message` or `queue:<id>`.
fn overflow_action(v: &str) -> anyhow::Result<sb_core::queue::OverflowAction> {
    let (action, queue) = match v.split_once(':') {
        Some((a, q)) => (a, Some(q)),
        None => (v, None),
    };
    sb_core::queue::OverflowAction::parse(Some(action), queue).map_err(|e| anyhow::anyhow!(e))
}

#[derive(Subcommand)]
pub enum QueueCommand {
    /// Create a queue.
    Add {
        id: String,
        #[command(flatten)]
        options: QueueOptions,
        /// Member experts (repeat).
        #[arg(long = "member")]
        members: Vec<String>,
    },
    /// Change a queue's settings.
    Set {
        id: String,
        #[command(flatten)]
        options: QueueOptions,
    },
    List,
    /// Add an expert (priority: lower is offered first by serial routing).
    AddMember {
        id: String,
        address: String,
        #[arg(long, default_value_t = 0)]
        priority: i32,
    },
    RemoveMember {
        id: String,
        address: String,
    },
    Remove {
        id: String,
    },
}

fn apply(def: &mut sb_core::queue::QueueDef, o: QueueOptions) -> anyhow::Result<()> {
    if let Some(v) = o.name {
        def.display_name = v;
    }
    if let Some(v) = o.address {
        def.address = Address::parse(&v)?;
    }
    if let Some(v) = o.description {
        def.description = v;
    }
    if let Some(v) = o.method {
        def.method = sb_core::queue::RoutingMethod::parse(&v).with_context(|| format!("unknown routing method {v}"))?;
    }
    if let Some(v) = o.capacity {
        def.capacity = v;
    }
    if let Some(v) = o.offer_timeout {
        def.offer_timeout_ms = v * 1000;
    }
    if let Some(v) = o.max_wait {
        def.max_wait_ms = Some(v * 1000);
    }
    if let Some(v) = o.welcome {
        def.welcome = v;
    }
    if let Some(v) = o.closed_message {
        def.closed_message = v;
    }
    if let Some(v) = o.overflow {
        def.overflow = overflow_action(&v)?;
    }
    if let Some(v) = o.no_expert {
        def.no_expert = overflow_action(&v)?;
    }
    if let Some(v) = o.offline_message {
        def.offline_message = v;
    }
    if let Some(v) = o.hours {
        def.hours = if v == "none" { None } else { Some(serde_json::from_str(&v).context("--hours")?) };
    }
    if let Some(v) = o.form {
        def.form = serde_json::from_str(&v).context("--form")?;
    }
    if let Some(v) = o.canned {
        def.canned = serde_json::from_str(&v).context("--canned")?;
    }
    if let Some(v) = o.wrap_up_tags {
        def.wrap_up_tags = v.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_string).collect();
    }
    if let Some(v) = o.wrap_up {
        def.wrap_up_ms = v * 1000;
    }
    if let Some(v) = o.closed {
        def.closed = v;
    }
    if let Some(v) = o.enabled {
        def.enabled = v;
    }
    Ok(())
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user.
    Add {
        address: String,
        #[arg(long)]
        name: String,
        /// Password (prefer --password-stdin; a random one is printed if neither is given).
        #[arg(long)]
        password: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Extra roles: expert, queue_manager, admin, compliance_officer, auditor.
        #[arg(long = "role")]
        roles: Vec<String>,
    },
    /// List users (optionally matching QUERY).
    List {
        #[arg(default_value = "")]
        query: String,
    },
    /// Set a new password (random if none given) and sign the user out everywhere.
    Passwd {
        address: String,
        #[arg(long)]
        password: Option<String>,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Replace a user's roles, e.g. --set user,expert.
    Roles {
        address: String,
        #[arg(long, value_delimiter = ',')]
        set: Vec<String>,
    },
    /// Disable a user: they cannot sign in, and their sessions end.
    Disable { address: String },
    /// Enable a disabled user.
    Enable { address: String },
}

#[derive(Subcommand)]
pub enum GroupCommand {
    Add {
        id: String,
        #[arg(long)]
        name: String,
    },
    List,
    Remove {
        id: String,
    },
    /// Add a user to a group.
    AddMember {
        id: String,
        address: String,
    },
    /// Remove a user from a group.
    RemoveMember {
        id: String,
        address: String,
    },
}

#[derive(Subcommand)]
pub enum AppCommand {
    /// Create an application and print its token (once).
    Create {
        name: String,
        /// Scopes, e.g. alerts:send.
        #[arg(long = "scope")]
        scopes: Vec<String>,
    },
    List,
    Revoke {
        name: String,
    },
}

fn read_password(given: Option<String>, stdin: bool) -> anyhow::Result<(String, bool)> {
    if stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("cannot read the password from stdin")?;
        return Ok((line.trim_end_matches(['\r', '\n']).to_string(), false));
    }
    Ok(match given {
        Some(p) => (p, false),
        None => (auth::new_password(), true),
    })
}

/// The command line as the audit log keeps it: secrets given as arguments are hidden.
fn audited_command_line() -> (String, Vec<String>) {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    for i in 1..args.len() {
        if args[i - 1] == "--password" {
            args[i] = "***".into();
        }
    }
    let words: Vec<&str> = args.iter().map(String::as_str).filter(|a| !a.starts_with('-')).collect();
    // e.g. `admin user add carol@…` → action `cli.user.add`
    let pos = words.iter().position(|w| *w == "admin").map_or(0, |p| p + 1);
    let action = format!("cli.{}", words.iter().skip(pos).take(2).copied().collect::<Vec<_>>().join("."));
    (action, args)
}

pub async fn run(config: &Config, command: AdminCommand) -> anyhow::Result<()> {
    let store = crate::open_store(config).await?;
    let service = Service::start(store.clone() as Arc<dyn Store>, config.settings(), Arc::new(SystemClock));
    let reads_only = matches!(
        &command,
        AdminCommand::User { command: UserCommand::List { .. } }
            | AdminCommand::Group { command: GroupCommand::List }
            | AdminCommand::App { command: AppCommand::List }
            | AdminCommand::Queue { command: QueueCommand::List }
    );
    run_command(config, &store, &service, command).await?;
    if !reads_only {
        let (action, args) = audited_command_line();
        let target = args.iter().rev().find(|a| !a.starts_with('-')).cloned().unwrap_or_default();
        let who = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_default();
        let after = serde_json::json!({"command": args.join(" "), "os_user": who});
        service.audit(None, &action, &target, None, Some(after)).await;
        // A server running on this data folder applies the change before we return.
        let socket = crate::control::socket_path(&config.data_dir);
        if crate::control::apply(&socket).await? == crate::control::Applied::Now {
            eprintln!("The running server applied the change.");
        }
    }
    Ok(())
}

async fn run_command(
    config: &Config,
    store: &Arc<sb_store::SqlStore>,
    service: &Arc<Service>,
    command: AdminCommand,
) -> anyhow::Result<()> {
    let (store, service) = (store.clone(), service.clone());
    let user = |raw: &str| {
        let store = store.clone();
        let raw = raw.to_string();
        async move {
            let a = Address::parse(&raw)?;
            store.user_by_address(&a).await?.with_context(|| format!("no user {a}"))
        }
    };
    let group = |id: &str| {
        let store = store.clone();
        let id = id.to_lowercase();
        async move { store.group(&id).await?.with_context(|| format!("no group {id}")) }
    };
    match command {
        AdminCommand::User { command } => match command {
            UserCommand::Add { address, name, password, password_stdin, roles } => {
                let roles = roles.iter().map(|r| Role::parse(r)).collect::<Result<Vec<_>, _>>()?;
                let (password, generated) = read_password(password, password_stdin)?;
                let u = service.create_user(&address, &name, Some(&password), &roles).await?;
                println!("created {} ({})", u.address, Role::join(&u.roles));
                if generated {
                    println!("password: {password}");
                }
            }
            UserCommand::List { query } => {
                for u in store.users(&query, 100_000).await? {
                    let flag = if u.disabled { " [disabled]" } else { "" };
                    println!("{}\t{}\t{}{flag}", u.address, u.display_name, Role::join(&u.roles));
                }
            }
            UserCommand::Passwd { address, password, password_stdin } => {
                let u = user(&address).await?;
                let (password, generated) = read_password(password, password_stdin)?;
                if password.len() < 4 {
                    bail!("a password has at least 4 characters");
                }
                store.set_password_hash(u.id, Some(auth::hash_password(&password))).await?;
                store.delete_sessions_of(u.id).await?;
                println!("password changed for {}; their sessions were ended", u.address);
                if generated {
                    println!("password: {password}");
                }
            }
            UserCommand::Roles { address, set } => {
                let u = user(&address).await?;
                let mut roles = set.iter().map(|r| Role::parse(r.trim())).collect::<Result<Vec<_>, _>>()?;
                if !roles.contains(&Role::User) {
                    roles.push(Role::User);
                }
                roles.sort();
                roles.dedup();
                store.set_roles(u.id, &roles).await?;
                println!("{}: {}", u.address, Role::join(&roles));
            }
            UserCommand::Disable { address } => {
                let u = user(&address).await?;
                store.set_disabled(u.id, true).await?;
                store.delete_sessions_of(u.id).await?;
                println!("disabled {}", u.address);
            }
            UserCommand::Enable { address } => {
                let u = user(&address).await?;
                store.set_disabled(u.id, false).await?;
                println!("enabled {}", u.address);
            }
        },
        AdminCommand::Group { command } => match command {
            GroupCommand::Add { id, name } => {
                let slug = sb_core::directory::parse_slug(&id)?;
                let g = store.create_group(&slug, name.trim()).await?;
                println!("created group {} ({})", g.slug, g.name);
            }
            GroupCommand::List => {
                let members = store.group_memberships().await?;
                for g in store.groups().await? {
                    let n = members.iter().filter(|(gid, _)| *gid == g.id).count();
                    println!("{}\t{}\t{n} members", g.slug, g.name);
                }
            }
            GroupCommand::Remove { id } => {
                let g = group(&id).await?;
                store.delete_group(g.id).await?;
                println!("removed group {}", g.slug);
            }
            GroupCommand::AddMember { id, address } => {
                let (g, u) = (group(&id).await?, user(&address).await?);
                store.add_group_member(g.id, u.id).await?;
                println!("{} is in {}", u.address, g.slug);
            }
            GroupCommand::RemoveMember { id, address } => {
                let (g, u) = (group(&id).await?, user(&address).await?);
                store.remove_group_member(g.id, u.id).await?;
                println!("{} is no longer in {}", u.address, g.slug);
            }
        },
        AdminCommand::App { command } => match command {
            AppCommand::Create { name, scopes } => {
                let (token, app) = service.create_application(&name, &scopes).await?;
                println!("created application {} with scopes [{}]", app.name, app.scopes.join(" "));
                println!("token: {token}");
            }
            AppCommand::List => {
                for a in store.applications().await? {
                    let flag = if a.revoked { " [revoked]" } else { "" };
                    println!("{}\t{}{flag}", a.name, a.scopes.join(" "));
                }
            }
            AppCommand::Revoke { name } => {
                store.revoke_application(&name).await?;
                println!("revoked {name}");
            }
        },
        AdminCommand::Queue { command } => {
            let find = |id: &str| {
                let store = store.clone();
                let id = id.to_lowercase();
                async move {
                    store.queues().await?.into_iter().find(|q| q.id == id).with_context(|| format!("no queue {id}"))
                }
            };
            // `--managers a@x,b@x`: directory users, each once.
            let managers = |list: &str| {
                let list = list.to_string();
                let user = &user;
                async move {
                    let mut out: Vec<sb_core::queue::QueueManager> = Vec::new();
                    for address in list.split(',').map(str::trim).filter(|a| !a.is_empty()) {
                        let u = user(address).await?;
                        if !out.iter().any(|m| m.user == u.id) {
                            out.push(sb_core::queue::QueueManager { user: u.id, address: u.address });
                        }
                    }
                    anyhow::Ok(out)
                }
            };
            match command {
                QueueCommand::Add { id, mut options, members } => {
                    let id = sb_core::directory::parse_slug(&id)?;
                    let address = Address::parse(&format!("{id}@{}", config.domain))?;
                    let mut def = sb_core::queue::QueueDef::new(&id, &id, address);
                    if let Some(list) = options.managers.take() {
                        def.managers = managers(&list).await?;
                    }
                    apply(&mut def, options)?;
                    for (i, m) in members.iter().enumerate() {
                        let u = user(m).await?;
                        def.members.push(sb_core::queue::QueueMember {
                            user: u.id,
                            address: u.address,
                            priority: i as i32,
                            skills: Vec::new(),
                        });
                    }
                    if store.queues().await?.iter().any(|q| q.id == def.id) {
                        bail!("queue {} exists; use `queue set`", def.id);
                    }
                    let def = service.save_queue(def).await?;
                    println!(
                        "created queue {} ({}, {}) with {} members",
                        def.id,
                        def.display_name,
                        def.address,
                        def.members.len()
                    );
                }
                QueueCommand::Set { id, mut options } => {
                    let mut def = find(&id).await?;
                    if let Some(list) = options.managers.take() {
                        def.managers = managers(&list).await?;
                    }
                    apply(&mut def, options)?;
                    let def = service.save_queue(def).await?;
                    println!("updated queue {}", def.id);
                }
                QueueCommand::List => {
                    for q in store.queues().await? {
                        let state = if !q.enabled {
                            "disabled"
                        } else if q.closed {
                            "closed"
                        } else {
                            "open"
                        };
                        let members: Vec<&str> = q.members.iter().map(|m| m.address.as_str()).collect();
                        let managers: Vec<&str> = q.managers.iter().map(|m| m.address.as_str()).collect();
                        println!(
                            "{}\t{}\t{}\t{}\t{state}\t{}\tmanagers: {}",
                            q.id,
                            q.display_name,
                            q.address,
                            q.method.as_str(),
                            members.join(" "),
                            managers.join(" ")
                        );
                    }
                }
                QueueCommand::AddMember { id, address, priority } => {
                    let mut def = find(&id).await?;
                    let u = user(&address).await?;
                    def.members.retain(|m| m.user != u.id);
                    def.members.push(sb_core::queue::QueueMember {
                        user: u.id,
                        address: u.address.clone(),
                        priority,
                        skills: Vec::new(),
                    });
                    service.save_queue(def).await?;
                    println!("{} is an expert of {id}", u.address);
                }
                QueueCommand::RemoveMember { id, address } => {
                    let mut def = find(&id).await?;
                    let u = user(&address).await?;
                    def.members.retain(|m| m.user != u.id);
                    service.save_queue(def).await?;
                    println!("{} left {id}", u.address);
                }
                QueueCommand::Remove { id } => {
                    store.delete_queue(&id.to_lowercase()).await?;
                    println!("removed queue {id}");
                }
            }
        }
        AdminCommand::Token { address } => {
            let u = user(&address).await?;
            let (token, _) = service.issue_session(u.id).await?;
            println!("{token}");
        }
    }
    Ok(())
}
