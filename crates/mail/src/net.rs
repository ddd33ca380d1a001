//! Connections to mail servers: TCP, optionally TLS (rustls with the ring provider; the
//! system's roots or the mailbox's own CA file).

use crate::config::MailboxConfig;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

/// Connecting and each read or write of a command are bounded by this, so a server that
/// stops answering is noticed and the listener reconnects.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub enum MailStream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

pub async fn connect(m: &MailboxConfig) -> io::Result<TcpStream> {
    let addr = (m.host.as_str(), m.port());
    let tcp = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connecting timed out"))??;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

/// TLS over `tcp`, checking the server's certificate for the mailbox's host.
pub async fn tls(m: &MailboxConfig, tcp: TcpStream) -> io::Result<MailStream> {
    let config = client_config(m)?;
    let name = ServerName::try_from(m.host.clone())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("{:?} is not a host name", m.host)))?;
    let stream = tokio::time::timeout(IO_TIMEOUT, tokio_rustls::TlsConnector::from(config).connect(name, tcp))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
    Ok(MailStream::Tls(Box::new(stream)))
}

fn client_config(m: &MailboxConfig) -> io::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    if m.ca_file.is_empty() {
        let found = rustls_native_certs::load_native_certs();
        for cert in found.certs {
            let _ = roots.add(cert);
        }
    } else {
        for cert in CertificateDer::pem_file_iter(&m.ca_file)
            .map_err(|e| io::Error::other(format!("cannot read ca_file {}: {e}", m.ca_file)))?
        {
            let cert = cert.map_err(|e| io::Error::other(format!("ca_file {}: {e}", m.ca_file)))?;
            roots.add(cert).map_err(|e| io::Error::other(format!("ca_file {}: {e}", m.ca_file)))?;
        }
    }
    if roots.is_empty() {
        return Err(io::Error::other("no trusted certificates (system roots or ca_file)"));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

impl AsyncRead for MailStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MailStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MailStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MailStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MailStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MailStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MailStream::Plain(s) => Pin::new(s).poll_flush(cx),
            MailStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MailStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MailStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
