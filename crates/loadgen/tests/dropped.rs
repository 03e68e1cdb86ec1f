//! Servers that read a request and then drop it without an answer: every dropped request
//! must be an error, in the closed and the open model, over HTTP/1.1 (FIN, RST) and HTTP/2
//! (GOAWAY, stream reset), so an error-rate SLO the drops break is violated, never satisfied.
//! And the one case that is no error: a server closing connections idle past its keep-alive
//! timeout, which gets the request resent once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use slogate_core::measure::{ErrorKind, Measurement};
use slogate_core::result::SloVerdict;
use slogate_core::spec::{LoadSpec, SloSpec, VersionSpec};
use slogate_core::verdict::judge_slo;
use slogate_hello::{Behavior, HelloServer};
use slogate_loadgen::{LoadPlan, RunOptions, run};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How a dropping server leaves a request it picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Drop {
    /// HTTP/1.1: close the connection cleanly (FIN).
    Fin,
    /// HTTP/1.1: reset the connection (RST).
    Rst,
    /// HTTP/1.1: answer the first request of each connection, drop (FIN) the second.
    SecondOnConnection,
    /// HTTP/2: end the connection with GOAWAY.
    GoAway,
    /// HTTP/2: reset the request's stream (RST_STREAM).
    StreamReset,
}

impl Drop {
    fn http2(self) -> bool {
        matches!(self, Drop::GoAway | Drop::StreamReset)
    }
}

/// A loopback server that reads each request whole, then answers `200 ok` or drops it.
struct Dropper {
    addr: SocketAddr,
    dropped: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Dropper {
    /// Drops an evenly spread `share` of requests (for [`Drop::SecondOnConnection`], the
    /// second request of every connection instead).
    async fn start(how: Drop, share: f64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let dropped = Arc::new(AtomicU64::new(0));
        let seen = Arc::new(AtomicU64::new(0));
        let counts = (seen, dropped.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let _ = stream.set_nodelay(true);
                let (seen, dropped) = (counts.0.clone(), counts.1.clone());
                tokio::spawn(async move {
                    let pick = move |on_connection: u64| {
                        let n = seen.fetch_add(1, Ordering::Relaxed) + 1;
                        let picked = match how {
                            Drop::SecondOnConnection => on_connection == 2,
                            _ => (n as f64 * share).floor() > ((n - 1) as f64 * share).floor(),
                        };
                        if picked {
                            dropped.fetch_add(1, Ordering::Relaxed);
                        }
                        picked
                    };
                    if how.http2() {
                        serve_h2(stream, how, pick).await;
                    } else {
                        serve_h1(stream, how, pick).await;
                    }
                });
            }
        });
        Self {
            addr,
            dropped,
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl std::ops::Drop for Dropper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_h1(mut stream: TcpStream, how: Drop, mut pick: impl FnMut(u64) -> bool) {
    let mut buf = Vec::new();
    let mut on_connection = 0;
    loop {
        // The engine's GET has no body: a request ends with its blank line.
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        buf.drain(..end);
        on_connection += 1;
        if pick(on_connection) {
            if how == Drop::Rst {
                // Linger 0: closing resets the connection at once (and blocks for nothing).
                let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
            }
            // Everything sent was read, so closing sends a FIN (or, with linger 0, a RST).
            return;
        }
        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        if stream.write_all(answer).await.is_err() {
            return;
        }
    }
}

async fn serve_h2(stream: TcpStream, how: Drop, mut pick: impl FnMut(u64) -> bool) {
    let Ok(mut connection) = h2::server::handshake(stream).await else {
        return;
    };
    let mut on_connection = 0;
    // A dropped request's responder is kept until the connection ends: dropping it would
    // reset the stream instead of leaving it to the GOAWAY.
    let mut held = Vec::new();
    while let Some(Ok((_request, mut respond))) = connection.accept().await {
        on_connection += 1;
        if pick(on_connection) {
            match how {
                Drop::GoAway => {
                    connection.abrupt_shutdown(h2::Reason::NO_ERROR);
                    held.push(respond);
                }
                _ => respond.send_reset(h2::Reason::INTERNAL_ERROR),
            }
            continue;
        }
        let response = http::Response::new(());
        if let Ok(mut body) = respond.send_response(response, false) {
            let _ = body.send_data(Bytes::from_static(b"ok"), true);
        }
    }
}

fn version(url: &str) -> VersionSpec {
    VersionSpec {
        name: "candidate".into(),
        url: url.into(),
        headers: Vec::new(),
        role: Default::default(),
        variables: Default::default(),
        weight_obj_ref: None,
        grpc: None,
    }
}

async fn load(url: &str, spec: LoadSpec) -> Measurement {
    let plan = LoadPlan::new(&version(url), &spec.settings().unwrap())
        .await
        .unwrap();
    run(plan, RunOptions::default()).await.unwrap()
}

fn kind(m: &Measurement, kind: ErrorKind) -> u64 {
    m.error_kinds.get(&kind).copied().unwrap_or(0)
}

fn error_rate_at_most(limit: f64) -> SloSpec {
    SloSpec {
        metric: "http/error-rate".into(),
        upper_limit: Some(limit),
        lower_limit: None,
        version: None,
        versus: None,
        max_increase: None,
        max_decrease: None,
    }
}

/// 300 requests over 4 connections: as fast as they go (closed model), or at 300 req/s.
fn models(http2: bool) -> [(&'static str, LoadSpec); 2] {
    let closed = LoadSpec {
        connections: 4,
        num_requests: Some(300),
        http2,
        ..LoadSpec::default()
    };
    let open = LoadSpec {
        qps: Some(300.0),
        ..closed.clone()
    };
    [("closed", closed), ("open", open)]
}

/// Every request the server dropped is an error of `expected` kind, none was resent, and the
/// error-rate SLO that 30 % drops break is violated.
async fn every_drop_is_an_error(how: Drop, expected: &[ErrorKind]) {
    for (model, spec) in models(how.http2()) {
        let server = Dropper::start(how, 0.3).await;
        let m = load(&server.url(), spec).await;
        let dropped = server.dropped();
        assert_eq!(m.requests, 300, "{how:?} {model}");
        assert_eq!(
            dropped, 90,
            "{how:?} {model}: the server saw every request once"
        );
        assert_eq!(
            m.errors, dropped,
            "{how:?} {model}: {:?}, {} resent",
            m.error_kinds, m.resends
        );
        let of_kind: u64 = expected.iter().map(|k| kind(&m, *k)).sum();
        assert_eq!(of_kind, dropped, "{how:?} {model}: {:?}", m.error_kinds);
        assert_eq!(
            m.resends, 0,
            "{how:?} {model}: a busy connection is never resent"
        );
        let verdict = judge_slo(&error_rate_at_most(0.2), "candidate", &m, 0.95);
        assert_eq!(
            verdict.verdict,
            SloVerdict::Violated,
            "{how:?} {model}: {}",
            verdict.reason
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_dropped_with_a_fin_are_errors_and_break_the_error_rate_slo() {
    every_drop_is_an_error(Drop::Fin, &[ErrorKind::ClosedWithoutResponse]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_dropped_with_a_rst_are_errors_and_break_the_error_rate_slo() {
    every_drop_is_an_error(Drop::Rst, &[ErrorKind::Reset]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_dropped_with_goaway_are_errors_and_break_the_error_rate_slo() {
    every_drop_is_an_error(
        Drop::GoAway,
        &[ErrorKind::ClosedWithoutResponse, ErrorKind::Reset],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_whose_stream_is_reset_are_errors_and_break_the_error_rate_slo() {
    every_drop_is_an_error(Drop::StreamReset, &[ErrorKind::Reset]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_request_dropped_on_a_kept_connection_is_an_error() {
    // Used to be resent on a new connection as if the server had closed it while idle, so
    // this server measured 0 errors and passed.
    for (model, spec) in models(false) {
        let server = Dropper::start(Drop::SecondOnConnection, 0.0).await;
        let spec = LoadSpec {
            connections: 1,
            max_connections: Some(1),
            num_requests: Some(100),
            ..spec
        };
        let m = load(&server.url(), spec).await;
        assert_eq!(m.requests, 100, "{model}");
        assert_eq!((m.errors, server.dropped()), (50, 50), "{model}");
        assert_eq!(kind(&m, ErrorKind::ClosedWithoutResponse), 50, "{model}");
        assert_eq!(m.resends, 0, "{model}");
        let verdict = judge_slo(&error_rate_at_most(0.2), "candidate", &m, 0.95);
        assert_eq!(
            verdict.verdict,
            SloVerdict::Violated,
            "{model}: {}",
            verdict.reason
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_closed_at_a_2s_keep_alive_timeout_is_resent_not_counted() {
    // The server closes connections that carried no request for 2 s; one connection sends
    // every 4.5 s. On HTTP/1.1 (a FIN) each request after the first finds its connection
    // closed and goes again, once, on a new one. On HTTP/2 the server shuts down gracefully
    // (GOAWAY with the last stream id 2^31-1, then a PING): a request that reaches it before
    // the PING's answer is still served, and the next one goes on a new connection (two in
    // all). Either way no request fails.
    let run_one = |http2: bool| async move {
        let server = HelloServer::start(Behavior::new().close_idle_after(Duration::from_secs(2)))
            .await
            .unwrap();
        let spec = LoadSpec {
            connections: 1,
            max_connections: Some(1),
            qps: Some(1.0 / 4.5),
            num_requests: Some(3),
            http2,
            ..LoadSpec::default()
        };
        let m = load(&server.url(), spec).await;
        (http2, m, server.connections_accepted())
    };
    let (h1, h2) = tokio::join!(run_one(false), run_one(true));
    for (http2, m, accepted) in [h1, h2] {
        assert_eq!(
            (m.requests, m.errors),
            (3, 0),
            "http2 {http2}: {:?}",
            m.error_kinds
        );
        assert_eq!(m.status_counts.get(&200), Some(&3), "http2 {http2}");
        assert_eq!(m.resends, if http2 { 0 } else { 2 }, "http2 {http2}");
        assert_eq!(accepted, if http2 { 2 } else { 3 }, "http2 {http2}");
        let verdict = judge_slo(&error_rate_at_most(0.0), "candidate", &m, 0.95);
        assert_eq!(verdict.verdict, SloVerdict::Satisfied, "{}", verdict.reason);
    }
}
