//! The hello service over gRPC, on tonic: one unary method, `slogate.hello.v1.Greeter/SayHello`
//! (see `proto/hello.proto`), whose latency, status codes and stream resets a [`GrpcBehavior`]
//! scripts, as [`crate::Behavior`] does for HTTP.
//!
//! ```no_run
//! # async fn demo() -> Result<(), slogate_hello::HelloError> {
//! use std::time::Duration;
//! use slogate_hello::grpc::{GrpcBehavior, GrpcHelloServer};
//!
//! // 1 ms per call, every tenth call answered UNAVAILABLE (14).
//! let server = GrpcHelloServer::start(
//!     GrpcBehavior::new().latency(Duration::from_millis(1)).status(0.1, 14),
//! )
//! .await?;
//! println!("send calls to {}", server.url());
//! # Ok(()) }
//! ```
//!
//! Calls are numbered 1, 2, 3 … in the order they reach the service; fractions pick calls
//! evenly by that number, as the HTTP service's do. The deadline a call carries in
//! `grpc-timeout` is kept: a call whose scripted latency is longer is answered
//! `DEADLINE_EXCEEDED` when its deadline passes.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tonic::{Code, Status};

use crate::listen::Listening;
use crate::{HelloError, every, picked};

/// The service's proto file, as it ships in the crate.
pub const PROTO: &str = include_str!("../proto/hello.proto");
/// The method the service answers, as `slogate load --call` names it.
pub const SAY_HELLO: &str = "slogate.hello.v1.Greeter/SayHello";
const SAY_HELLO_PATH: &str = "/slogate.hello.v1.Greeter/SayHello";

/// Where the proto file is in the source tree (for tests and benchmarks of this workspace).
pub fn proto_path() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/proto/hello.proto"))
}

/// Who to greet (`slogate.hello.v1.HelloRequest`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct HelloRequest {
    /// The name in the greeting.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Repeats of the greeting in the reply.
    #[prost(uint32, tag = "2")]
    pub repeat: u32,
}

/// The greeting (`slogate.hello.v1.HelloReply`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct HelloReply {
    /// `Hello, NAME!`, repeated.
    #[prost(string, tag = "1")]
    pub message: String,
}

/// What the gRPC hello service does to each call.
#[derive(Debug, Clone, Default)]
pub struct GrpcBehavior {
    latency: Duration,
    slow: Option<(f64, Duration)>,
    status: Option<(f64, u16)>,
    reset_every: Option<u64>,
    stall: Option<(u64, Duration)>,
}

impl GrpcBehavior {
    /// Answers every call at once with `OK`.
    pub fn new() -> Self {
        Self::default()
    }

    /// The demo's healthy version, as [`crate::Behavior::stable`]: 2 ms per call, every
    /// tenth 8 ms slower.
    pub fn stable() -> Self {
        Self::new()
            .latency(Duration::from_millis(2))
            .slow(0.1, Duration::from_millis(8))
    }

    /// Every call waits this long before it is answered.
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// An evenly spread `fraction` of calls waits `extra` longer.
    pub fn slow(mut self, fraction: f64, extra: Duration) -> Self {
        self.slow = Some((fraction, extra));
        self
    }

    /// An evenly spread `fraction` of calls is answered with gRPC status `code` (e.g. 14,
    /// `UNAVAILABLE`) instead of a reply.
    pub fn status(mut self, fraction: f64, code: u16) -> Self {
        self.status = Some((fraction, code));
        self
    }

    /// Every `n`th call gets no answer: its stream is reset (RST_STREAM, INTERNAL_ERROR).
    pub fn reset_every(mut self, n: u64) -> Self {
        self.reset_every = Some(n);
        self
    }

    /// After `after_calls` calls the service freezes for `duration`: every call that arrives
    /// meanwhile waits until the freeze ends.
    pub fn stall(mut self, after_calls: u64, duration: Duration) -> Self {
        self.stall = Some((after_calls, duration));
        self
    }

    fn validate(&self) -> Result<(), HelloError> {
        let invalid = |reason: &str| Err(HelloError::InvalidBehavior(reason.to_owned()));
        for (name, fraction) in [
            ("slow", self.slow.map(|s| s.0)),
            ("status", self.status.map(|s| s.0)),
        ] {
            if fraction.is_some_and(|f| !(0.0..=1.0).contains(&f)) {
                return invalid(&format!("{name}: the fraction must be within 0..=1"));
            }
        }
        if self.status.is_some_and(|(_, code)| code == 0 || code > 16) {
            return invalid("status: the code must be a gRPC error code, 1..=16");
        }
        if self.reset_every == Some(0) {
            return invalid("reset_every must be at least 1");
        }
        Ok(())
    }
}

struct Shared {
    behavior: GrpcBehavior,
    calls: AtomicU64,
    last_metadata: Mutex<Vec<(String, String)>>,
    stall_until: OnceLock<Instant>,
    stop: CancellationToken,
    tls: Option<TlsAcceptor>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("behavior", &self.behavior)
            .field("calls", &self.calls)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

/// A running gRPC hello service on loopback (or the address given). Dropping it stops it.
#[derive(Debug)]
pub struct GrpcHelloServer {
    shared: Arc<Shared>,
    listening: Listening,
}

impl GrpcHelloServer {
    /// Serves `behavior` in plaintext HTTP/2 on a free loopback port.
    pub async fn start(behavior: GrpcBehavior) -> Result<Self, HelloError> {
        Self::start_with(behavior, None, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Like [`GrpcHelloServer::start`], listening on `addr`.
    pub async fn start_on(addr: SocketAddr, behavior: GrpcBehavior) -> Result<Self, HelloError> {
        Self::start_with(behavior, None, addr).await
    }

    /// Like [`GrpcHelloServer::start`], over TLS with `config` (ALPN `h2`).
    pub async fn start_tls(
        behavior: GrpcBehavior,
        mut config: rustls::ServerConfig,
    ) -> Result<Self, HelloError> {
        config.alpn_protocols = vec![b"h2".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));
        Self::start_with(
            behavior,
            Some(acceptor),
            SocketAddr::from(([127, 0, 0, 1], 0)),
        )
        .await
    }

    async fn start_with(
        behavior: GrpcBehavior,
        tls: Option<TlsAcceptor>,
        addr: SocketAddr,
    ) -> Result<Self, HelloError> {
        behavior.validate()?;
        let listener = TcpListener::bind(addr).await.map_err(HelloError::Bind)?;
        let shared = Arc::new(Shared {
            behavior,
            calls: AtomicU64::new(0),
            last_metadata: Mutex::new(Vec::new()),
            stall_until: OnceLock::new(),
            stop: CancellationToken::new(),
            tls,
        });
        let serving = shared.clone();
        // A call in flight at shutdown ends UNAVAILABLE at once: nothing to wait for.
        let listening = Listening::spawn(
            listener,
            shared.stop.clone(),
            Duration::ZERO,
            move |stream| serve_connection(stream, serving.clone()),
        )
        .map_err(HelloError::Bind)?;
        Ok(Self { shared, listening })
    }

    /// The address the service listens on.
    pub fn addr(&self) -> SocketAddr {
        self.listening.addr()
    }

    /// The target to load, `grpc://127.0.0.1:PORT` (`grpcs://` over TLS).
    pub fn url(&self) -> String {
        let scheme = if self.shared.tls.is_some() {
            "grpcs"
        } else {
            "grpc"
        };
        format!("{scheme}://{}", self.addr())
    }

    /// Calls that reached the service so far, whatever was done with them.
    pub fn calls_served(&self) -> u64 {
        self.shared.calls.load(Ordering::Relaxed)
    }

    /// TCP connections accepted so far.
    pub fn connections_accepted(&self) -> u64 {
        self.listening.connections_accepted()
    }

    /// The headers (metadata included) of the most recent call, names in lower case.
    pub fn last_metadata(&self) -> Vec<(String, String)> {
        self.shared
            .last_metadata
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Stops accepting and closes every connection.
    pub async fn shutdown(mut self) {
        self.listening.shutdown().await;
    }
}

async fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    let service = {
        let shared = shared.clone();
        service_fn(move |request| handle(request, shared.clone()))
    };
    match &shared.tls {
        None => {
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        }
        Some(acceptor) => {
            if let Ok(tls) = acceptor.accept(stream).await {
                let _ = builder.serve_connection(TokioIo::new(tls), service).await;
            }
        }
    }
}

/// A call the behaviour resets: hyper answers a service error by resetting the stream.
#[derive(Debug, thiserror::Error)]
#[error("the behaviour resets this call's stream")]
struct ResetStream;

async fn handle(
    request: http::Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<http::Response<tonic::body::Body>, ResetStream> {
    let n = shared.calls.fetch_add(1, Ordering::Relaxed) + 1;
    *shared
        .last_metadata
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = request
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
        .collect();
    if request.uri().path() != SAY_HELLO_PATH {
        let status = Status::unimplemented(format!("no method {}", request.uri().path()));
        return Ok(status.into_http());
    }
    if every(n, shared.behavior.reset_every) {
        return Err(ResetStream);
    }
    let deadline = request
        .headers()
        .get("grpc-timeout")
        .and_then(|v| parse_timeout(v.to_str().ok()?));
    let say = SayHello {
        shared: shared.clone(),
        n,
        deadline,
    };
    let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
    Ok(grpc.unary(say, request).await)
}

/// A `grpc-timeout` value (`100m`, `2S` …) as a duration.
fn parse_timeout(text: &str) -> Option<Duration> {
    let (digits, unit) = text.split_at(text.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// One call of `SayHello`, as tonic's unary handler calls it.
struct SayHello {
    shared: Arc<Shared>,
    n: u64,
    deadline: Option<Duration>,
}

type CallFuture = Pin<Box<dyn Future<Output = Result<tonic::Response<HelloReply>, Status>> + Send>>;

impl tonic::codegen::Service<tonic::Request<HelloRequest>> for SayHello {
    type Response = tonic::Response<HelloReply>;
    type Error = Status;
    type Future = CallFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: tonic::Request<HelloRequest>) -> CallFuture {
        let (shared, n, deadline) = (self.shared.clone(), self.n, self.deadline);
        Box::pin(async move {
            let behavior = &shared.behavior;
            if let Some((after, duration)) = behavior.stall
                && n > after
            {
                let until = *shared.stall_until.get_or_init(|| Instant::now() + duration);
                tokio::time::sleep_until(until).await;
            }
            let mut delay = behavior.latency;
            if let Some((fraction, extra)) = behavior.slow
                && picked(n, fraction)
            {
                delay += extra;
            }
            if let Some(deadline) = deadline
                && delay >= deadline
            {
                tokio::time::sleep(deadline).await;
                return Err(Status::deadline_exceeded("the call's deadline passed"));
            }
            if !delay.is_zero() {
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = shared.stop.cancelled() => return Err(Status::unavailable("shutting down")),
                }
            }
            if let Some((fraction, code)) = behavior.status
                && picked(n, fraction)
            {
                return Err(Status::new(
                    Code::from_i32(i32::from(code)),
                    "scripted status",
                ));
            }
            let request = request.into_inner();
            let greeting = format!("Hello, {}!", request.name);
            Ok(tonic::Response::new(HelloReply {
                message: greeting.repeat(request.repeat.max(1) as usize),
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_read_as_grpc_writes_them() {
        assert_eq!(parse_timeout("100m"), Some(Duration::from_millis(100)));
        assert_eq!(parse_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_timeout("x"), None);
        assert_eq!(parse_timeout(""), None);
    }

    #[test]
    fn out_of_range_settings_are_rejected() {
        assert!(GrpcBehavior::new().status(0.1, 0).validate().is_err());
        assert!(GrpcBehavior::new().status(1.5, 14).validate().is_err());
        assert!(GrpcBehavior::new().reset_every(0).validate().is_err());
        assert!(GrpcBehavior::stable().validate().is_ok());
    }
}
