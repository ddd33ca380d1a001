//! The mailbox listener: configured IMAP and POP3 mailboxes whose mail becomes alerts.
//!
//! Each mailbox runs as one task: connect (TLS, STARTTLS or plain), sign in, take every
//! mail there is, then wait — IMAP IDLE when the server offers it, otherwise a poll every
//! `poll_interval_s`. Taking a mail is: read it (`message::read_mail`), hand it to
//! `Service::take_mail` (which stores the alert and the mail's intake record in one
//! transaction, or records the refusal), and only then delete or flag it on the server.
//! A crash or dropped connection between the two leaves the mail on the server; the next
//! round finds its intake record and just deletes or flags it — no loss, no duplicate.
//! Connection errors are retried with backoff (1 s doubling to 60 s).

pub mod config;
mod imap;
pub mod message;
mod net;
mod pop3;

pub use config::{After, MailboxConfig, Protocol, TlsMode};

use sb_core::alerts::MailIntake;
use sb_service::Service;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Start a listener per mailbox; they stop when `stop` is cancelled.
pub fn spawn(service: Arc<Service>, mailboxes: Vec<MailboxConfig>, stop: CancellationToken) {
    for m in mailboxes {
        let (service, stop) = (service.clone(), stop.clone());
        tokio::spawn(async move { run(service, m, stop).await });
    }
}

async fn run(service: Arc<Service>, m: MailboxConfig, stop: CancellationToken) {
    service.update_mailbox(&m.name, |s| {
        s.protocol = match m.protocol {
            Protocol::Imap => "imap".into(),
            Protocol::Pop3 => "pop3".into(),
        };
        s.host = m.host.clone();
        s.port = m.port();
        s.state = "connecting".into();
    });
    let mut backoff = Duration::from_secs(1);
    loop {
        let result = match m.protocol {
            Protocol::Imap => imap::session(&service, &m, &stop, &mut backoff).await,
            Protocol::Pop3 => pop3::poll_forever(&service, &m, &stop, &mut backoff).await,
        };
        match result {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(mailbox = %m.name, host = %m.host, error = %e, retry_in_s = backoff.as_secs(), "mailbox error");
                service.update_mailbox(&m.name, |s| {
                    s.state = "error".into();
                    s.last_error = e.to_string();
                });
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.cancelled() => break,
        }
        backoff = (backoff * 2).min(Duration::from_secs(60));
    }
    service.update_mailbox(&m.name, |s| s.state = "stopped".into());
}

/// Why a session ended early; the listener logs it and reconnects.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MailError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("IMAP: {0}")]
    Imap(#[from] async_imap::error::Error),
    #[error("POP3: {0}")]
    Pop3(String),
    #[error("{0}")]
    Config(String),
    #[error("the mail was not taken, it stays on the server: {0}")]
    NotTaken(#[from] sb_service::ServiceError),
    #[error("the server did not answer within {0:?}")]
    Timeout(Duration),
}

/// Bound one exchange with the server.
pub(crate) async fn within<T, E: Into<MailError>>(
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, MailError> {
    match tokio::time::timeout(net::IO_TIMEOUT, f).await {
        Ok(r) => r.map_err(Into::into),
        Err(_) => Err(MailError::Timeout(net::IO_TIMEOUT)),
    }
}

/// Take one fetched mail: its alert (or refusal) is stored when this returns `Ok`, and the
/// caller may now delete or flag it.
pub(crate) async fn take(
    service: &Service,
    m: &MailboxConfig,
    raw: &[u8],
    truncated: bool,
) -> Result<MailIntake, MailError> {
    let read = message::read_mail(raw, m, truncated, service.now());
    let (outcome, new) = service.take_mail(read.intake, read.alert).await?;
    if !new {
        tracing::info!(mailbox = %m.name, mail = %outcome.key, outcome = %outcome.outcome, "mail taken before; removing it");
        return Ok(outcome);
    }
    if outcome.outcome == "alert" {
        tracing::info!(mailbox = %m.name, sender = %outcome.sender, alert = ?outcome.alert, "mail became an alert");
    }
    service.update_mailbox(&m.name, |s| match outcome.outcome.as_str() {
        "alert" => s.alerts += 1,
        "refused" => s.refused += 1,
        _ => s.duplicates += 1,
    });
    Ok(outcome)
}

/// The mailbox's password (config or file).
pub(crate) fn secret(m: &MailboxConfig) -> Result<String, MailError> {
    m.secret().map_err(MailError::Config)
}
