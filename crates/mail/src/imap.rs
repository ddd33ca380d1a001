//! An IMAP mailbox (async-imap): IDLE when offered, polling otherwise.

use crate::config::{After, MailboxConfig, TlsMode};
use crate::net::{self, MailStream};
use crate::{message, secret, take, within, MailError};
use async_imap::extensions::idle::IdleResponse;
use async_imap::imap_proto::{Response, Status};
use async_imap::types::{Flag, UnsolicitedResponse};
use async_imap::{Client, Session};
use futures_util::TryStreamExt;
use sb_service::Service;
use std::collections::HashSet;
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
pub(crate) async fn session(service: &Service, m: &MailboxConfig, stop: &CancellationToken) -> Result<(), MailError> {
    service.update_mailbox(&m.name, |s| s.connects += 1);
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
    // \Deleted mails found not to be this listener's, not looked at again (UIDs stay valid
    // for the session).
    let mut not_ours = HashSet::new();
    loop {
        if m.after == After::Delete {
            expunge_leftovers(service, m, &mut session, uidplus, &mut not_ours).await?;
        }
        while take_batch(service, m, &mut session, uidplus).await? == BATCH {}
        // The backoff is not reset here: a round that worked does not make a connection
        // good if the server ends it right after (see `Backoff::after_failure`).
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
                    r = wait => { ended(r?)?; false }
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

/// Why IDLE returned: new data (go on), or the server said BYE or closed the connection
/// (an error, like any other that ends a connection, so that reconnecting backs off; it
/// also names the server's reason rather than the broken pipe that DONE would meet).
fn ended(r: IdleResponse) -> Result<(), MailError> {
    match r {
        IdleResponse::NewData(d) => match d.parsed() {
            Response::Data { status: Status::Bye, outcome } => {
                let why = outcome.information.as_deref().unwrap_or("").trim();
                Err(MailError::Closed(format!("BYE {why}").trim_end().to_string()))
            }
            _ => Ok(()),
        },
        // async-imap reports the end of the stream as an interrupt; this code never
        // interrupts IDLE (it drops the wait instead).
        IdleResponse::ManualInterrupt => Err(MailError::Closed("end of stream during IDLE".into())),
        IdleResponse::Timeout => Ok(()),
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

/// Expunge mails this listener took and flagged `\Deleted` but never expunged: the server
/// was stopped (or the connection dropped) between the STORE and the EXPUNGE. Taking skips
/// deleted mail, so without this they stayed in the mailbox for good. A mail is this
/// listener's when its intake record says it was taken (not refused: refused mail is kept);
/// `\Deleted` mails of other clients are left to them.
async fn expunge_leftovers(
    service: &Service,
    m: &MailboxConfig,
    session: &mut Session<MailStream>,
    uidplus: bool,
    not_ours: &mut HashSet<u32>,
) -> Result<(), MailError> {
    let deleted: Vec<u32> =
        within(session.uid_search(format!("DELETED UNKEYWORD {REFUSED}"))).await?.into_iter().collect();
    let unknown: Vec<u32> = deleted.iter().copied().filter(|u| !not_ours.contains(u)).take(BATCH).collect();
    let mut ours = Vec::new();
    for uid in &unknown {
        // Fetched as when it was taken, so that its key (the content hash of a mail without
        // a Message-ID) comes out the same.
        let Some(raw) = fetch(m, session, *uid).await? else { continue };
        let key = message::read_mail(&raw, m, raw.len() > m.max_mail_bytes, service.now()).intake.key;
        match service.mail_intake(&m.name, &key).await? {
            Some(taken) if taken.outcome != "refused" => ours.push(*uid),
            _ => {
                not_ours.insert(*uid);
            }
        }
    }
    if ours.is_empty() {
        return Ok(());
    }
    tracing::info!(mailbox = %m.name, mails = ours.len(), "expunging mails taken before but not expunged");
    if uidplus {
        let set = ours.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        within(async { session.uid_expunge(&set).await?.try_collect::<Vec<_>>().await }).await?;
    } else if ours.len() == deleted.len() {
        // Plain EXPUNGE removes every \Deleted mail: only when all of them are ours.
        within(async { session.expunge().await?.try_collect::<Vec<_>>().await }).await?;
    }
    Ok(())
}

/// The mail with this UID: at most one byte over the limit, whatever size the server
/// claims (a mail that fills it is over the limit; its header is in what came). None when
/// someone else removed it meanwhile.
async fn fetch(m: &MailboxConfig, session: &mut Session<MailStream>, uid: u32) -> Result<Option<Vec<u8>>, MailError> {
    let fetched = within(async {
        session
            .uid_fetch(uid.to_string(), format!("BODY.PEEK[]<0.{}>", m.max_mail_bytes + 1))
            .await?
            .try_collect::<Vec<_>>()
            .await
    })
    .await?;
    Ok(fetched.iter().find(|f| f.uid == Some(uid)).and_then(|f| f.body()).map(<[u8]>::to_vec))
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
        let Some(raw) = fetch(m, session, *uid).await? else { continue };
        // A mail that fills the fetch is over the limit: refused.
        let big = raw.len() > m.max_mail_bytes;
        let outcome = take(service, m, &raw, big).await?;
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
