//! Opening one client connection (TCP, optionally TLS, then HTTP/1.1 or HTTP/2).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use slogate_core::measure::ErrorKind;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::failure::RequestError;
use crate::h1::{Http1, Io};
use crate::http2::H2Conn;

/// Where and how to connect: resolved once per plan, shared by every connection.
#[derive(Clone)]
pub(crate) struct Connector {
    host: String,
    port: u16,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    /// Prior-knowledge h2c on plain HTTP.
    h2c: bool,
    connect_timeout: Duration,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls.is_some())
            .field("h2c", &self.h2c)
            .finish()
    }
}

/// An open connection, ready for its first request.
pub(crate) enum Connection {
    /// HTTP/1.1: one request at a time, written and read by the engine itself.
    H1(Http1),
    /// HTTP/2: streams of one connection, shared by the lanes of one engine task.
    H2(H2Conn),
}

/// Builds the TLS client configuration: ring provider, native roots plus `extra_roots`,
/// ALPN `h2` (when asked) then `http/1.1`.
pub(crate) fn tls_config(
    http2: bool,
    extra_roots: &[CertificateDer<'static>],
) -> Result<rustls::ClientConfig, rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    roots.add_parsable_certificates(extra_roots.iter().cloned());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(config)
}

impl Connector {
    pub(crate) fn new(
        host: String,
        port: u16,
        tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
        h2c: bool,
        connect_timeout: Duration,
    ) -> Self {
        Self {
            host,
            port,
            tls: tls.map(|(config, name)| (TlsConnector::from(config), name)),
            h2c,
            connect_timeout,
        }
    }

    /// Opens one connection for the engine and completes the HTTP/2 handshake if it speaks
    /// HTTP/2 (h2c asked for, or `h2` chosen by ALPN).
    pub(crate) async fn connect(&self) -> Result<Connection, RequestError> {
        let (stream, h2) = self.open_stream().await?;
        if !h2 {
            return Ok(Connection::H1(Http1::new(stream)));
        }
        match tokio::time::timeout(self.connect_timeout, H2Conn::handshake(stream)).await {
            Ok(conn) => Ok(Connection::H2(conn?)),
            Err(elapsed) => Err(RequestError::new(ErrorKind::Timeout, elapsed)),
        }
    }

    /// Opens the byte stream (TCP, then TLS for https) within the connect timeout; says
    /// whether it is to speak HTTP/2.
    pub(crate) async fn open_stream(&self) -> Result<(Box<dyn Io>, bool), RequestError> {
        match tokio::time::timeout(self.connect_timeout, self.open_stream_inner()).await {
            Ok(result) => result,
            Err(elapsed) => Err(RequestError::new(ErrorKind::Timeout, elapsed)),
        }
    }

    async fn open_stream_inner(&self) -> Result<(Box<dyn Io>, bool), RequestError> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|err| {
                let kind = match err.kind() {
                    io::ErrorKind::ConnectionRefused => ErrorKind::ConnectRefused,
                    _ => ErrorKind::Connect,
                };
                RequestError::new(kind, err)
            })?;
        // Small requests must leave at once, not wait for Nagle's algorithm.
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => Ok((Box::new(tcp), self.h2c)),
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|err| RequestError::new(ErrorKind::Tls, err))?;
                let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                Ok((Box::new(tls), h2))
            }
        }
    }
}
