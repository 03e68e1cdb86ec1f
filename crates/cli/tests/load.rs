//! `slogate load` as a user runs it: the built binary against the hello service on loopback.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{slogate, slogate_async};
use slogate_hello::{Behavior, HelloServer};

fn schema() -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../schemas/load-summary.schema.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn each_bad_flag_exits_64_naming_the_flag() {
    let url = "http://127.0.0.1:9/";
    let cases: &[(&[&str], &str)] = &[
        (&["-q", "0", url], "--qps"),
        (&["-q", "-5", url], "--qps"),
        (&["-q", "fast", url], "--qps"),
        (&["-n", "10", "-z", "1s", url], "--duration"),
        (&["-c", "0", url], "--connections"),
        (
            &["-c", "8", "--max-connections", "4", url],
            "--max-connections",
        ),
        (&["-t", "0", url], "--threads"),
        (&["--streams", "2", url], "--streams"),
        (&["--streams", "0", "--http2", url], "--streams"),
        (&["-t", "many", url], "--threads"),
        (&["-z", "soon", url], "--duration"),
        (&["--timeout", "0s", url], "--timeout"),
        (&["-p", "50,ninety", url], "--percentiles"),
        (&["-p", "150", url], "--percentiles"),
        (&["-H", "no colon", url], "--header"),
        (&["-o", "yaml", url], "--output"),
        (
            &["--warmup-requests", "5", "--warmup", "1s", url],
            "--warmup",
        ),
        (&["--body", "x", "--body-file", "f", url], "--body"),
        (&["-m", "GE T", url], "--method"),
        (&["--body-file", "/no/such/file", url], "--body-file"),
        (&["ftp://example/"], "URL"),
        (&["not a url"], "URL"),
    ];
    for (args, flag) in cases {
        let mut all = vec!["load"];
        all.extend_from_slice(args);
        let out = slogate(&all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {stderr}");
        assert!(
            stderr.contains(flag),
            "{args:?} should name {flag}: {stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_summary_matches_the_schema() {
    let server = HelloServer::start(Behavior::new().error_status(0.1, 500))
        .await
        .unwrap();
    let args = [
        "load",
        "-c",
        "2",
        "-n",
        "200",
        "-o",
        "json",
        "-p",
        "50,97.5,p99.9",
    ];
    let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    args.push(server.url());
    let out = slogate_async(args).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let validator = jsonschema::validator_for(&schema()).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&json)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}\n{json:#}");
    assert_eq!(json["requests"], 200);
    assert_eq!(json["errors"], 20);
    assert_eq!(json["statusCounts"]["500"], 20);
    assert_eq!(json["errorKinds"]["status"], 20);
    assert_eq!(json["model"], "closed");
    let percentiles: Vec<f64> = json["latency"]["percentiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["percentile"].as_f64().unwrap())
        .collect();
    assert_eq!(percentiles, [50.0, 97.5, 99.9]);
}

#[test]
fn latencies_never_measured_are_null_in_json_and_said_so_in_text() {
    // Nothing listens on the port: every request is refused, no latency exists.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/");
    let out = slogate(&["load", "-c", "1", "-n", "5", "-o", "json", &url]);
    assert_eq!(out.status.code(), Some(0), "{}", common::text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let validator = jsonschema::validator_for(&schema()).unwrap();
    assert!(validator.is_valid(&json), "{json:#}");
    assert_eq!(json["errorKinds"]["connect-refused"], 5);
    for field in ["minMs", "meanMs", "stddevMs", "maxMs"] {
        assert!(json["latency"][field].is_null(), "{field}: {json:#}");
    }
    assert!(json["latency"]["percentiles"][0]["valueMs"].is_null());
    let out = slogate(&["load", "-c", "1", "-n", "5", &url]);
    let stdout = common::text(&out.stdout);
    assert!(stdout.contains("not measured"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_model_json_has_service_time_and_matches_the_schema() {
    let server = HelloServer::start(Behavior::new()).await.unwrap();
    let mut args: Vec<String> = [
        "load", "-q", "100", "-z", "1s", "-c", "2", "-o", "json", "--http2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(server.url());
    let out = slogate_async(args).await;
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let validator = jsonschema::validator_for(&schema()).unwrap();
    assert!(validator.is_valid(&json), "{json:#}");
    assert_eq!(json["model"], "open");
    assert_eq!(json["targetRate"], 100.0);
    assert_eq!(json["requests"], 100);
    assert!(json["serviceTime"]["count"].as_u64() == Some(100));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_streams_flag_keeps_that_many_requests_in_flight() {
    // 2 connections × 4 streams against a 50 ms service: 8 in flight, 200 requests in
    // about 1.25 s (one stream per connection would take 5 s).
    let server = HelloServer::start(Behavior::new().latency(Duration::from_millis(50)))
        .await
        .unwrap();
    let mut args: Vec<String> = [
        "load",
        "-n",
        "200",
        "-c",
        "2",
        "--streams",
        "4",
        "-o",
        "json",
        "--http2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(server.url());
    let out = slogate_async(args).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["requests"], 200);
    assert_eq!(json["errors"], 0);
    let elapsed = json["elapsedSeconds"].as_f64().unwrap();
    assert!(elapsed < 2.5, "{elapsed} s");
    assert_eq!(server.connections_accepted(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_run_and_prints_what_was_measured() {
    let server = HelloServer::start(Behavior::new().latency(Duration::from_millis(1)))
        .await
        .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_slogate"))
        .args(["load", "-c", "2", "-z", "60s", "-o", "json", &server.url()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    common::signal(child.id(), "TERM");
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["requests"].as_u64().unwrap() > 0);
    assert!(json["elapsedSeconds"].as_f64().unwrap() < 10.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_summary_names_the_numbers_a_user_reads() {
    let server = HelloServer::start(Behavior::new()).await.unwrap();
    let args: Vec<String> = vec!["load".into(), "-n".into(), "50".into(), server.url()];
    let out = slogate_async(args).await;
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "Requests:    50 in",
        "Errors:      0",
        "p99.9",
        "200",
        "histogram",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from\n{text}");
    }
}

/// Two load processes' evidence files, merged as index 0 merges its load pods' partials:
/// the counts add up, and the merged histogram is one histogram fed every sample.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_of_two_load_processes_merges_exactly() {
    let server = HelloServer::start(Behavior::new()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (i, n) in [(0, "120"), (1, "80")] {
        let file = dir.path().join(format!("pod-{i}.json"));
        let args: Vec<String> = [
            "load",
            "-n",
            n,
            "-c",
            "2",
            "-o",
            "json",
            "--evidence-out",
            file.to_str().unwrap(),
            &server.url(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let out = slogate_async(args).await;
        assert_eq!(out.status.code(), Some(0), "{}", common::text(&out.stderr));
        files.push(file.to_str().unwrap().to_owned());
    }
    let data: slogate_core::measure::MeasurementData =
        serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
    assert_eq!(data.requests, 120);
    let mut args = vec!["merge".to_owned()];
    args.extend(files);
    let out = slogate_async(args).await;
    assert_eq!(out.status.code(), Some(0), "{}", common::text(&out.stderr));
    let merged: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(merged["pods"], 2);
    assert_eq!(merged["requests"], 200);
    assert_eq!(merged["equalToOneHistogram"], true);
    assert!(merged["resultBytes"].as_u64().unwrap() < 100 * 1024);
}
