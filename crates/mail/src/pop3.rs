//! A POP3 mailbox (RFC 1939, STLS from RFC 2595), polled. Written here: the protocol is a
//! handful of commands, and the one async crate for it would bring its own runtime glue.
//!
//! Each poll is one session: sign in, `LIST`, then for each mail `RETR` (or `TOP n 0` when
//! it is over the size limit), take it, `DELE` it. Deletions take effect at `QUIT`; if the
//! connection drops first the mails come back next time, and their intake records keep
//! them from becoming alerts twice.

use crate::config::{MailboxConfig, TlsMode};
use crate::net::{self, MailStream};
use crate::{secret, take, within, Backoff, MailError};
use sb_service::Service;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio_util::sync::CancellationToken;

/// One line of the protocol (commands and status lines are far shorter).
const MAX_LINE: usize = 8192;

pub(crate) async fn poll_forever(
    service: &Service,
    m: &MailboxConfig,
    stop: &CancellationToken,
    backoff: &mut Backoff,
) -> Result<(), MailError> {
    loop {
        tokio::select! {
            r = poll_once(service, m) => r?,
            _ = stop.cancelled() => return Ok(()),
        }
        // A whole connection, sign-in to QUIT, worked.
        backoff.reset();
        service.update_mailbox(&m.name, |s| {
            s.state = "polling".into();
            s.last_error.clear();
            s.last_check = Some(service.now());
        });
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(m.poll_interval_s)) => {}
            _ = stop.cancelled() => return Ok(()),
        }
    }
}

async fn poll_once(service: &Service, m: &MailboxConfig) -> Result<(), MailError> {
    service.update_mailbox(&m.name, |s| s.connects += 1);
    let tcp = net::connect(m).await?;
    let mut conn = match m.tls {
        TlsMode::Tls => Conn::new(net::tls(m, tcp).await?),
        TlsMode::None => Conn::new(MailStream::Plain(tcp)),
        TlsMode::Starttls => {
            let mut plain = Conn::new(tcp);
            plain.status().await?;
            plain.command("STLS").await?;
            Conn::new(net::tls(m, plain.into_inner()).await?)
        }
    };
    if m.tls != TlsMode::Starttls {
        conn.status().await?;
    }
    conn.command(&format!("USER {}", m.user)).await?;
    conn.command(&format!("PASS {}", secret(m)?)).await?;
    conn.send("LIST").await?;
    conn.status().await?;
    let mut mails: Vec<(u32, usize)> = Vec::new();
    let (listing, _) = conn.lines(MAX_LINE * 64).await?;
    for line in String::from_utf8_lossy(&listing).lines() {
        let mut parts = line.split_whitespace();
        if let (Some(Ok(n)), Some(Ok(size))) = (parts.next().map(str::parse), parts.next().map(str::parse)) {
            mails.push((n, size));
        }
    }
    for (n, size) in mails {
        let big = size > m.max_mail_bytes;
        // TOP (headers only) is optional in POP3: without it, RETR — `lines` keeps at most
        // the limit of what it reads.
        let retr = format!("RETR {n}");
        if big {
            conn.send(&format!("TOP {n} 0")).await?;
            if let Err(MailError::Pop3(_)) = conn.status().await {
                conn.command(&retr).await?;
            }
        } else {
            conn.command(&retr).await?;
        }
        // A server may report a size below the truth: whatever it sends is read (to keep
        // the protocol in step) but only up to the limit kept.
        let (raw, over) = conn.lines(m.max_mail_bytes).await?;
        take(service, m, &raw, big || over).await?;
        conn.command(&format!("DELE {n}")).await?;
    }
    conn.command("QUIT").await?;
    Ok(())
}

struct Conn<S> {
    io: BufReader<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    fn new(stream: S) -> Self {
        Self { io: BufReader::new(stream) }
    }

    fn into_inner(self) -> S {
        self.io.into_inner()
    }

    async fn send(&mut self, line: &str) -> Result<(), MailError> {
        within(async {
            self.io.get_mut().write_all(format!("{line}\r\n").as_bytes()).await?;
            self.io.get_mut().flush().await
        })
        .await
    }

    /// Send a command and read its status line.
    async fn command(&mut self, line: &str) -> Result<String, MailError> {
        self.send(line).await?;
        self.status().await.map_err(|e| match e {
            // Never put the password in a log line.
            MailError::Pop3(reply) if line.starts_with("PASS ") => MailError::Pop3(format!("PASS: {reply}")),
            MailError::Pop3(reply) => MailError::Pop3(format!("{}: {reply}", line.split(' ').next().unwrap_or(line))),
            e => e,
        })
    }

    /// One status line: `+OK …` or an error.
    async fn status(&mut self) -> Result<String, MailError> {
        let line = self.line().await?;
        match line.strip_prefix("+OK") {
            Some(rest) => Ok(rest.trim().to_string()),
            None => Err(MailError::Pop3(line.trim().to_string())),
        }
    }

    async fn line(&mut self) -> Result<String, MailError> {
        let mut buf = Vec::new();
        let n = within((&mut self.io).take(MAX_LINE as u64).read_until(b'\n', &mut buf)).await?;
        if n == 0 {
            return Err(MailError::Pop3("the server closed the connection".into()));
        }
        if !buf.ends_with(b"\n") {
            return Err(MailError::Pop3("a line from the server is too long".into()));
        }
        Ok(String::from_utf8_lossy(&buf).trim_end_matches(['\r', '\n']).to_string())
    }

    /// A multi-line answer up to the lone ".", dot-unstuffed, lines joined with CRLF (bytes
    /// as sent: a mail need not be UTF-8). Keeps at most `limit` bytes; the flag says
    /// whether more was sent. A line longer than a read arrives in pieces: only a piece
    /// that starts a line can be the terminator or be dot-stuffed.
    async fn lines(&mut self, limit: usize) -> Result<(Vec<u8>, bool), MailError> {
        let mut out = Vec::new();
        let mut over = false;
        let mut line_start = true;
        loop {
            let mut buf = Vec::new();
            let n = within((&mut self.io).take(MAX_LINE as u64).read_until(b'\n', &mut buf)).await?;
            if n == 0 {
                return Err(MailError::Pop3("the server closed the connection mid-answer".into()));
            }
            let complete = buf.ends_with(b"\n");
            let mut piece = buf.as_slice();
            if complete {
                piece = piece.strip_suffix(b"\n").unwrap_or(piece);
                piece = piece.strip_suffix(b"\r").unwrap_or(piece);
            }
            if line_start {
                if complete && piece == b"." {
                    return Ok((out, over));
                }
                piece = piece.strip_prefix(b".").unwrap_or(piece);
            }
            if over || out.len() + piece.len() + 2 > limit {
                over = true;
            } else {
                out.extend_from_slice(piece);
                if complete {
                    out.extend_from_slice(b"\r\n");
                }
            }
            line_start = complete;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A line longer than one read, whose next piece is a lone "." (as a terminator would
    /// look): it stays mail text, and the answer ends only at the real terminator.
    #[tokio::test]
    async fn a_long_line_cannot_end_the_answer_early() {
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        let long = "a".repeat(MAX_LINE);
        let answer = format!("Subject: x\r\n\r\n{long}.\r\n..stuffed\r\n+OK not a reply\r\n.\r\n+OK next\r\n");
        let writer = tokio::spawn(async move { server.write_all(answer.as_bytes()).await.unwrap() });
        let mut conn = Conn::new(client);
        let (mail, over) = conn.lines(1 << 20).await.unwrap();
        writer.await.unwrap();
        let text = String::from_utf8(mail).unwrap();
        assert!(!over);
        assert_eq!(text, format!("Subject: x\r\n\r\n{long}.\r\n.stuffed\r\n+OK not a reply\r\n"));
        assert_eq!(conn.status().await.unwrap(), "next", "the protocol stays in step");
    }

    #[tokio::test]
    async fn more_than_the_limit_is_read_but_not_kept() {
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        let answer = format!("{}\r\n{}\r\n.\r\n+OK after\r\n", "b".repeat(3000), "c".repeat(3000));
        let writer = tokio::spawn(async move { server.write_all(answer.as_bytes()).await.unwrap() });
        let mut conn = Conn::new(client);
        let (mail, over) = conn.lines(4096).await.unwrap();
        writer.await.unwrap();
        assert!(over && mail.len() <= 4096);
        assert_eq!(conn.status().await.unwrap(), "after");
    }
}
