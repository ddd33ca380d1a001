//! An IMAP mailbox (async-imap): IDLE when offered, polling otherwise.

use crate::config::{After, MailboxConfig, TlsMode};
use crate::net::{self, MailStream};
use crate::{secret, take, within, MailError};
use async_imap::{Client, Session};
use futures_util::TryStreamExt;
use sb_service::Service;
use std::collections::HashMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Mails taken per search; the search repeats until the mailbox is empty.
const BATCH: usize = 50;
/// Set on mails kept after their alert was stored (`after = "flag"`).
const TAKEN: &str = "$SwitchboardAlert";
/// Set on refused mails, which stay in the mailbox for a person to look at.
const REFUSED: &str = "$SwitchboardRefused";

/// One connection: sign in, then take mail and wait for more until stopped (`Ok`) or the
/// connection fails (`Err`: the caller reconnects).
pub(crate) async fn session(
    service: &Service,
    m: &MailboxConfig,
    stop: &CancellationToken,
    backoff: &mut Duration,
) -> Result<(), MailError> {
    let mut session = tokio::select! {
        s = sign_in(m) => s?,
        _ = stop.cancelled() => return Ok(()),
    };
    let idle = m.idle && within(session.capabilities()).await?.has_str("IDLE");
    within(session.select(&m.folder)).await?;
    *backoff = Duration::from_secs(1);
    let state = if idle { "idle" } else { "polling" };
    service.update_mailbox(&m.name, |s| {
        s.state = state.into();
        s.last_error.clear();
    });
    tracing::info!(mailbox = %m.name, host = %m.host, idle, "mailbox connected");
    let poll = Duration::from_secs(m.poll_interval_s);
    loop {
        while take_batch(service, m, &mut session).await? == BATCH {}
        service.update_mailbox(&m.name, |s| s.last_check = Some(service.now()));
        // Unsolicited responses (EXISTS, EXPUNGE, …) are not needed: every round searches.
        while session.unsolicited_responses.try_recv().is_ok() {}
        if idle {
            let mut handle = session.idle();
            within(handle.init()).await?;
            let stopped = {
                let (wait, _interrupt) = handle.wait_with_timeout(Duration::from_secs(29 * 60));
                tokio::select! {
                    r = wait => { r?; false }
                    _ = tokio::time::sleep(poll) => false,
                    _ = stop.cancelled() => true,
                }
            };
            if stopped {
                return Ok(());
            }
            session = within(handle.done()).await?;
        } else {
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = stop.cancelled() => {
                    let _ = within(session.logout()).await;
                    return Ok(());
                }
            }
            within(session.noop()).await?;
        }
    }
}

async fn sign_in(m: &MailboxConfig) -> Result<Session<MailStream>, MailError> {
    let tcp = net::connect(m).await?;
    let stream = match m.tls {
        TlsMode::Tls => net::tls(m, tcp).await?,
        TlsMode::None => MailStream::Plain(tcp),
        TlsMode::Starttls => {
            let mut client = Client::new(tcp);
            greeting(&mut client).await?;
            within(client.run_command_and_check_ok("STARTTLS", None)).await?;
            net::tls(m, client.into_inner()).await?
        }
    };
    let mut client = Client::new(stream);
    if m.tls != TlsMode::Starttls {
        greeting(&mut client).await?;
    }
    let password = secret(m)?;
    within(async { client.login(&m.user, &password).await.map_err(|(e, _)| e) }).await
}

async fn greeting<T>(client: &mut Client<T>) -> Result<(), MailError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + std::fmt::Debug + Send,
{
    match within(client.read_response()).await? {
        Some(_) => Ok(()),
        None => Err(MailError::Config("the server closed the connection before greeting".into())),
    }
}

/// Take up to `BATCH` mails not taken yet; returns how many were found.
async fn take_batch(
    service: &Service,
    m: &MailboxConfig,
    session: &mut Session<MailStream>,
) -> Result<usize, MailError> {
    let query = match m.after {
        After::Delete => format!("UNDELETED UNKEYWORD {REFUSED}"),
        After::Flag => format!("UNDELETED UNKEYWORD {TAKEN} UNKEYWORD {REFUSED}"),
    };
    let mut uids: Vec<u32> = within(session.uid_search(&query)).await?.into_iter().collect();
    uids.sort_unstable();
    uids.truncate(BATCH);
    if uids.is_empty() {
        return Ok(0);
    }
    let set = uids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
    let sizes: HashMap<u32, u32> =
        within(async { session.uid_fetch(&set, "RFC822.SIZE").await?.try_collect::<Vec<_>>().await })
            .await?
            .into_iter()
            .filter_map(|f| Some((f.uid?, f.size?)))
            .collect();
    let mut deleted = false;
    for uid in &uids {
        // A mail over the limit is refused; only its header is fetched, for the record.
        let big = sizes.get(uid).is_some_and(|s| *s as usize > m.max_mail_bytes);
        let what = if big { "BODY.PEEK[HEADER]" } else { "BODY.PEEK[]" };
        let fetched =
            within(async { session.uid_fetch(uid.to_string(), what).await?.try_collect::<Vec<_>>().await }).await?;
        let Some(raw) =
            fetched.iter().find(|f| f.uid == Some(*uid)).and_then(|f| if big { f.header() } else { f.body() })
        else {
            continue; // removed meanwhile by someone else
        };
        let outcome = take(service, m, raw, big).await?;
        // The alert (or refusal) is stored: now the mail may go.
        let flags = match (outcome.outcome.as_str(), m.after) {
            ("refused", _) => format!("+FLAGS.SILENT ({REFUSED})"),
            (_, After::Delete) => {
                deleted = true;
                "+FLAGS.SILENT (\\Deleted)".into()
            }
            (_, After::Flag) => format!("+FLAGS.SILENT (\\Seen {TAKEN})"),
        };
        within(async { session.uid_store(uid.to_string(), &flags).await?.try_collect::<Vec<_>>().await }).await?;
    }
    if deleted {
        within(async { session.expunge().await?.try_collect::<Vec<_>>().await }).await?;
    }
    Ok(uids.len())
}
