//! The HTTP/2 client against the `h2` crate's server (hyper's HTTP/2) on loopback, set up
//! the ways servers differ: fewer concurrent streams than the client keeps in flight, the
//! default 64 KiB flow-control window against larger request bodies, response header blocks
//! larger than one frame (CONTINUATION), large bodies, and PINGs while a response is slow.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use slogate_core::measure::Measurement;
use slogate_core::spec::{LoadSpec, VersionSpec};
use slogate_loadgen::{LoadPlan, RunOptions, run};
use tokio::net::TcpListener;

/// What the server does with each request.
#[derive(Debug, Clone)]
struct Serve {
    /// SETTINGS_MAX_CONCURRENT_STREAMS.
    max_streams: u32,
    /// How long each answer takes.
    delay: Duration,
    /// A response header of this many bytes.
    header_bytes: usize,
    /// Response body bytes, sent in 64 KiB DATA calls.
    body_bytes: usize,
    /// The request body each request must carry (status 400 otherwise).
    expect_body: usize,
    /// PING the client while the first request is being answered.
    ping: bool,
}

impl Default for Serve {
    fn default() -> Self {
        Self {
            max_streams: 100,
            delay: Duration::ZERO,
            header_bytes: 0,
            body_bytes: 2,
            expect_body: 0,
            ping: false,
        }
    }
}

/// What the server saw.
#[derive(Debug, Default)]
struct Seen {
    in_flight: AtomicU64,
    most_in_flight: AtomicU64,
    /// Microseconds from PING to its acknowledgement, once one came back.
    pong_micros: AtomicU64,
}

async fn start(serve: Serve) -> (String, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let seen = Arc::new(Seen::default());
    let shared = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (serve, seen) = (serve.clone(), shared.clone());
            tokio::spawn(async move {
                let mut conn = h2::server::Builder::new()
                    .max_concurrent_streams(serve.max_streams)
                    .handshake::<_, Bytes>(stream)
                    .await
                    .unwrap();
                if serve.ping {
                    let mut ping_pong = conn.ping_pong().unwrap();
                    let seen = seen.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        let sent = std::time::Instant::now();
                        if ping_pong.ping(h2::Ping::opaque()).await.is_ok() {
                            let micros = sent.elapsed().as_micros().max(1) as u64;
                            seen.pong_micros.store(micros, Ordering::Relaxed);
                        }
                    });
                }
                while let Some(Ok((request, respond))) = conn.accept().await {
                    tokio::spawn(answer(request, respond, serve.clone(), seen.clone()));
                }
            });
        }
    });
    (url, seen)
}

async fn answer(
    request: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    serve: Serve,
    seen: Arc<Seen>,
) {
    let now = seen.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
    seen.most_in_flight.fetch_max(now, Ordering::Relaxed);
    let mut body = request.into_body();
    let mut received = 0;
    while let Some(Ok(data)) = body.data().await {
        received += data.len();
        let _ = body.flow_control().release_capacity(data.len());
    }
    tokio::time::sleep(serve.delay).await;
    let status = if received == serve.expect_body {
        200
    } else {
        400
    };
    let mut response = http::Response::builder().status(status);
    if serve.header_bytes > 0 {
        response = response.header("x-filler", "f".repeat(serve.header_bytes));
    }
    seen.in_flight.fetch_sub(1, Ordering::Relaxed);
    let Ok(mut send) = respond.send_response(response.body(()).unwrap(), false) else {
        return;
    };
    let mut left = serve.body_bytes;
    while left > 0 {
        let take = left.min(64 * 1024);
        left -= take;
        send.reserve_capacity(take);
        if send
            .send_data(Bytes::from(vec![b'x'; take]), left == 0)
            .is_err()
        {
            return;
        }
    }
}

async fn load(url: &str, spec: LoadSpec) -> Measurement {
    let version = VersionSpec::new("candidate", url);
    let plan = LoadPlan::new(&version, &spec.settings().unwrap())
        .await
        .unwrap();
    run(plan, RunOptions::default()).await.unwrap()
}

fn spec(requests: u64, connections: u32, streams: u32) -> LoadSpec {
    LoadSpec {
        connections,
        streams,
        num_requests: Some(requests),
        http2: true,
        ..LoadSpec::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_streams_than_the_server_allows_wait_their_turn() {
    let (url, seen) = start(Serve {
        max_streams: 2,
        delay: Duration::from_millis(5),
        ..Serve::default()
    })
    .await;
    let m = load(&url, spec(120, 1, 6)).await;
    assert_eq!((m.requests, m.errors), (120, 0), "{:?}", m.error_kinds);
    assert_eq!(m.status_counts.get(&200), Some(&120));
    assert_eq!(seen.most_in_flight.load(Ordering::Relaxed), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_body_larger_than_the_servers_window_goes_out_whole() {
    // The server keeps HTTP/2's default 65,535-byte windows: each body needs WINDOW_UPDATEs.
    let body = 300_000;
    let (url, _) = start(Serve {
        expect_body: body,
        ..Serve::default()
    })
    .await;
    let load_spec = LoadSpec {
        body: Some("b".repeat(body)),
        ..spec(40, 2, 3)
    };
    let m = load(&url, load_spec).await;
    assert_eq!((m.requests, m.errors), (40, 0), "{:?}", m.error_kinds);
    assert_eq!(
        m.status_counts.get(&200),
        Some(&40),
        "{:?}",
        m.status_counts
    );
    assert_eq!(m.bytes_sent, 40 * body as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_blocks_over_several_frames_and_large_bodies_arrive_whole() {
    // A 40 KB header block needs CONTINUATION frames; 1 MiB bodies need many DATA frames.
    let (url, _) = start(Serve {
        header_bytes: 40_000,
        body_bytes: 1 << 20,
        ..Serve::default()
    })
    .await;
    let m = load(&url, spec(30, 2, 2)).await;
    assert_eq!((m.requests, m.errors), (30, 0), "{:?}", m.error_kinds);
    assert_eq!(m.status_counts.get(&200), Some(&30));
    assert_eq!(m.bytes_received, 30 << 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_is_answered_while_a_response_is_awaited() {
    let (url, seen) = start(Serve {
        delay: Duration::from_millis(400),
        ping: true,
        ..Serve::default()
    })
    .await;
    let m = load(&url, spec(1, 1, 1)).await;
    assert_eq!((m.requests, m.errors), (1, 0), "{:?}", m.error_kinds);
    let pong = seen.pong_micros.load(Ordering::Relaxed);
    // Answered while the request waited, not after its response 350 ms later.
    assert!(pong > 0 && pong < 200_000, "PING answered after {pong} µs");
}
