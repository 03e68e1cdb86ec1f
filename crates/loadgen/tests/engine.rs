//! The load engine against the hello service on loopback: counts, error kinds, percentiles,
//! coordinated-omission correction, connections opened to keep to the rate, h2c,
//! cancellation. Servers that drop requests are in `dropped.rs`.

use std::time::Duration;

use slogate_core::measure::{ErrorKind, Measurement};
use slogate_core::spec::{LoadSpec, VersionSpec};
use slogate_hello::{Behavior, HelloServer};
use slogate_loadgen::summary::LatencyStats;
use slogate_loadgen::{LoadPlan, LoadProgress, Phase, RunOptions, run};
use tokio_util::sync::CancellationToken;

fn version(url: &str) -> VersionSpec {
    VersionSpec {
        name: "test".into(),
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

fn requests(n: u64, connections: u32) -> LoadSpec {
    LoadSpec {
        connections,
        num_requests: Some(n),
        ..LoadSpec::default()
    }
}

fn kind(m: &Measurement, kind: ErrorKind) -> u64 {
    m.error_kinds.get(&kind).copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_model_sends_exactly_n_requests_over_exactly_c_connections() {
    // The runtime's two workers by default, then one, three, and more threads than connections.
    for threads in [None, Some(1), Some(3), Some(16)] {
        let server = HelloServer::start(Behavior::new()).await.unwrap();
        let plan = LoadPlan::new(
            &version(&server.url()),
            &requests(1000, 8).settings().unwrap(),
        )
        .await
        .unwrap();
        let options = RunOptions {
            threads: threads.and_then(std::num::NonZeroUsize::new),
            ..RunOptions::default()
        };
        let m = run(plan, options).await.unwrap();
        assert_eq!((m.requests, m.errors), (1000, 0), "threads {threads:?}");
        assert_eq!(m.latency.len(), 1000);
        assert_eq!(m.status_counts.get(&200), Some(&1000));
        assert_eq!(
            m.bytes_received,
            1000 * slogate_hello::DEFAULT_BODY.len() as u64
        );
        assert_eq!(server.requests_served(), 1000);
        assert_eq!(server.connections_accepted(), 8, "threads {threads:?}");
        assert!(m.elapsed > Duration::ZERO);
        assert!(m.service_time.is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warmup_requests_are_sent_but_not_measured() {
    let server = HelloServer::start(Behavior::new()).await.unwrap();
    let spec = LoadSpec {
        warmup_requests: Some(50),
        ..requests(200, 4)
    };
    let m = load(&server.url(), spec).await;
    assert_eq!(m.requests, 200);
    assert_eq!(server.requests_served(), 250);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_statuses_count_by_error_ranges() {
    let server = HelloServer::start(Behavior::new().error_status(0.1, 503))
        .await
        .unwrap();
    let m = load(&server.url(), requests(500, 4)).await;
    assert_eq!(m.requests, 500);
    assert_eq!(m.errors, 50);
    assert_eq!(kind(&m, ErrorKind::Status), 50);
    assert_eq!(m.status_counts.get(&503), Some(&50));

    // With errorRanges limited to 400–499, a 503 is not an error.
    let spec = LoadSpec {
        error_ranges: vec![slogate_core::spec::StatusRange { from: 400, to: 499 }],
        ..requests(100, 2)
    };
    let m = load(&server.url(), spec).await;
    assert_eq!(m.errors, 0);
    assert_eq!(m.status_counts.get(&503), Some(&10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_are_counted_and_the_run_ends() {
    // Bind then close to get a loopback port where nothing listens.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = std::time::Instant::now();
    let m = load(&format!("http://127.0.0.1:{port}/"), requests(20, 2)).await;
    assert_eq!(m.requests, 20);
    assert_eq!(m.errors, 20);
    assert_eq!(kind(&m, ErrorKind::ConnectRefused), 20);
    assert_eq!(m.latency.len(), 0);
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resets_are_counted_and_connections_re_established() {
    let server = HelloServer::start(Behavior::new().reset_every(10))
        .await
        .unwrap();
    let m = load(&server.url(), requests(100, 1)).await;
    assert_eq!(m.requests, 100);
    assert_eq!(kind(&m, ErrorKind::Reset), 10);
    assert_eq!(m.errors, 10);
    assert_eq!(m.status_counts.get(&200), Some(&90));
    // The first connection, then one after each reset but the last.
    assert_eq!(server.connections_accepted(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_mid_response_counts_as_reset() {
    let behavior = Behavior::new()
        .body("x".repeat(1000))
        .close_mid_response_every(5);
    let server = HelloServer::start(behavior).await.unwrap();
    let m = load(&server.url(), requests(50, 1)).await;
    assert_eq!(m.requests, 50);
    assert_eq!(kind(&m, ErrorKind::Reset), 10);
    assert_eq!(m.errors, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_responses_time_out() {
    let behavior = Behavior::new().slow(0.5, Duration::from_millis(500));
    let server = HelloServer::start(behavior).await.unwrap();
    let spec = LoadSpec {
        timeout: Duration::from_millis(100),
        ..requests(10, 1)
    };
    let m = load(&server.url(), spec).await;
    assert_eq!(m.requests, 10);
    assert_eq!(kind(&m, ErrorKind::Timeout), 5);
    // Timed-out requests still count in latency, at about the timeout.
    assert_eq!(m.latency.len(), 10);
    assert!(m.latency.max() >= 100_000 && m.latency.max() < 200_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn percentiles_of_a_known_latency_distribution() {
    // 90 % at 2 ms, 10 % at 202 ms: p50 and p89 are fast, p95 and p99 are slow. The two levels
    // are far apart so a busy machine (other tests share these two cores) cannot blur them.
    let behavior = Behavior::new()
        .latency(Duration::from_millis(2))
        .slow(0.1, Duration::from_millis(200));
    let server = HelloServer::start(behavior).await.unwrap();
    let m = load(&server.url(), requests(400, 4)).await;
    let stats = LatencyStats::new(&m.latency, &[50.0, 89.0, 95.0, 99.0]);
    // A response can never come sooner than the server's delay, so each lower bound is that
    // delay less HdrHistogram's relative precision (3 significant digits); the upper bounds
    // leave room for timer ticks and scheduling.
    let precision = 1.0 - 1e-3;
    let within = |p: f64, low: f64, high: f64| {
        let v = stats.percentile(p).unwrap();
        assert!(
            (low * precision..high).contains(&v),
            "p{p} = {v} ms, expected {low}..{high}"
        );
    };
    within(50.0, 2.0, 60.0);
    within(89.0, 2.0, 100.0);
    within(95.0, 202.0, 290.0);
    within(99.0, 202.0, 290.0);
    assert_eq!(m.latency.len(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_model_charges_a_stall_to_corrected_latency_only() {
    // At 200 req/s for 2 s the server freezes 500 ms after its 100th request. The four
    // connections may not grow, as with a fixed-connection load generator such as wrk2.
    let behavior = Behavior::new().stall(100, Duration::from_millis(500));
    let server = HelloServer::start(behavior).await.unwrap();
    let spec = LoadSpec {
        connections: 4,
        max_connections: Some(4),
        qps: Some(200.0),
        num_requests: Some(400),
        ..LoadSpec::default()
    };
    let m = load(&server.url(), spec).await;
    assert_eq!(m.requests, 400);
    assert_eq!(m.errors, 0);
    let service = m.service_time.as_ref().unwrap();
    // Only the requests caught in the stall (at most one per connection) waited in service.
    let service_p90 = service.value_at_quantile(0.90);
    assert!(service_p90 < 50_000, "service p90 {service_p90} µs");
    // About 100 requests were due during the stall: corrected latency shows it.
    let corrected_p90 = m.latency.value_at_quantile(0.90);
    assert!(corrected_p90 > 100_000, "corrected p90 {corrected_p90} µs");
    assert!(
        m.latency.max() >= 450_000,
        "corrected max {} µs",
        m.latency.max()
    );
    // The rate stays on the timetable: 400 requests in about 2 s.
    let secs = m.elapsed.as_secs_f64();
    assert!((1.9..3.0).contains(&secs), "elapsed {secs}");
    assert_eq!(m.target_qps, Some(200.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_stall_is_not_load_generator_saturation() {
    let behavior = Behavior::new().stall(100, Duration::from_millis(500));
    let server = HelloServer::start(behavior).await.unwrap();
    let spec = LoadSpec {
        connections: 4,
        max_connections: Some(4),
        qps: Some(200.0),
        num_requests: Some(400),
        ..LoadSpec::default()
    };
    let m = load(&server.url(), spec).await;
    // Requests waited for a connection during the stall, but at the measured service time a
    // single connection carries 200 req/s: the stall is the service's.
    assert_eq!(m.saturation, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_model_opens_connections_when_all_are_busy_instead_of_queueing() {
    // 20 ms per request at 400 req/s needs about 8 connections busy; it starts with 2.
    let server = HelloServer::start(Behavior::new().latency(Duration::from_millis(20)))
        .await
        .unwrap();
    let spec = LoadSpec {
        connections: 2,
        qps: Some(400.0),
        num_requests: Some(1200),
        ..LoadSpec::default()
    };
    let m = load(&server.url(), spec).await;
    assert_eq!((m.requests, m.errors), (1200, 0));
    assert_eq!(m.saturation, None, "64 connections carry the rate");
    assert!(
        m.peak_connections > 8 && server.connections_accepted() == u64::from(m.peak_connections),
        "peak {} accepted {}",
        m.peak_connections,
        server.connections_accepted()
    );
    // Requests did not queue inside the generator: the corrected median is the service's.
    let corrected = m.latency.value_at_quantile(0.5);
    let service = m.service_time.as_ref().unwrap().value_at_quantile(0.5);
    assert!(
        corrected < 2 * service,
        "corrected p50 {corrected} µs, service p50 {service} µs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_open_model_says_how_many_connections_it_needed() {
    // 20 ms per request at 400 req/s over at most 2 connections: they carry 100 req/s.
    let server = HelloServer::start(Behavior::new().latency(Duration::from_millis(20)))
        .await
        .unwrap();
    let spec = LoadSpec {
        connections: 2,
        max_connections: Some(2),
        qps: Some(400.0),
        num_requests: Some(200),
        ..LoadSpec::default()
    };
    let m = load(&server.url(), spec).await;
    let saturation = m.saturation.expect("the generator was the bottleneck");
    assert_eq!(saturation.max_connections, 2);
    // 400 req/s × 20 ms = 8 busy on average, 10 with 20 % room.
    assert!(
        (10..=14).contains(&saturation.connections_needed),
        "{saturation:?}"
    );
    assert!(saturation.late_requests > 100, "{saturation:?}");
    assert_eq!(m.peak_connections, 2);
    assert_eq!(server.connections_accepted(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_model_holds_the_target_rate() {
    let server = HelloServer::start(Behavior::new()).await.unwrap();
    let spec = LoadSpec {
        connections: 4,
        qps: Some(1000.0),
        duration: Some(Duration::from_secs(2)),
        ..LoadSpec::default()
    };
    let m = load(&server.url(), spec).await;
    assert_eq!(m.requests, 2000);
    // Rate accuracy itself is measured by `make bench`; here the run must keep to the
    // timetable within what a shared, busy test machine allows.
    let rate = m.requests as f64 / m.elapsed.as_secs_f64();
    assert!((rate - 1000.0).abs() < 50.0, "rate {rate}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn method_headers_and_body_go_out_over_http1_and_h2c_on_kept_connections() {
    // The method is upper-cased for the wire; HTTP/2 goes by prior knowledge (h2c).
    for (http2, method, version) in [(false, "put", "HTTP/1.1"), (true, "PUT", "HTTP/2.0")] {
        let server = HelloServer::start(Behavior::new()).await.unwrap();
        let spec = LoadSpec {
            http2,
            method: Some(method.into()),
            body: Some("abcd".into()),
            headers: vec![slogate_core::spec::Header {
                name: "x-slogate".into(),
                value: "yes".into(),
            }],
            ..requests(100, 2)
        };
        let m = load(&server.url(), spec).await;
        assert_eq!(
            (m.requests, m.errors, m.bytes_sent),
            (100, 0, 400),
            "{version}"
        );
        let last = server.last_request().unwrap();
        assert_eq!(
            (last.version.as_str(), last.method.as_str()),
            (version, "PUT")
        );
        assert!(last.headers.contains(&("x-slogate".into(), "yes".into())));
        if !http2 {
            // Written by the engine itself, so checked on the wire.
            assert!(
                last.headers
                    .contains(&("content-length".into(), "4".into()))
            );
        }
        assert_eq!(server.request_body_bytes(), 400, "{version}");
        assert_eq!(server.connections_accepted(), 2, "{version}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_responses_are_counted_by_their_data() {
    let body = "a body sent in chunks of seven bytes";
    let server = HelloServer::start(Behavior::new().chunked().body(body))
        .await
        .unwrap();
    let m = load(&server.url(), requests(200, 4)).await;
    assert_eq!((m.requests, m.errors), (200, 0));
    assert_eq!(m.bytes_received, 200 * body.len() as u64);
    // Every response ended where its last chunk said, so every connection was kept.
    assert_eq!(server.connections_accepted(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_responses_announce_a_length_but_carry_no_body() {
    let server = HelloServer::start(Behavior::new()).await.unwrap();
    let spec = LoadSpec {
        method: Some("HEAD".into()),
        ..requests(50, 1)
    };
    let m = load(&server.url(), spec).await;
    assert_eq!((m.requests, m.errors, m.bytes_received), (50, 0, 0));
    assert_eq!(server.connections_accepted(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_file_is_sent_with_its_content_type() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("body.json");
    std::fs::write(&path, r#"{"hello":"world"}"#).unwrap();
    let server = HelloServer::start(Behavior::new()).await.unwrap();
    let spec = LoadSpec {
        body_file: Some(path),
        content_type: Some("application/json".into()),
        ..requests(3, 1)
    };
    let m = load(&server.url(), spec).await;
    assert_eq!(m.errors, 0);
    let last = server.last_request().unwrap();
    assert_eq!(last.method, "POST");
    assert_eq!(last.body_len, 17);
    assert!(
        last.headers
            .contains(&("content-type".into(), "application/json".into()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_url_is_downloaded_once_and_sent() {
    let payload = HelloServer::start(Behavior::new().body("payload-bytes"))
        .await
        .unwrap();
    let target = HelloServer::start(Behavior::new()).await.unwrap();
    let spec = LoadSpec {
        payload_url: Some(payload.url()),
        ..requests(5, 1)
    };
    let m = load(&target.url(), spec).await;
    assert_eq!(m.errors, 0);
    assert_eq!(payload.requests_served(), 1);
    assert_eq!(target.request_body_bytes(), 5 * 13);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_returns_what_was_measured_and_progress_is_published() {
    let server = HelloServer::start(Behavior::new().latency(Duration::from_millis(1)))
        .await
        .unwrap();
    let spec = LoadSpec {
        connections: 2,
        duration: Some(Duration::from_secs(60)),
        ..LoadSpec::default()
    };
    let plan = LoadPlan::new(&version(&server.url()), &spec.settings().unwrap())
        .await
        .unwrap();
    let stop = CancellationToken::new();
    let (progress, mut watch) = tokio::sync::watch::channel(LoadProgress::default());
    let options = RunOptions {
        progress: Some(progress),
        stop: stop.clone(),
        ..RunOptions::default()
    };
    let handle = tokio::spawn(run(plan, options));
    tokio::time::sleep(Duration::from_millis(700)).await;
    watch.changed().await.unwrap();
    let seen = watch.borrow().clone();
    assert_eq!(seen.phase, Phase::Measure);
    assert!(seen.requests > 0);
    stop.cancel();
    let m = tokio::time::timeout(Duration::from_secs(2), handle)
        .await
        .expect("cancelled run returns at once")
        .unwrap()
        .unwrap();
    assert!(
        m.requests >= seen.requests,
        "{} < {}",
        m.requests,
        seen.requests
    );
    assert!(m.elapsed < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_streams_keep_that_many_requests_in_flight_on_each_connection() {
    // 2 connections × 4 streams against a 50 ms service for 1 s: 8 in flight, ≈ 160
    // requests, where one stream per connection would make ≈ 40.
    let server = HelloServer::start(Behavior::new().latency(Duration::from_millis(50)))
        .await
        .unwrap();
    let spec = LoadSpec {
        connections: 2,
        streams: 4,
        http2: true,
        duration: Some(Duration::from_secs(1)),
        ..LoadSpec::default()
    };
    let m = load(&server.url(), spec).await;
    assert_eq!(m.errors, 0, "{:?}", m.error_kinds);
    assert!(
        (120..=170).contains(&m.requests),
        "{} requests in {:?}",
        m.requests,
        m.elapsed
    );
    assert_eq!(m.status_counts.get(&200), Some(&m.requests));
    assert_eq!(server.connections_accepted(), 2);
    // The median request took the service's 50 ms, not 4 × 50 ms queued behind the others.
    let p50 = m.latency.value_at_quantile(0.5) as f64 / 1000.0;
    assert!((45.0..80.0).contains(&p50), "p50 {p50} ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_streams_send_exactly_n_requests() {
    let server = HelloServer::start(Behavior::new()).await.unwrap();
    let spec = LoadSpec {
        connections: 3,
        streams: 5,
        http2: true,
        num_requests: Some(1000),
        ..LoadSpec::default()
    };
    let m = load(&server.url(), spec).await;
    assert_eq!((m.requests, m.errors), (1000, 0));
    assert_eq!(m.latency.len(), 1000);
    assert_eq!(server.requests_served(), 1000);
    assert_eq!(server.connections_accepted(), 3);
}

#[test]
fn more_than_one_stream_needs_http2() {
    let spec = LoadSpec {
        streams: 2,
        ..LoadSpec::default()
    };
    let problems = spec.settings().unwrap_err();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].path, "streams");
    assert!(
        problems[0].reason.contains("HTTP/2"),
        "{}",
        problems[0].reason
    );
    let zero = LoadSpec {
        streams: 0,
        http2: true,
        ..LoadSpec::default()
    };
    assert_eq!(zero.settings().unwrap_err()[0].path, "streams");
    // In a spec the problem names its place in the document.
    let err = slogate_core::spec::ExperimentSpec::from_yaml(
        "name: x\nversions: [{name: v, url: 'http://a/'}]\nload: {streams: 4}",
    )
    .unwrap_err();
    assert!(
        err.problems().iter().any(|p| p.path == "load.streams"),
        "{err}"
    );
}
