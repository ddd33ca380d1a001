//! `switchboard`: the one binary. Thin: parse the command line, pick the concrete storage,
//! wire the service to the HTTP edge, run.

mod admin;
mod alert;
mod archive;
mod config;
mod control;
mod loadalerts;
mod loadarchive;
mod loadqueues;
mod loadtest;

use anyhow::Context;
use clap::{Parser, Subcommand};
use config::{Config, Overrides};
use sb_core::store::prelude::*;
use sb_core::Role;
use sb_service::{auth, demo, Service, SystemClock};
use sb_store::SqlStore;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(name = "switchboard", version, about = "Enterprise IM with presence, expert queues, alerts and compliance")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once at startup; the size of the biggest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        #[command(flatten)]
        overrides: Overrides,
        /// Seed a demo organisation (every password is "demo"). Never in production.
        #[arg(long)]
        demo: bool,
    },
    /// Exit 0 when the server at URL is ready.
    Healthcheck {
        /// Base URL of the server.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
    },
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Manage users, groups, roles and application tokens (works while the server runs).
    Admin {
        #[command(flatten)]
        overrides: Overrides,
        #[command(subcommand)]
        command: admin::AdminCommand,
    },
    /// Send alerts through a running server (scripts, cron jobs).
    Alert {
        #[command(subcommand)]
        command: alert::AlertCommand,
    },
    /// The compliance archive: verify its chain.
    Archive {
        #[command(flatten)]
        overrides: Overrides,
        #[command(subcommand)]
        command: archive::ArchiveCommand,
    },
    /// Drive load against a running server and print figures.
    Loadtest {
        #[command(subcommand)]
        command: loadtest::LoadCommand,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate the configuration and print it (secrets redacted).
    Check {
        #[command(flatten)]
        overrides: Overrides,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    return_large_allocations_to_the_os();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve { overrides, demo } => serve(overrides, demo).await,
            Command::Healthcheck { url } => healthcheck(&url).await,
            Command::Config { command: ConfigCommand::Check { overrides } } => config_check(&overrides),
            Command::Admin { overrides, command } => {
                let (config, _) = Config::load(&overrides)?;
                init_logging(&config, true);
                admin::run(&config, command).await
            }
            Command::Archive { overrides, command } => {
                let (config, _) = Config::load(&overrides)?;
                init_logging(&config, true);
                archive::run(&config, command).await
            }
            Command::Loadtest { command } => loadtest::run(command).await,
            Command::Alert { command } => alert::run(command).await,
        }
    });
    // Don't wait for lingering blocking tasks (a hung DNS lookup, say) on the way out.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logging(config: &Config, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let level = if quiet { "warn" } else { config.log_level.as_str() };
    // async-imap traces every command it sends, LOGIN with its password included: never
    // below info, whatever was asked.
    let filter = EnvFilter::try_from_env("SWITCHBOARD_LOG")
        .unwrap_or_else(|_| EnvFilter::new(level))
        .add_directive("async_imap=info".parse().expect("a valid directive"));
    // A closed stderr must not take the server down: failed log writes are dropped silently.
    // Colour only for a person at a terminal, not in files, pipes or journald.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .log_internal_errors(false);
    if config.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn config_check(o: &Overrides) -> anyhow::Result<()> {
    let (config, unknown) = Config::load(o)?;
    for key in &unknown {
        eprintln!("warning: unknown configuration key {key:?} (ignored)");
    }
    println!("# configuration is valid (from {})", config::describe_source(o));
    print!("{}", config.render_redacted());
    Ok(())
}

pub async fn open_store(config: &Config) -> anyhow::Result<Arc<SqlStore>> {
    config.ensure_data_dir()?;
    let key = config.archive_key()?;
    connect(config, key).await
}

/// The store of an existing installation, for tools that must not make one (`archive`):
/// fails, creating nothing, when the database or the archive key is missing.
pub async fn open_existing_store(config: &Config) -> anyhow::Result<Arc<SqlStore>> {
    config.ensure_existing_database()?;
    let key = config.existing_archive_key()?;
    connect(config, key).await
}

async fn connect(config: &Config, key: Vec<u8>) -> anyhow::Result<Arc<SqlStore>> {
    let url = config.database_url();
    let store = SqlStore::connect_with(&url, config.durability())
        .await
        .with_context(|| format!("cannot open the database {}", sb_store::redact(&url)))?;
    store.set_archive_key(key);
    store.backfill_archive().await?;
    Ok(Arc::new(store))
}

async fn serve(o: Overrides, demo_mode: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    let (config, unknown) = Config::load(&o)?;
    init_logging(&config, false);
    for key in unknown {
        tracing::warn!(key, "unknown configuration key ignored");
    }
    raise_fd_limit();
    let store = open_store(&config).await?;
    tracing::info!(backend = store.backend(), database = %sb_store::redact(&config.database_url()), "storage ready");
    let service = Service::start(store.clone() as Arc<dyn Store>, config.settings(), Arc::new(SystemClock));

    if demo_mode {
        let created = demo::seed(&service).await?;
        tracing::warn!(
            created,
            "DEMO MODE: demo users (alice@{d}, bob@{d}, … and admin@{d}) all have the password \"{p}\". Never use --demo in production.",
            d = config.domain,
            p = demo::DEMO_PASSWORD
        );
    } else if store.count_users().await? == 0 {
        let address = format!("admin@{}", config.domain);
        let (password, generated) = match std::env::var("SWITCHBOARD_ADMIN_PASSWORD") {
            Ok(p) if !p.is_empty() => (p, false),
            _ => (auth::new_password(), true),
        };
        service.create_user(&address, "Administrator", Some(&password), &[Role::Admin]).await?;
        if generated {
            // Shown once, on the terminal only: it is not stored anywhere in clear.
            let _ = writeln!(
                std::io::stderr(),
                "\n  First run: created {address} with the one-time password  {password}\n  Sign in and change it (switchboard admin user passwd {address}).\n"
            );
        } else {
            tracing::info!(%address, "first run: created the administrator from SWITCHBOARD_ADMIN_PASSWORD");
        }
    }

    service.reload_queues().await?;
    // `switchboard admin` on this machine tells the server to apply its change at once.
    control::listen(&control::socket_path(&config.data_dir), service.clone(), service.shutdown_token())?;
    let restored = service.restore_queue_chats().await?;
    if restored > 0 {
        tracing::info!(restored, "queue chats restored");
    }
    if !config.alerts.mailbox.is_empty() {
        tracing::info!(mailboxes = config.alerts.mailbox.len(), "mailbox listeners starting");
        sb_mail::spawn(service.clone(), config.alerts.mailbox.clone(), service.shutdown_token());
    }
    let listener =
        TcpListener::bind(&config.http).await.with_context(|| format!("cannot listen on {}", config.http))?;
    let addr = listener.local_addr()?;
    // One machine-readable line on stdout for scripts and tests; everything else is logged.
    let _ = writeln!(std::io::stdout(), "listening http://{addr}").and_then(|()| std::io::stdout().flush());
    if !config.metrics_listen.is_empty() {
        // `/metrics` on a listener of its own (and a second line for scripts).
        let metrics = TcpListener::bind(&config.metrics_listen)
            .await
            .with_context(|| format!("cannot listen on {} (metrics_listen)", config.metrics_listen))?;
        let metrics_addr = metrics.local_addr()?;
        let _ = writeln!(std::io::stdout(), "metrics http://{metrics_addr}").and_then(|()| std::io::stdout().flush());
        tracing::info!(%metrics_addr, "metrics served on their own listener");
        let stop = service.shutdown_token();
        tokio::spawn(sb_http::serve_metrics(metrics, service.clone(), async move { stop.cancelled().await }));
    }
    tracing::info!(startup_ms = started.elapsed().as_millis() as u64, "ready: open http://{addr}/ in a browser");

    let (signalled_tx, signalled_rx) = tokio::sync::watch::channel(false);
    let signal = async move {
        wait_for_signal().await;
        tracing::info!("shutting down: no new connections; closing sessions");
        let _ = signalled_tx.send(true);
    };
    let server = sb_http::serve(listener, service.clone(), signal);
    // Drain at most 8 s after the signal, so the process exits well within 10 s.
    let deadline = async move {
        let mut rx = signalled_rx;
        while !*rx.borrow() {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        tokio::time::sleep(Duration::from_secs(8)).await;
    };
    tokio::select! {
        r = server => r.context("server failed")?,
        _ = deadline => tracing::warn!("drain took too long; exiting anyway"),
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

async fn healthcheck(url: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
    let url = format!("{}/readyz", url.trim_end_matches('/'));
    let resp = client.get(&url).send().await.with_context(|| format!("cannot reach {url}"))?;
    anyhow::ensure!(resp.status().is_success(), "{url} answered {}", resp.status());
    println!("ready");
    Ok(())
}

/// Each password check allocates Argon2's ~19 MiB working memory. glibc's malloc raises
/// its mmap threshold after the first such block is freed, and from then on keeps every
/// block in a per-thread arena: a few sign-ins left hundreds of MiB resident. A fixed
/// threshold keeps large blocks in mmap, returned to the system when freed.
#[allow(unsafe_code)]
fn return_large_allocations_to_the_os() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// Each connection is a file descriptor; the default soft limit (often 1024) is far below
/// what a chat server holds. Raise the soft limit to the hard limit.
#[allow(unsafe_code)]
pub fn raise_fd_limit() {
    #[cfg(unix)]
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}
