//! The WebSocket door (`/api/v1/ws`, docs/protocol.md).
//!
//! One task per connection reads client frames and writes queued server frames. A message
//! waiting for its durable commit does not stop the loop: the submission is a future the
//! loop polls beside reading and delivering. A session's messages are submitted one at a
//! time (later ones wait in a short queue), so their order is the order the client sent them.

use crate::error::{classify, ApiError};
use crate::extract::{bearer, cookie, ApiQuery, SESSION_COOKIE};
use crate::wire;
use crate::AppState;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use futures_util::future::OptionFuture;
use futures_util::{SinkExt, StreamExt};
use sb_core::pipeline::Door;
use sb_core::{ConversationId, EventId, PresenceState, User};
use sb_service::hub::Outbound;
use sb_service::{Frame, Principal, Service, ServiceError};
use serde::Deserialize;
use serde_json::json;
use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// A frame that does not reach the client in this long means a stuck peer.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Server pings an otherwise quiet connection this often…
const PING_EVERY: Duration = Duration::from_secs(30);
/// …and gives up on a peer that has sent nothing, not even a pong, for this long.
const SILENCE_LIMIT: Duration = Duration::from_secs(75);
const RESUME_PAGE: i64 = 500;
/// Messages a session may have queued behind the one being stored.
const MAX_WAITING_SENDS: usize = 64;

#[derive(Deserialize)]
pub struct WsQuery {
    resume_from: Option<i64>,
    token: Option<String>,
    /// `all` (default) to receive everyone's presence, `none` for clients that do not show it.
    presence: Option<String>,
    /// `console` (default): the client shows queue offers; `plain`: a plain IM client, to which
    /// queues send offers as messages (`/accept`, `/decline`, …).
    client: Option<String>,
}

pub async fn upgrade(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<WsQuery>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let permit = app.service.admit_connection(peer.ip())?;
    let (token, via_cookie) = match (bearer(&headers), q.token.clone()) {
        (Some(t), _) | (None, Some(t)) => (t, false),
        (None, None) => (cookie(&headers, SESSION_COOKIE).ok_or_else(ApiError::unauthenticated)?, true),
    };
    if via_cookie && !same_origin(&headers) {
        // Cross-site WebSocket hijacking: a cookie alone must not open a socket from another site.
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf_failed",
            "cross-origin WebSocket with a session cookie refused",
        ));
    }
    let user = match app.service.authenticate(&token).await? {
        Principal::User { user, .. } => user,
        Principal::App(_) => return Err(ApiError::forbidden("applications do not open chat sessions")),
    };
    // A guest connects only while its chat is open, and only so many times at once.
    let guest_permit = app.service.admit_guest_socket(&user)?;
    // Guests never see directory presence.
    let watch = !user.is_guest()
        && match q.presence.as_deref() {
            None | Some("all") => true,
            Some("none") => false,
            Some(other) => return Err(ApiError::bad_request(format!("presence must be all or none, not {other:?}"))),
        };
    let console = match q.client.as_deref() {
        None | Some("console") => true,
        Some("plain") => false,
        Some(other) => return Err(ApiError::bad_request(format!("client must be console or plain, not {other:?}"))),
    };
    let limit = app.service.settings().max_message_bytes;
    let resume = q.resume_from.map(EventId);
    Ok(ws
        // Frames up to 16x the message limit are read and answered with an error frame;
        // larger ones close the connection (1009) without being buffered. A small read
        // buffer keeps idle sessions cheap (it grows for large frames).
        .max_message_size(limit * 16 + 4096)
        .max_frame_size(limit * 16 + 4096)
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .on_upgrade(move |socket| {
            let service = app.service.clone();
            let tasks = service.tasks().clone();
            // Runs in the task axum spawned for the upgrade; tracked, so shutdown waits for it.
            let span = tracing::debug_span!("session", user = %user.address);
            let session = async move {
                let _permits = (permit, guest_permit);
                run(socket, service, user, watch, console, resume).await;
            };
            tasks.track_future(tracing::Instrument::instrument(session, span))
        }))
}

fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true; // not a browser
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) == Some(host)
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum ClientFrame {
    Send {
        conversation: i64,
        body: String,
        client_id: Option<String>,
    },
    Presence {
        state: String,
        #[serde(default)]
        note: String,
    },
    Idle {
        idle: bool,
    },
    Typing {
        conversation: i64,
        active: bool,
    },
    Read {
        conversation: i64,
        up_to: i64,
    },
    Ping {
        #[serde(rename = "ref")]
        reference: Option<serde_json::Value>,
    },
    /// Expert: take an offered queue chat.
    Accept {
        chat: u64,
    },
    /// Expert: pass on an offered queue chat.
    Decline {
        chat: u64,
    },
    /// Seeker or expert: end a queue chat.
    EndChat {
        chat: u64,
    },
}

struct Submit {
    conversation: ConversationId,
    body: String,
    client_id: Option<String>,
}

async fn run(
    socket: WebSocket,
    service: Arc<Service>,
    user: User,
    watch: bool,
    console: bool,
    resume: Option<EventId>,
) {
    let (handle, snapshot) = service.open_session(&user, watch, console);
    {
        // Alerts held for this user while they were away.
        let (service, user) = (service.clone(), user.id);
        tokio::spawn(async move { service.deliver_held_alerts(user).await });
    }
    let key = handle.key;
    service.replay_queue_state(key, &user);
    let mut rx = handle.rx;
    let (mut sink, mut stream) = socket.split();
    let shutdown = service.shutdown_token();

    macro_rules! send {
        ($text:expr) => {
            match tokio::time::timeout(
                WRITE_TIMEOUT,
                sink.send(Message::Text(Utf8Bytes::from(AsRef::<str>::as_ref(&$text)))),
            )
            .await
            {
                Ok(Ok(())) => true,
                _ => false,
            }
        };
    }

    // Boxed: this one-off phase would otherwise be part of the session future for its whole life.
    let mut alive = Box::pin(async {
        // A guest retired while this socket was opening: asked after registering, so either
        // this sees it or the retirement (which disables first) ends this session.
        if service.check_guest_active(&user).await.is_err() {
            let close = Message::Close(Some(CloseFrame { code: 1000, reason: "session ended".into() }));
            let _ = tokio::time::timeout(WRITE_TIMEOUT, sink.send(close)).await;
            return (false, EventId(0));
        }
        let last = service.last_event_id().await.unwrap_or_default();
        let presence = service.presence(user.id);
        let ready = json!({
            "type": "ready",
            "session": format!("s-{}", key.session),
            "user": wire::user(&user, Some(&presence)),
            "last_event": last.0,
        });
        if !send!(ready.to_string()) {
            return (false, EventId(0));
        }
        for (address, presence) in snapshot {
            if !send!(wire::encode(&Frame::Presence { address, presence })) {
                return (false, EventId(0));
            }
        }
        // Backlog after registration: anything stored later also arrives live, and the
        // loop below drops live events at or below the highest id sent here.
        let mut cursor = resume.unwrap_or(EventId(0));
        if resume.is_some() {
            loop {
                let page = match service.events_after(&user, cursor, RESUME_PAGE).await {
                    Ok(p) => p,
                    Err(_) => return (false, cursor),
                };
                for e in &page {
                    cursor = e.id;
                    if !send!(wire::encode(&Frame::Event(e.clone()))) {
                        return (false, cursor);
                    }
                }
                if (page.len() as i64) < RESUME_PAGE {
                    break;
                }
            }
        }
        (true, cursor)
    })
    .await;
    let replayed_up_to = alive.1;

    let mut inflight: Option<Pin<Box<dyn Future<Output = Frame> + Send>>> = None;
    let mut waiting: VecDeque<Submit> = VecDeque::new();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let mut window_start = tokio::time::Instant::now();
    let mut last_heard = tokio::time::Instant::now();
    let mut frames_in_window = 0u32;

    while alive.0 {
        tokio::select! {
            _ = shutdown.cancelled() => {
                let _ = send!(wire::encode(&Frame::Closing { reason: "server shutting down".into() }));
                let _ = sink.send(Message::Close(Some(CloseFrame { code: 1001, reason: "server shutting down".into() }))).await;
                break;
            }
            Some(frame) = OptionFuture::from(inflight.as_mut()) => {
                inflight = waiting.pop_front().map(|s| submit(service.clone(), user.clone(), key, s));
                alive.0 = send!(wire::encode(&frame));
            }
            out = rx.recv() => {
                let Some(out) = out else {
                    // The service ended this session (a guest whose chat is over).
                    let close = Message::Close(Some(CloseFrame { code: 1000, reason: "session ended".into() }));
                    let _ = tokio::time::timeout(WRITE_TIMEOUT, sink.send(close)).await;
                    break;
                };
                if let Frame::Event(e) = &out.frame {
                    if e.id <= replayed_up_to {
                        continue;
                    }
                }
                if handle.overflowed.load(Ordering::Relaxed) {
                    let _ = sink.send(Message::Close(Some(CloseFrame { code: 1008, reason: "too slow: resume from your last event id".into() }))).await;
                    break;
                }
                alive.0 = send!(encoded(&out));
            }
            msg = stream.next() => {
                last_heard = tokio::time::Instant::now();
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Binary(_))) => {
                        alive.0 = send!(error_frame("bad_request", "frames are JSON text", None));
                        continue;
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_))) | None => break,
                    Some(Err(e)) => {
                        // Say why before closing, as RFC 6455 asks: a protocol error (1002),
                        // text that is not UTF-8 (1007), a message over the limit (1009).
                        tracing::debug!(error = %e, "websocket read failed");
                        if let Some((code, reason)) = close_for(e) {
                            let close = Message::Close(Some(CloseFrame { code, reason: reason.into() }));
                            let _ = tokio::time::timeout(WRITE_TIMEOUT, sink.send(close)).await;
                        }
                        break;
                    }
                };
                let now = tokio::time::Instant::now();
                if now.duration_since(window_start) >= Duration::from_secs(1) {
                    window_start = now;
                    frames_in_window = 0;
                }
                frames_in_window += 1;
                // A frame refused before it is read as a whole is named by its client_id, so
                // the client knows which send to retry.
                let refused = if frames_in_window > service.settings().max_frames_per_second {
                    Some(("rate_limited", "too many frames; slow down".to_string()))
                } else {
                    crate::guard::json_control_char(text.as_bytes()).map(|c| {
                        let e = crate::guard::invalid_text(c);
                        (e.code, e.message)
                    })
                };
                if let Some((code, message)) = refused {
                    let reference = serde_json::from_str::<FrameRef>(text.as_str()).ok().and_then(|f| f.client_id);
                    alive.0 = send!(error_frame(code, &message, reference.as_deref()));
                    continue;
                }
                let frame: ClientFrame = match serde_json::from_str(text.as_str()) {
                    Ok(f) => f,
                    Err(e) => {
                        let code = if text.len() > service.settings().max_message_bytes + 1024 { "message_too_large" } else { "bad_request" };
                        let message: String = format!("cannot read frame: {e}").chars().take(300).collect();
                        alive.0 = send!(error_frame(code, &message, None));
                        continue;
                    }
                };
                match frame {
                    ClientFrame::Send { conversation, body, client_id } => {
                        let s = Submit { conversation: ConversationId(conversation), body, client_id };
                        if inflight.is_none() {
                            inflight = Some(submit(service.clone(), user.clone(), key, s));
                        } else if waiting.len() < MAX_WAITING_SENDS {
                            waiting.push_back(s);
                        } else {
                            alive.0 = send!(error_frame("rate_limited", "too many messages in flight; wait for acks", s.client_id.as_deref()));
                        }
                    }
                    ClientFrame::Presence { state, note } => {
                        match PresenceState::parse(&state).filter(|s| *s != PresenceState::Offline) {
                            Some(s) => service.set_presence(key, &user.address, s, &note),
                            None => alive.0 = send!(error_frame("bad_request", "state must be one of available, busy, dnd, away", None)),
                        }
                    }
                    ClientFrame::Idle { idle } => service.set_idle(key, &user.address, idle),
                    ClientFrame::Typing { conversation, active } => {
                        if let Err(e) = service.typing(&user, Some(key), ConversationId(conversation), active).await {
                            alive.0 = send!(service_error_frame(&e, None));
                        }
                    }
                    ClientFrame::Read { conversation, up_to } => {
                        if let Err(e) = service.mark_read(&user, ConversationId(conversation), EventId(up_to)).await {
                            alive.0 = send!(service_error_frame(&e, None));
                        }
                    }
                    ClientFrame::Accept { chat } => {
                        // The resulting queue_chat frame arrives through the session queue.
                        if let Err(e) = service.accept_queue_chat(&user, sb_core::queue::ChatId(chat)).await {
                            alive.0 = send!(service_error_frame(&e, None));
                        }
                    }
                    ClientFrame::Decline { chat } => {
                        if let Err(e) = service.decline_queue_chat(&user, sb_core::queue::ChatId(chat)).await {
                            alive.0 = send!(service_error_frame(&e, None));
                        }
                    }
                    ClientFrame::EndChat { chat } => {
                        if let Err(e) = service.end_queue_chat(&user, sb_core::queue::ChatId(chat)).await {
                            alive.0 = send!(service_error_frame(&e, None));
                        }
                    }
                    ClientFrame::Ping { reference } => {
                        alive.0 = send!(json!({"type": "pong", "ref": reference}).to_string());
                    }
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > SILENCE_LIMIT {
                    tracing::debug!(session = key.session, "peer silent; closing");
                    break;
                }
                alive.0 = tokio::time::timeout(WRITE_TIMEOUT, sink.send(Message::Ping(Default::default()))).await.is_ok_and(|r| r.is_ok());
            }
        }
    }
    // A submission cut short here was either stored (a resuming client gets it by id, a
    // retry by client_id finds it) or not, and then it was never acknowledged.
    service.close_session(key, &user.address);
}

fn submit(
    service: Arc<Service>,
    user: User,
    key: sb_core::SessionKey,
    s: Submit,
) -> Pin<Box<dyn Future<Output = Frame> + Send>> {
    Box::pin(async move {
        match service
            .send_message(&user, Some(key), Door::WebSocket, s.conversation, &s.body, s.client_id.clone())
            .await
        {
            Ok(event) => Frame::Ack { client_id: s.client_id, event },
            Err(e) => {
                let (_, code, message) = classify(&e);
                Frame::Error { code, message, reference: s.client_id }
            }
        }
    })
}

/// Just the `client_id` of a frame that is refused before it is read as a whole.
#[derive(Deserialize)]
struct FrameRef {
    client_id: Option<String>,
}

/// The close frame for a read error; `None` when the peer is gone anyway.
fn close_for(e: axum::Error) -> Option<(u16, &'static str)> {
    use tungstenite::Error as E;
    match e.into_inner().downcast::<E>().map(|b| *b) {
        Ok(E::Capacity(_)) => Some((1009, "message too big")),
        Ok(E::Utf8(_)) => Some((1007, "text frame is not valid UTF-8")),
        Ok(E::Protocol(_)) => Some((1002, "protocol error")),
        Ok(E::AttackAttempt) => Some((1008, "refused")),
        _ => None,
    }
}

fn encoded(out: &Outbound) -> Arc<str> {
    out.encoded(wire::encode)
}

fn error_frame(code: &'static str, message: &str, reference: Option<&str>) -> String {
    wire::encode(&Frame::Error { code, message: message.to_string(), reference: reference.map(str::to_string) })
}

fn service_error_frame(e: &ServiceError, reference: Option<&str>) -> String {
    let (_, code, message) = classify(e);
    wire::encode(&Frame::Error { code, message, reference: reference.map(str::to_string) })
}
