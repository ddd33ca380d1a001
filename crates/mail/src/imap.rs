//! An IMAP mailbox (async-imap): IDLE when offered, polling otherwise.

use crate::config::{After, MailboxConfig, TlsMode};
use crate::net::{self, MailStream};
use crate::{secret, take, within, MailError};
use async_imap::types::{Flag, UnsolicitedResponse};
use async_imap::{Client, Session};
use futures_util::TryStreamExt;
use sb_service::Service;
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
    let caps = within(session.capabilities()).await?;
    let idle = m.idle && caps.has_str("IDLE");
    let uidplus = caps.has_str("UIDPLUS");
    let folder = within(session.select(&m.folder)).await?;
    // Taken and refused mails drop out of the search by their keywords; a folder that
    // silently drops keywords would hand them back every round (and, once their intake
    // records are pruned, as new alerts).
    if !folder.permanent_flags.iter().any(|f| matches!(f, Flag::MayCreate)) {
        return Err(MailError::Config(format!(
            "folder {:?} does not keep keywords (no \\* in PERMANENTFLAGS); Switchboard needs them to mark mail",
            m.folder
        )));
    }
    let state = if idle { "idle" } else { "polling" };
    tracing::info!(mailbox = %m.name, host = %m.host, idle, "mailbox connected");
    let poll = Duration::from_secs(m.poll_interval_s);
    loop {
        while take_batch(service, m, &mut session, uidplus).await? == BATCH {}
        // A whole round worked: only now is the connection known good (an error in every
        // round must keep doubling the wait, not reconnect each second).
        *backoff = Duration::from_secs(1);
        service.update_mailbox(&m.name, |s| {
            s.state = state.into();
            s.last_error.clear();
            s.last_check = Some(service.now());
        });
        // Every round searches, so unsolicited responses are not needed — except that new
        // mail announced during the round (EXISTS/RECENT) must not wait for the next poll.
        let mut announced = false;
        while let Ok(r) = session.unsolicited_responses.try_recv() {
            announced |= matches!(r, UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_));
        }
        if announced {
            continue;
        }
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
    uidplus: bool,
) -> Result<usize, MailError> {
    let query = match m.after {
        After::Delete => format!("UNDELETED UNKEYWORD {REFUSED}"),
        After::Flag => format!("UNDELETED UNKEYWORD {TAKEN} UNKEYWORD {REFUSED}"),
    };
    let mut uids: Vec<u32> = within(session.uid_search(&query)).await?.into_iter().collect();
    uids.sort_unstable();
    uids.truncate(BATCH);
    let mut deleted = Vec::new();
    for uid in &uids {
        // At most one byte over the limit is fetched, whatever size the server claims: a
        // mail that fills it is over the limit and refused (its header is in what came).
        let fetched = within(async {
            session
                .uid_fetch(uid.to_string(), format!("BODY.PEEK[]<0.{}>", m.max_mail_bytes + 1))
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await?;
        let Some(raw) = fetched.iter().find(|f| f.uid == Some(*uid)).and_then(|f| f.body()) else {
            continue; // removed meanwhile by someone else
        };
        let big = raw.len() > m.max_mail_bytes;
        let outcome = take(service, m, raw, big).await?;
        // The alert (or refusal) is stored: now the mail may go.
        let flags = match (outcome.outcome.as_str(), m.after) {
            ("refused", _) => format!("+FLAGS.SILENT ({REFUSED})"),
            (_, After::Delete) => {
                deleted.push(uid.to_string());
                "+FLAGS.SILENT (\\Deleted)".into()
            }
            (_, After::Flag) => format!("+FLAGS.SILENT (\\Seen {TAKEN})"),
        };
        within(async { session.uid_store(uid.to_string(), &flags).await?.try_collect::<Vec<_>>().await }).await?;
    }
    if !deleted.is_empty() {
        // With UIDPLUS only our own mails go; plain EXPUNGE also removes whatever another
        // client marked deleted in this folder.
        if uidplus {
            let set = deleted.join(",");
            within(async { session.uid_expunge(&set).await?.try_collect::<Vec<_>>().await }).await?;
        } else {
            within(async { session.expunge().await?.try_collect::<Vec<_>>().await }).await?;
        }
    }
    Ok(uids.len())
}
