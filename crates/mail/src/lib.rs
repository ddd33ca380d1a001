//! The mailbox listener: configured IMAP and POP3 mailboxes whose mail becomes alerts.
//!
//! Each mailbox runs as one task: connect (TLS, STARTTLS or plain), sign in, take every
//! mail there is, then wait — IMAP IDLE when the server offers it, otherwise a poll every
//! `poll_interval_s`. Taking a mail is: read it (`message::read_mail`), hand it to
//! `Service::take_mail` (which stores the alert and the mail's intake record in one
//! transaction, or records the refusal), and only then delete or flag it on the server.
//! A crash or dropped connection between the two leaves the mail on the server; the next
//! round finds its intake record and just deletes or flags it — no loss, no duplicate.
//! Connection errors — a server's BYE included — are retried with backoff (1 s doubling to
//! 60 s; back to 1 s only after a connection that lasted a minute).

pub mod config;
mod html;
mod imap;
pub mod message;
mod net;
mod pop3;

pub use config::{After, MailboxConfig, Protocol, TlsMode};

use sb_core::alerts::MailIntake;
use sb_service::Service;
use std::sync::Arc;
use std::time::{Duration, Instant};
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
    let mut backoff = Backoff::default();
    loop {
        let started = Instant::now();
        let result = match m.protocol {
            Protocol::Imap => imap::session(&service, &m, &stop).await,
            Protocol::Pop3 => pop3::poll_forever(&service, &m, &stop, &mut backoff).await,
        };
        let Err(e) = result else { break };
        let wait = backoff.after_failure(started.elapsed());
        tracing::warn!(mailbox = %m.name, host = %m.host, error = %e, retry_in_s = wait.as_secs(), "mailbox error");
        service.update_mailbox(&m.name, |s| {
            s.state = "error".into();
            s.last_error = e.to_string();
        });
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.cancelled() => break,
        }
    }
    service.update_mailbox(&m.name, |s| s.state = "stopped".into());
}

/// How long to wait before reconnecting: 1 s, doubling to 60 s while connections keep
/// failing.
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { next: Self::FIRST }
    }
}

impl Backoff {
    const FIRST: Duration = Duration::from_secs(1);
    const LONGEST: Duration = Duration::from_secs(60);

    /// The wait after a connection that lasted `lasted` ended in an error (a refused
    /// connection, a failed sign-in, a BYE, a drop).
    ///
    /// Only a connection that outlived the longest wait counts as good and starts the waits
    /// over. Signing in and taking the mail once is not enough: a server that says BYE (or
    /// drops the connection) each time right after that — shutting down, over its connection
    /// limit, an administrator kicking sessions — would otherwise be reconnected to every
    /// second for as long as that goes on, while every other failure backs off.
    fn after_failure(&mut self, lasted: Duration) -> Duration {
        if lasted >= Self::LONGEST {
            self.next = Self::FIRST;
        }
        let wait = self.next;
        self.next = (wait * 2).min(Self::LONGEST);
        wait
    }

    /// A POP3 poll went from sign-in to QUIT: the server works; a later failure waits 1 s.
    pub(crate) fn reset(&mut self) {
        self.next = Self::FIRST;
    }
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
    #[error("the server closed the connection: {0}")]
    Closed(String),
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

#[cfg(test)]
mod tests {
    use super::Backoff;
    use std::time::Duration;

    const AT_ONCE: Duration = Duration::from_millis(50);

    fn waits(b: &mut Backoff, lasted: &[Duration]) -> Vec<u64> {
        lasted.iter().map(|l| b.after_failure(*l).as_secs()).collect()
    }

    #[test]
    fn failing_connections_back_off_to_a_minute() {
        let mut b = Backoff::default();
        assert_eq!(waits(&mut b, &[AT_ONCE; 8]), [1, 2, 4, 8, 16, 32, 60, 60]);
    }

    /// A server that signs the listener in, lets it take the mail, then says BYE (a few
    /// seconds later, each time): that is a failing server, not a good connection.
    #[test]
    fn a_bye_after_a_short_session_keeps_backing_off() {
        let mut b = Backoff::default();
        assert_eq!(waits(&mut b, &[Duration::from_secs(3); 5]), [1, 2, 4, 8, 16]);
    }

    #[test]
    fn a_connection_that_lasted_starts_the_waits_over() {
        let mut b = Backoff::default();
        waits(&mut b, &[AT_ONCE; 6]);
        assert_eq!(waits(&mut b, &[Duration::from_secs(3600), AT_ONCE]), [1, 2]);
        waits(&mut b, &[AT_ONCE; 6]);
        b.reset();
        assert_eq!(waits(&mut b, &[AT_ONCE]), [1], "a POP3 poll that worked");
    }
}
