//! The control socket: how `switchboard admin` reaches a running server on the same
//! machine, so that a change it made (a group membership, a queue, a wall) is applied —
//! walls re-judged, queues reloaded — before the command returns.
//!
//! A Unix socket at `<data_dir>/control.sock`, mode 0600 (only the server's OS user, who
//! can edit the database anyway). One request per connection: the line `apply`; the server
//! reloads what the admin commands change (`Service::apply_changes`) and answers `ok` or
//! `error: …`. No server (no socket, or nobody listening) is not an error: the next start
//! reads the database anyway. The server's 2-second reload stays as a safety net (for an
//! admin command run on another machine against the same PostgreSQL database).

use anyhow::Context;
use sb_service::Service;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;

pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("control.sock")
}

/// Listen on the control socket until `stop`.
pub fn listen(path: &Path, service: Arc<Service>, stop: CancellationToken) -> anyhow::Result<()> {
    // A socket left by a server that was killed: nobody answers on it.
    if path.exists() {
        std::fs::remove_file(path).with_context(|| format!("cannot remove the old {}", path.display()))?;
    }
    let listener = UnixListener::bind(path).with_context(|| format!("cannot listen on {}", path.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    let path = path.to_path_buf();
    tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                _ = stop.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!(error = %e, "control socket accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let service = service.clone();
            tokio::spawn(async move {
                if let Err(e) = answer(stream, &service).await {
                    tracing::warn!(error = %e, "control socket request failed");
                }
            });
        }
        let _ = std::fs::remove_file(&path);
    });
    Ok(())
}

async fn answer(stream: UnixStream, service: &Service) -> anyhow::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(5), BufReader::new(read.take(64)).read_line(&mut line)).await??;
    let reply = match line.trim() {
        "apply" => match service.apply_changes().await {
            Ok(()) => "ok\n".to_string(),
            Err(e) => format!("error: {e}\n"),
        },
        other => format!("error: unknown request {other:?}\n"),
    };
    write.write_all(reply.as_bytes()).await?;
    Ok(())
}

/// What became of asking a running server to apply a change.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    /// The server applied it before answering.
    Now,
    /// No server runs on this data folder.
    NoServer,
}

/// Ask the server on `path` (if any) to apply what the database now says.
pub async fn apply(path: &Path) -> anyhow::Result<Applied> {
    let mut stream = match UnixStream::connect(path).await {
        Ok(s) => s,
        Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused) => {
            return Ok(Applied::NoServer)
        }
        Err(e) => return Err(e).with_context(|| format!("cannot reach the server at {}", path.display())),
    };
    let exchange = async {
        stream.write_all(b"apply\n").await?;
        let mut reply = String::new();
        BufReader::new(&mut stream).read_line(&mut reply).await?;
        anyhow::Ok(reply)
    };
    let reply = tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .context("the running server did not answer within 30 s")??;
    match reply.trim() {
        "ok" => Ok(Applied::Now),
        other => anyhow::bail!("the running server could not apply the change: {other}"),
    }
}
