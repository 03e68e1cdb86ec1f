//! gRPC load against the tonic hello service on loopback: every call counted by its status,
//! the message built from JSON through the proto file, metadata sent, deadlines, reset
//! streams, TLS, the open model's corrected latency, and calls that cannot be planned.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use slogate_core::measure::{ErrorKind, Measurement};
use slogate_core::spec::{GrpcSpec, LoadSpec, VersionSpec};
use slogate_hello::grpc::{GrpcBehavior, GrpcHelloServer, SAY_HELLO, proto_path};
use slogate_loadgen::{GrpcError, LoadError, LoadPlan, RunOptions, run};
use support::identity;

fn call(data: serde_json::Value) -> GrpcSpec {
    GrpcSpec {
        proto: proto_path(),
        import_paths: Vec::new(),
        call: SAY_HELLO.to_owned(),
        data,
        metadata: BTreeMap::new(),
    }
}

fn version(url: &str, grpc: GrpcSpec) -> VersionSpec {
    VersionSpec {
        grpc: Some(grpc),
        ..VersionSpec::new("grpc", url)
    }
}

fn calls(n: u64, connections: u32) -> LoadSpec {
    LoadSpec {
        connections,
        num_requests: Some(n),
        http2: true,
        ..LoadSpec::default()
    }
}

async fn load(version: &VersionSpec, spec: LoadSpec) -> Measurement {
    let plan = LoadPlan::new(version, &spec.settings().unwrap())
        .await
        .unwrap();
    run(plan, RunOptions::default()).await.unwrap()
}

fn kind(m: &Measurement, kind: ErrorKind) -> u64 {
    m.error_kinds.get(&kind).copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_is_counted_by_its_grpc_status() {
    // Every tenth call is answered UNAVAILABLE (14).
    let server = GrpcHelloServer::start(GrpcBehavior::new().status(0.1, 14))
        .await
        .unwrap();
    let v = version(&server.url(), call(serde_json::json!({"name": "slogate"})));
    let m = load(&v, calls(1000, 4)).await;
    assert_eq!(m.requests, 1000);
    assert_eq!(server.calls_served(), 1000);
    assert_eq!(m.status_counts.get(&0), Some(&900), "{:?}", m.status_counts);
    assert_eq!(
        m.status_counts.get(&14),
        Some(&100),
        "{:?}",
        m.status_counts
    );
    assert_eq!(m.errors, 100);
    assert_eq!(kind(&m, ErrorKind::Status), 100);
    assert_eq!(m.latency.len(), 1000);
    // Each reply carries "Hello, slogate!" in a length-prefixed message.
    assert!(m.bytes_received >= 900 * 20, "{} bytes", m.bytes_received);
    // Four connections, each kept for the whole run.
    assert_eq!(server.connections_accepted(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_message_and_metadata_reach_the_server() {
    let server = GrpcHelloServer::start(GrpcBehavior::new()).await.unwrap();
    let mut grpc = call(serde_json::json!({"name": "slogate", "repeat": 3}));
    grpc.metadata
        .insert("x-tenant".to_owned(), "blue".to_owned());
    let v = version(&server.url(), grpc);
    let m = load(&v, calls(10, 1)).await;
    assert_eq!(m.status_counts.get(&0), Some(&10));
    // "Hello, slogate!" three times, plus the five-byte prefix and the field's tag and length.
    assert_eq!(
        m.bytes_received,
        10 * (5 + 2 + 45),
        "the reply holds the repeated greeting"
    );
    let headers: BTreeMap<String, String> = server.last_metadata().into_iter().collect();
    assert_eq!(headers["x-tenant"], "blue");
    assert_eq!(headers["content-type"], "application/grpc");
    assert_eq!(headers["te"], "trailers");
    assert_eq!(
        headers["grpc-timeout"], "10000m",
        "the request timeout is the deadline"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_past_its_deadline_is_deadline_exceeded() {
    // Every fifth call takes 300 ms; the deadline is 100 ms: those calls end DEADLINE_EXCEEDED
    // when the deadline passes (the server's answer or the client's own deadline, whichever
    // comes first), and their latency is about the deadline.
    let behavior = GrpcBehavior::new().slow(0.2, Duration::from_millis(300));
    let server = GrpcHelloServer::start(behavior).await.unwrap();
    let v = version(&server.url(), call(serde_json::json!({})));
    let spec = LoadSpec {
        timeout: Duration::from_millis(100),
        ..calls(50, 2)
    };
    let m = load(&v, spec).await;
    assert_eq!(m.requests, 50);
    assert_eq!(m.status_counts.get(&4), Some(&10), "{:?}", m.status_counts);
    assert_eq!(m.status_counts.get(&0), Some(&40), "{:?}", m.status_counts);
    assert_eq!(m.errors, 10);
    assert_eq!(
        kind(&m, ErrorKind::Status) + kind(&m, ErrorKind::Timeout),
        10,
        "{:?}",
        m.error_kinds
    );
    let max_ms = m.latency.max() / 1000;
    assert!((90..300).contains(&max_ms), "slowest call {max_ms} ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_streams_are_errors_and_the_connection_carries_on() {
    let server = GrpcHelloServer::start(GrpcBehavior::new().reset_every(5))
        .await
        .unwrap();
    let v = version(&server.url(), call(serde_json::json!({})));
    let m = load(&v, calls(100, 1)).await;
    assert_eq!(m.requests, 100);
    assert_eq!(kind(&m, ErrorKind::Reset), 20, "{:?}", m.error_kinds);
    assert_eq!(m.status_counts.get(&0), Some(&80));
    assert_eq!(m.errors, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_go_over_tls_when_the_target_is_grpcs() {
    let (config, der) = identity();
    let server = GrpcHelloServer::start_tls(GrpcBehavior::new(), config)
        .await
        .unwrap();
    assert!(server.url().starts_with("grpcs://"));
    let v = version(&server.url(), call(serde_json::json!({"name": "tls"})));
    let settings = calls(20, 2).settings().unwrap();
    let trusted = LoadPlan::with_root_certificates(&v, &settings, vec![der])
        .await
        .unwrap();
    let m = run(trusted, RunOptions::default()).await.unwrap();
    assert_eq!(m.status_counts.get(&0), Some(&20));
    // Without the certificate among its roots the client refuses the server.
    let untrusted = LoadPlan::new(&v, &settings).await.unwrap();
    let m = run(untrusted, RunOptions::default()).await.unwrap();
    assert_eq!(kind(&m, ErrorKind::Tls), m.requests);
    assert!(m.requests > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_model_charges_a_stall_to_corrected_latency() {
    // 200 calls/s for 2 s; the server freezes for 500 ms after its 100th call, on two
    // connections that may not grow.
    let behavior = GrpcBehavior::new().stall(100, Duration::from_millis(500));
    let server = GrpcHelloServer::start(behavior).await.unwrap();
    let v = version(&server.url(), call(serde_json::json!({})));
    let spec = LoadSpec {
        connections: 2,
        max_connections: Some(2),
        qps: Some(200.0),
        num_requests: Some(400),
        http2: true,
        ..LoadSpec::default()
    };
    let m = load(&v, spec).await;
    assert_eq!(m.requests, 400);
    assert_eq!(m.errors, 0);
    let service_p90 = m.service_time.as_ref().unwrap().value_at_quantile(0.90);
    assert!(service_p90 < 50_000, "service p90 {service_p90} µs");
    let corrected_p90 = m.latency.value_at_quantile(0.90);
    assert!(corrected_p90 > 100_000, "corrected p90 {corrected_p90} µs");
    assert!(
        m.latency.max() >= 450_000,
        "corrected max {} µs",
        m.latency.max()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_keep_that_many_calls_in_flight() {
    // 20 ms per call, 2 connections × 10 streams: 20 calls in flight, about 1000 calls/s.
    let behavior = GrpcBehavior::new().latency(Duration::from_millis(20));
    let server = GrpcHelloServer::start(behavior).await.unwrap();
    let v = version(&server.url(), call(serde_json::json!({})));
    let spec = LoadSpec {
        streams: 10,
        ..calls(400, 2)
    };
    let m = load(&v, spec).await;
    assert_eq!(m.status_counts.get(&0), Some(&400));
    assert_eq!(server.connections_accepted(), 2);
    let secs = m.elapsed.as_secs_f64();
    assert!(secs < 0.9, "400 calls at 20 in flight took {secs} s");
}

async fn plan_error(grpc: GrpcSpec) -> GrpcError {
    let v = version("grpc://127.0.0.1:1", grpc);
    match LoadPlan::new(&v, &calls(1, 1).settings().unwrap()).await {
        Err(LoadError::Grpc(err)) => err,
        other => panic!("expected a gRPC planning error, got {other:?}"),
    }
}

#[tokio::test]
async fn calls_that_cannot_be_made_are_refused_before_any_load() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.proto");
    std::fs::write(
        &broken,
        "syntax = \"proto3\";\nservice Greeter {\n  rpc Say(\n}\n",
    )
    .unwrap();
    let err = plan_error(GrpcSpec {
        proto: broken.clone(),
        ..call(serde_json::json!({}))
    })
    .await;
    assert_eq!(err.field(), "proto");
    let text = format!("{err}: {}", std::error::Error::source(&err).unwrap());
    assert!(text.contains("broken.proto"), "{text}");

    let err = plan_error(GrpcSpec {
        proto: dir.path().join("missing.proto"),
        ..call(serde_json::json!({}))
    })
    .await;
    assert_eq!(err.field(), "proto");

    let err = plan_error(GrpcSpec {
        call: "slogate.hello.v1.Greeter/SayGoodbye".into(),
        ..call(serde_json::json!({}))
    })
    .await;
    assert_eq!(err.field(), "call");
    let text = err.to_string();
    assert!(
        text.contains("SayHello") && text.contains("SayGoodbye"),
        "{text}"
    );

    let err = plan_error(GrpcSpec {
        call: "slogate.hello.v1.Farewell/SayHello".into(),
        ..call(serde_json::json!({}))
    })
    .await;
    assert!(
        err.to_string().contains("slogate.hello.v1.Greeter"),
        "{err}"
    );

    let err = plan_error(GrpcSpec {
        call: "slogate.hello.v1.Greeter/WatchHellos".into(),
        ..call(serde_json::json!({}))
    })
    .await;
    assert!(err.to_string().contains("unary"), "{err}");

    let err = plan_error(call(serde_json::json!({"nmae": "typo"}))).await;
    assert_eq!(err.field(), "data");
    let text = format!("{err}: {}", std::error::Error::source(&err).unwrap());
    assert!(text.contains("nmae"), "{text}");

    let err = plan_error(call(serde_json::json!({"repeat": "many"}))).await;
    assert_eq!(err.field(), "data");
}
