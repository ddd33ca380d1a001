//! The accept loop: HTTP/1.1 with a header read timeout (axum's `serve` sets no timer, so a
//! client that sends headers a byte a minute kept its connection and task for ever), the
//! peer address for limits per client, `TCP_NODELAY`, and a graceful drain.
//!
//! HTTP/1.1 only, on purpose: hyper's HTTP/1 timer runs from the first read, so a client
//! that connects and sends nothing is closed too, and every request body is framed by
//! `Content-Length` or chunked encoding, which the guard relies on. (hyper-util's automatic
//! HTTP/1-or-2 builder reads the protocol preface with no timeout.)

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

/// Accept and serve connections until `shutdown` completes, then stop accepting and let
/// open connections finish (`drained` runs once nothing is accepted any more, so the
/// caller can end long-lived sessions). A client has `header_timeout` to send a request's
/// headers, from the moment it connects.
pub async fn run(
    listener: TcpListener,
    app: Router,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drained: impl FnOnce(),
) {
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(header_timeout);
    // Tell connections to finish; know when the last one has.
    let (stop_tx, stop_rx) = watch::channel(false);
    let (done_tx, done_rx) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors, say: wait a little rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true); // chat frames are small and latency-bound
        let svc = app.clone().map_request(move |mut req: axum::http::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            req.map(Body::new)
        });
        let conn = builder.serve_connection(TokioIo::new(tcp), TowerToHyperService::new(svc)).with_upgrades();
        let (mut stop, done) = (stop_rx.clone(), done_rx.clone());
        tokio::spawn(async move {
            let _done = done; // dropped when this connection is over
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => if let Err(e) = r { tracing::trace!(error = %e, "connection ended with an error") },
                // (The watch guard is dropped at once: it must not live across an await.)
                _ = async { stop.wait_for(|s| *s).await.map(drop) } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(listener);
    drained();
    let _ = stop_tx.send(true);
    drop(done_rx);
    done_tx.closed().await;
}
