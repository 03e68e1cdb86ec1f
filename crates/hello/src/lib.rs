//! The sample "hello" HTTP service of slogate.
//!
//! `slogate demo`, the end-to-end tests and the load engine's own tests need a service whose
//! behaviour is known in advance: how slow it is, how often it fails and how. [`HelloServer`]
//! serves HTTP/1.1 (keep-alive) and HTTP/2 with prior knowledge (h2c) on `127.0.0.1:0`, and a
//! [`Behavior`] scripts what it does to each request:
//!
//! ```no_run
//! # async fn demo() -> Result<(), slogate_hello::HelloError> {
//! use std::time::Duration;
//! use slogate_hello::{Behavior, HelloServer};
//!
//! // 2 ms for most requests, 12 ms for every tenth, a 503 for every twentieth.
//! let behavior = Behavior::new()
//!     .latency(Duration::from_millis(2))
//!     .slow(0.1, Duration::from_millis(10))
//!     .error_status(0.05, 503);
//! let server = HelloServer::start(behavior).await?;
//! println!("send load to {}", server.url());
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! [`HelloServer::start_tls`] serves the same over TLS, offering HTTP/2 and HTTP/1.1 by ALPN.
//!
//! Requests are numbered 1, 2, 3 … in the order they reach the service, across all connections.
//! Every "fraction" setting picks requests evenly by that number (a fraction of 0.1 picks
//! requests 10, 20, 30 …), so a run of N requests sees exactly `floor(N × fraction)` of them
//! and the latency percentiles are known in advance.

pub mod grpc;
mod listen;

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::listen::Listening;

/// The body every successful response carries unless [`Behavior::body`] says otherwise.
pub const DEFAULT_BODY: &str = "Hello from slogate!\n";

/// How long [`HelloServer::shutdown`] lets open connections finish before closing them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Why the hello service could not start.
#[derive(Debug, thiserror::Error)]
pub enum HelloError {
    /// Binding the loopback listening socket failed.
    #[error("cannot listen: {0}")]
    Bind(#[source] io::Error),
    /// A [`Behavior`] setting is out of range; the message names it.
    #[error("invalid hello behavior: {0}")]
    InvalidBehavior(String),
}

/// What the hello service does to each request: latency, errors, resets, stalls.
///
/// Start from [`Behavior::new`] (answer `200` at once) or a preset, then chain settings.
#[derive(Debug, Clone)]
pub struct Behavior {
    latency: Duration,
    slow: Option<(f64, Duration)>,
    errors: Option<(f64, u16)>,
    reset_every: Option<u64>,
    close_mid_response_every: Option<u64>,
    stall: Option<(u64, Duration)>,
    fail_after: Option<(u64, u16)>,
    idle_timeout: Option<Duration>,
    body: Bytes,
    chunked: bool,
}

impl Default for Behavior {
    fn default() -> Self {
        Self::new()
    }
}

impl Behavior {
    /// Answers every request at once with `200` and [`DEFAULT_BODY`].
    pub fn new() -> Self {
        Self {
            latency: Duration::ZERO,
            slow: None,
            errors: None,
            reset_every: None,
            close_mid_response_every: None,
            stall: None,
            fail_after: None,
            idle_timeout: None,
            body: Bytes::from_static(DEFAULT_BODY.as_bytes()),
            chunked: false,
        }
    }

    /// The demo's healthy version: 2 ms per request, every tenth request 8 ms slower, no errors.
    pub fn stable() -> Self {
        Self::new()
            .latency(Duration::from_millis(2))
            .slow(0.1, Duration::from_millis(8))
    }

    /// The demo's slow candidate: 20 ms per request and every tenth 150 ms slower, so its
    /// 95th percentile (170 ms) breaks a 100 ms SLO while its mean (35 ms) holds a 50 ms one
    /// and it makes no errors. It answers requests in parallel, so a load generator with
    /// enough connections measures it at any rate.
    pub fn slow_candidate() -> Self {
        Self::new()
            .latency(Duration::from_millis(20))
            .slow(0.1, Duration::from_millis(150))
    }

    /// The demo's flaky candidate: as fast as [`Behavior::stable`] but one request in
    /// twenty answers `503`, breaking a zero error-rate SLO.
    pub fn flaky_candidate() -> Self {
        Self::stable().error_status(0.05, 503)
    }

    /// Every request waits this long before it is answered.
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// This fraction of requests (in `[0, 1]`, spread evenly) waits `extra` on top of
    /// [`Behavior::latency`]: a two-level latency distribution with known percentiles.
    pub fn slow(mut self, fraction: f64, extra: Duration) -> Self {
        self.slow = Some((fraction, extra));
        self
    }

    /// This fraction of requests (in `[0, 1]`, spread evenly) answers with `status`.
    pub fn error_status(mut self, fraction: f64, status: u16) -> Self {
        self.errors = Some((fraction, status));
        self
    }

    /// Every `n`th request gets no answer: its connection is reset (TCP RST) instead.
    pub fn reset_every(mut self, n: u64) -> Self {
        self.reset_every = Some(n);
        self
    }

    /// Every `n`th request gets its headers and half its body, then the connection closes.
    pub fn close_mid_response_every(mut self, n: u64) -> Self {
        self.close_mid_response_every = Some(n);
        self
    }

    /// After the first `after_requests` requests, the service stops answering for `duration`:
    /// every request arriving in that window waits until it ends.
    pub fn stall(mut self, after_requests: u64, duration: Duration) -> Self {
        self.stall = Some((after_requests, duration));
        self
    }

    /// After the first `after_requests` requests, every request is answered with `status`:
    /// a version that turns bad in the middle of a run.
    pub fn fail_after(mut self, after_requests: u64, status: u16) -> Self {
        self.fail_after = Some((after_requests, status));
        self
    }

    /// A connection that has carried no request for `idle` (at most twice that) is closed, as
    /// servers with a keep-alive timeout do: HTTP/1.1 with a FIN, HTTP/2 with GOAWAY first.
    pub fn close_idle_after(mut self, idle: Duration) -> Self {
        self.idle_timeout = Some(idle);
        self
    }

    /// The body of every response.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Responses carry no `Content-Length`: over HTTP/1.1 the body goes out in chunked
    /// encoding, a few bytes per chunk.
    pub fn chunked(mut self) -> Self {
        self.chunked = true;
        self
    }

    fn validate(&self) -> Result<(), HelloError> {
        let invalid = |what: &str| Err(HelloError::InvalidBehavior(what.to_owned()));
        if let Some((fraction, _)) = self.slow
            && !(0.0..=1.0).contains(&fraction)
        {
            return invalid("slow fraction must be within [0, 1]");
        }
        if let Some((fraction, status)) = self.errors {
            if !(0.0..=1.0).contains(&fraction) {
                return invalid("error fraction must be within [0, 1]");
            }
            if StatusCode::from_u16(status).is_err() {
                return invalid("error status must be within 100..=999");
            }
        }
        if self.reset_every == Some(0) {
            return invalid("reset_every must be at least 1");
        }
        if self.close_mid_response_every == Some(0) {
            return invalid("close_mid_response_every must be at least 1");
        }
        if self.idle_timeout.is_some_and(|idle| idle.is_zero()) {
            return invalid("close_idle_after must be longer than zero");
        }
        Ok(())
    }
}

/// Whether request number `n` (1-based) is among an evenly spread `fraction` of requests.
fn picked(n: u64, fraction: f64) -> bool {
    // Exactly floor(N × fraction) of the first N requests are picked, whatever N.
    (n as f64 * fraction).floor() > ((n - 1) as f64 * fraction).floor()
}

fn every(n: u64, every: Option<u64>) -> bool {
    every.is_some_and(|e| n.is_multiple_of(e))
}

/// The method, target, headers and body size of a request the service received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// HTTP method, e.g. `GET`.
    pub method: String,
    /// Path and query, e.g. `/hello?x=1`.
    pub target: String,
    /// HTTP version, e.g. `HTTP/1.1` or `HTTP/2.0`.
    pub version: String,
    /// Headers in arrival order, names in lower case.
    pub headers: Vec<(String, String)>,
    /// Length of the request body in bytes.
    pub body_len: usize,
}

#[derive(Debug)]
struct Shared {
    behavior: Behavior,
    requests: AtomicU64,
    body_bytes: AtomicU64,
    stall_until: OnceLock<Instant>,
    last_request: Mutex<Option<RecordedRequest>>,
    stop: CancellationToken,
    tls: Option<Arc<rustls::ServerConfig>>,
}

/// A running hello service on `127.0.0.1`. Dropping it stops it too, less gracefully than
/// [`HelloServer::shutdown`].
#[derive(Debug)]
pub struct HelloServer {
    shared: Arc<Shared>,
    listening: Listening,
}

impl HelloServer {
    /// Listens on a free loopback port and serves `behavior` until shut down.
    pub async fn start(behavior: Behavior) -> Result<Self, HelloError> {
        Self::start_with(behavior, None, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Like [`HelloServer::start`], listening on `addr` instead (the `hello` binary in a pod
    /// listens on `0.0.0.0:8080`).
    pub async fn start_on(addr: SocketAddr, behavior: Behavior) -> Result<Self, HelloError> {
        Self::start_with(behavior, None, addr).await
    }

    /// Like [`HelloServer::start`], over TLS with `config` (its certificate and key); ALPN
    /// offers `h2` and `http/1.1` unless `config` already lists protocols.
    pub async fn start_tls(
        behavior: Behavior,
        mut config: rustls::ServerConfig,
    ) -> Result<Self, HelloError> {
        if config.alpn_protocols.is_empty() {
            config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        }
        Self::start_with(
            behavior,
            Some(Arc::new(config)),
            SocketAddr::from(([127, 0, 0, 1], 0)),
        )
        .await
    }

    async fn start_with(
        behavior: Behavior,
        tls: Option<Arc<rustls::ServerConfig>>,
        addr: SocketAddr,
    ) -> Result<Self, HelloError> {
        behavior.validate()?;
        let listener = TcpListener::bind(addr).await.map_err(HelloError::Bind)?;
        let shared = Arc::new(Shared {
            behavior,
            requests: AtomicU64::new(0),
            body_bytes: AtomicU64::new(0),
            stall_until: OnceLock::new(),
            last_request: Mutex::new(None),
            stop: CancellationToken::new(),
            tls,
        });
        let builder = Arc::new(auto::Builder::new(TokioExecutor::new()));
        let serving = shared.clone();
        let listening = Listening::spawn(
            listener,
            shared.stop.clone(),
            SHUTDOWN_GRACE,
            move |stream| serve_connection(stream, serving.clone(), builder.clone()),
        )
        .map_err(HelloError::Bind)?;
        Ok(Self { shared, listening })
    }

    /// The address the service listens on.
    pub fn addr(&self) -> SocketAddr {
        self.listening.addr()
    }

    /// The service's base URL, e.g. `http://127.0.0.1:40123/` (`https` when serving TLS).
    pub fn url(&self) -> String {
        let scheme = if self.shared.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}/", self.addr())
    }

    /// Requests that reached the service so far, whatever was done with them (answered,
    /// failed, reset or still waiting).
    pub fn requests_served(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// TCP connections accepted so far.
    pub fn connections_accepted(&self) -> u64 {
        self.listening.connections_accepted()
    }

    /// Request body bytes received so far.
    pub fn request_body_bytes(&self) -> u64 {
        self.shared.body_bytes.load(Ordering::Relaxed)
    }

    /// The most recent request that reached the service.
    pub fn last_request(&self) -> Option<RecordedRequest> {
        self.shared
            .last_request
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Stops accepting, lets open requests finish (up to 2 s), then closes every connection.
    pub async fn shutdown(mut self) {
        self.listening.shutdown().await;
    }
}

async fn serve_connection(
    stream: TcpStream,
    shared: Arc<Shared>,
    builder: Arc<auto::Builder<TokioExecutor>>,
) {
    let _ = stream.set_nodelay(true);
    // A second descriptor of the same socket: it outlives hyper's, so a reset can set
    // SO_LINGER 0 on it and make its close send a TCP RST instead of a FIN.
    let socket: Option<OwnedFd> = stream.as_fd().try_clone_to_owned().ok();
    let reset = Arc::new(Notify::new());
    let reset_now = match &shared.tls {
        None => serve_http(TokioIo::new(stream), &shared, &builder, &reset).await,
        Some(config) => match TlsAcceptor::from(config.clone()).accept(stream).await {
            Ok(tls) => serve_http(TokioIo::new(tls), &shared, &builder, &reset).await,
            Err(err) => {
                tracing::debug!("hello: TLS handshake failed: {err}");
                false
            }
        },
    };
    if reset_now && let Some(socket) = &socket {
        let _ = socket2::SockRef::from(socket).set_linger(Some(Duration::ZERO));
    }
    // The connection has dropped before `socket`, so the last close of the socket is
    // `socket`'s, with the linger setting above.
}

/// Requests a connection has begun and finished, for telling when it is idle.
#[derive(Debug, Default)]
struct Activity {
    begun: AtomicU64,
    finished: AtomicU64,
}

/// Serves HTTP/1.1 or HTTP/2 on `io` until the client leaves, the service stops, the
/// connection sits idle past the behaviour's limit, or a request asks for a reset; returns
/// whether one did.
async fn serve_http<I>(
    io: I,
    shared: &Arc<Shared>,
    builder: &auto::Builder<TokioExecutor>,
    reset: &Arc<Notify>,
) -> bool
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::default());
    let service = {
        let shared = shared.clone();
        let reset = reset.clone();
        let activity = activity.clone();
        service_fn(move |request| {
            let (shared, reset, activity) = (shared.clone(), reset.clone(), activity.clone());
            async move {
                activity.begun.fetch_add(1, Ordering::Relaxed);
                let response = handle(request, shared, reset).await;
                activity.finished.fetch_add(1, Ordering::Relaxed);
                response
            }
        })
    };
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => return false,
        () = reset.notified() => return true,
        () = shared.stop.cancelled() => {}
        () = idle(&activity, shared.behavior.idle_timeout) => {}
    }
    connection.as_mut().graceful_shutdown();
    tokio::select! {
        _ = connection.as_mut() => false,
        () = reset.notified() => true,
    }
}

/// Ends once the connection has carried no request for a whole `limit`; never without one.
async fn idle(activity: &Activity, limit: Option<Duration>) {
    let Some(limit) = limit else {
        return std::future::pending().await;
    };
    let mut seen = u64::MAX;
    loop {
        tokio::time::sleep(limit).await;
        let begun = activity.begun.load(Ordering::Relaxed);
        if begun == seen && activity.finished.load(Ordering::Relaxed) == begun {
            return;
        }
        seen = begun;
    }
}

async fn handle(
    request: Request<Incoming>,
    shared: Arc<Shared>,
    reset: Arc<Notify>,
) -> Result<Response<HelloBody>, Infallible> {
    let n = shared.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let behavior = &shared.behavior;

    let (parts, body) = request.into_parts();
    let body_len = body
        .collect()
        .await
        .map(|b| b.to_bytes().len())
        .unwrap_or(0);
    shared
        .body_bytes
        .fetch_add(body_len as u64, Ordering::Relaxed);
    let recorded = RecordedRequest {
        method: parts.method.to_string(),
        target: parts
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), ToString::to_string),
        version: format!("{:?}", parts.version),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
            .collect(),
        body_len,
    };
    *shared
        .last_request
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(recorded);

    if let Some((after, duration)) = behavior.stall
        && n > after
    {
        let until = *shared.stall_until.get_or_init(|| Instant::now() + duration);
        sleep_unless_stopped(tokio::time::sleep_until(until), &shared.stop).await;
    }
    if every(n, behavior.reset_every) {
        reset.notify_one();
        // The connection task drops this request together with the connection.
        std::future::pending::<()>().await;
    }
    let mut delay = behavior.latency;
    if let Some((fraction, extra)) = behavior.slow
        && picked(n, fraction)
    {
        delay += extra;
    }
    if !delay.is_zero() {
        sleep_unless_stopped(tokio::time::sleep(delay), &shared.stop).await;
    }

    let status = match (behavior.errors, behavior.fail_after) {
        (_, Some((after, status))) if n > after => {
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        }
        (Some((fraction, status)), _) if picked(n, fraction) => {
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        }
        _ => StatusCode::OK,
    };
    let body = if every(n, behavior.close_mid_response_every) {
        HelloBody::truncated(behavior.body.clone())
    } else if behavior.chunked {
        HelloBody::chunked(behavior.body.clone())
    } else {
        HelloBody::full(behavior.body.clone())
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if !behavior.chunked {
        headers.insert(header::CONTENT_LENGTH, behavior.body.len().into());
    }
    Ok(response)
}

async fn sleep_unless_stopped(sleep: Sleep, stop: &CancellationToken) {
    tokio::select! {
        () = sleep => {}
        () = stop.cancelled() => {}
    }
}

/// A response body: whole, in small chunks of unknown total length, or cut off halfway by
/// closing the connection.
#[derive(Debug)]
pub struct HelloBody {
    /// What is still to be sent.
    rest: Bytes,
    /// Largest frame sent at once.
    piece: usize,
    /// The length announced up front; `None` for a chunked body.
    total: Option<u64>,
    /// Set when the body is cut off: the pause lets the first half reach the client before
    /// the failure closes the connection.
    cut_after: Option<Pin<Box<Sleep>>>,
}

impl HelloBody {
    fn full(body: Bytes) -> Self {
        Self {
            total: Some(body.len() as u64),
            piece: body.len(),
            rest: body,
            cut_after: None,
        }
    }

    fn chunked(body: Bytes) -> Self {
        Self {
            total: None,
            piece: 7,
            rest: body,
            cut_after: None,
        }
    }

    fn truncated(body: Bytes) -> Self {
        let total = body.len() as u64;
        let half = body.slice(..body.len() / 2);
        Self {
            total: Some(total),
            piece: half.len(),
            rest: half,
            cut_after: Some(Box::pin(tokio::time::sleep(Duration::from_millis(5)))),
        }
    }
}

impl Body for HelloBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if !self.rest.is_empty() {
            let piece = self.piece.min(self.rest.len());
            let frame = self.rest.split_to(piece);
            return Poll::Ready(Some(Ok(Frame::data(frame))));
        }
        match self.cut_after.as_mut() {
            None => Poll::Ready(None),
            Some(pause) => match pause.as_mut().poll(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(()) => Poll::Ready(Some(Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "hello: closing the connection mid-response as scripted",
                )))),
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty() && self.cut_after.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match self.total {
            Some(total) => SizeHint::with_exact(total),
            None => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_pick_exactly_floor_n_times_fraction() {
        for fraction in [0.0, 0.01, 0.05, 0.1, 0.25, 0.333, 1.0] {
            for n in [1_u64, 7, 10, 100, 1000, 12_345] {
                let count = (1..=n).filter(|&k| picked(k, fraction)).count() as u64;
                assert_eq!(
                    count,
                    (n as f64 * fraction).floor() as u64,
                    "{fraction} {n}"
                );
            }
        }
    }

    #[test]
    fn a_tenth_picks_every_tenth_request() {
        let picked: Vec<u64> = (1..=30).filter(|&k| picked(k, 0.1)).collect();
        assert_eq!(picked, [10, 20, 30]);
    }

    #[test]
    fn out_of_range_settings_are_rejected() {
        assert!(
            Behavior::new()
                .slow(1.5, Duration::ZERO)
                .validate()
                .is_err()
        );
        assert!(Behavior::new().error_status(0.1, 42).validate().is_err());
        assert!(Behavior::new().reset_every(0).validate().is_err());
        assert!(
            Behavior::new()
                .close_mid_response_every(0)
                .validate()
                .is_err()
        );
        assert!(Behavior::flaky_candidate().validate().is_ok());
    }
}
