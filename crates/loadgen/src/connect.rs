//! Opening one client connection (TCP, optionally TLS, then HTTP/1.1 or HTTP/2).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use rustls::pki_types::{CertificateDer, ServerName};
use slogate_core::measure::ErrorKind;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::failure::RequestError;
use crate::h1::{Http1, Io};

/// HTTP/2 flow-control windows (stream and connection) the client advertises: as large as
/// the protocol allows less one, as h2load's default, so that no response waits for a
/// WINDOW_UPDATE.
const H2_WINDOW: u32 = (1 << 30) - 1;

/// An HTTP/2 connection's I/O driver; it must be polled for requests on it to make progress.
type Driver = Pin<Box<h2::client::Connection<Box<dyn Io>, Bytes>>>;

/// The driver of one HTTP/2 connection, shared by the streams open on it: whichever exchange
/// is waiting polls it, all from the same task, so no wake-up crosses tasks.
pub(crate) struct H2Driver {
    /// `None` once the connection has ended, with how in `ended`.
    driver: Option<Driver>,
    ended: Option<Result<(), Arc<h2::Error>>>,
}

impl H2Driver {
    /// Polls the connection; ready once it has ended (at once when it already has).
    pub(crate) fn poll_end(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Arc<h2::Error>>> {
        if let Some(driver) = &mut self.driver {
            let Poll::Ready(result) = driver.as_mut().poll(cx) else {
                return Poll::Pending;
            };
            // Dropping the ended driver ends the streams still open on it.
            self.driver = None;
            self.ended = Some(result.map_err(Arc::new));
        }
        Poll::Ready(self.ended.clone().unwrap_or(Ok(())))
    }

    /// Whether the connection has ended.
    pub(crate) fn has_ended(&self) -> bool {
        self.driver.is_none()
    }
}

/// One HTTP/2 connection as one stream at a time sees it: a handle to open streams and the
/// shared driver. Clones open streams on the same connection.
#[derive(Clone)]
pub(crate) struct H2Conn {
    pub(crate) sender: h2::client::SendRequest<Bytes>,
    pub(crate) driver: Arc<Mutex<H2Driver>>,
}

impl H2Conn {
    /// Whether `self` and `other` are the same connection.
    pub(crate) fn same(&self, other: &H2Conn) -> bool {
        Arc::ptr_eq(&self.driver, &other.driver)
    }

    /// Whether the connection has ended.
    pub(crate) fn has_ended(&self) -> bool {
        self.driver.lock().is_ok_and(|d| d.has_ended())
    }
}

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
    /// HTTP/2 on the `h2` crate: absolute URIs (scheme and authority become pseudo-headers).
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
        let (sender, driver) = h2::client::Builder::new()
            .initial_window_size(H2_WINDOW)
            .initial_connection_window_size(H2_WINDOW)
            .enable_push(false)
            .handshake::<_, Bytes>(stream)
            .await
            .map_err(|err| RequestError::new(ErrorKind::Protocol, err))?;
        Ok(Connection::H2(H2Conn {
            sender,
            driver: Arc::new(Mutex::new(H2Driver {
                driver: Some(Box::pin(driver)),
                ended: None,
            })),
        }))
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
