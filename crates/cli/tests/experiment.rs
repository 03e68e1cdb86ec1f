//! `slogate run`, `describe` and `assert` as a user runs them: the built binary against the
//! hello service on loopback, the result file checked against the committed schema.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{slogate, slogate_async, text};
use slogate_hello::{Behavior, HelloServer};

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited, not killed")
}

fn validate(path: &Path) -> serde_json::Value {
    let schema_path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../schemas/result.schema.json"
    );
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{}:\n{}",
        path.display(),
        errors.join("\n")
    );
    doc
}

/// A spec for `url` with the SLOs of the seed tutorial.
fn write_spec(dir: &Path, url: &str, load: &str) -> PathBuf {
    let spec = format!(
        r#"name: hello-slo
versions:
  - name: candidate
    url: {url}
load: {load}
slos:
  - {{ metric: http/error-rate, upperLimit: 0.0 }}
  - {{ metric: http/latency-mean, upperLimit: 50.0 }}
  - {{ metric: http/latency-p95, upperLimit: 100.0 }}
"#
    );
    let path = dir.join("spec.yaml");
    std::fs::write(&path, spec).unwrap();
    path
}

fn path_str(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_service_passes_and_the_gate_opens() {
    let server = HelloServer::start(Behavior::new().latency(Duration::from_millis(1)))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(
        dir.path(),
        &server.url(),
        "{ connections: 4, numRequests: 2000 }",
    );
    let result = dir.path().join("result.json");
    let out = slogate_async(vec![
        "run".into(),
        "--spec".into(),
        path_str(&spec),
        "--result-file".into(),
        path_str(&result),
    ])
    .await;
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    assert!(text(&out.stderr).contains("PASS"), "{}", text(&out.stderr));

    let doc = validate(&result);
    assert_eq!(doc["stage"], "Completed");
    assert_eq!(doc["verdict"]["pass"], true, "{doc:#}");
    assert_eq!(doc["progress"]["requestsDone"], 2000);
    let slos = doc["slos"].as_array().unwrap();
    assert_eq!(slos.len(), 3);
    assert!(slos.iter().all(|s| s["verdict"] == "satisfied"), "{doc:#}");
    let p95 = &slos[2];
    assert_eq!(p95["method"], "order-statistic");
    let observed = p95["observed"].as_f64().unwrap();
    assert!((1.0..100.0).contains(&observed), "p95 {observed} ms");
    assert!(p95["interval"]["lower"].as_f64().unwrap() <= observed);
    assert!(p95["interval"]["upper"].as_f64().unwrap() >= observed);

    let file = path_str(&result);
    let ok = slogate(&[
        "assert",
        "-f",
        &file,
        "-c",
        "completed",
        "-c",
        "nofailure",
        "-c",
        "slos",
    ]);
    assert_eq!(code(&ok), 0, "{}{}", text(&ok.stdout), text(&ok.stderr));

    // describe -o json prints the same document.
    let json = slogate(&["describe", "-f", &file, "-o", "json"]);
    assert_eq!(code(&json), 0, "{}", text(&json.stderr));
    let printed: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(printed, doc);
    let described = slogate(&["describe", "-f", &file]);
    assert_eq!(code(&described), 0, "{}", text(&described.stderr));
    assert!(text(&described.stdout).contains("http/latency-p95"));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_service_completes_with_a_failed_verdict() {
    // Every tenth request answers 503: the zero error-rate SLO is violated.
    let server = HelloServer::start(Behavior::new().error_status(0.1, 503))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(
        dir.path(),
        &server.url(),
        "{ connections: 2, numRequests: 500 }",
    );
    let out = slogate_async(vec!["run".into(), "--spec".into(), path_str(&spec)]).await;
    // The run completed, so exit 0 whatever the verdict; the document went to stdout.
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["verdict"]["pass"], false);
    let errors = &doc["slos"][0];
    assert_eq!(errors["verdict"], "violated");
    assert_eq!(doc["versions"][0]["metrics"]["http/error-count"], 50.0);
    assert_eq!(doc["versions"][0]["statusCounts"]["503"], 50);

    let result = dir.path().join("result.json");
    std::fs::write(&result, &out.stdout).unwrap();
    validate(&result);
    let file = path_str(&result);
    let slos = slogate(&["assert", "-f", &file, "-c", "completed", "-c", "slos"]);
    assert_eq!(code(&slos), 1, "{}", text(&slos.stdout));
    assert!(
        text(&slos.stdout).contains("✘ slos: "),
        "{}",
        text(&slos.stdout)
    );
    let completed = slogate(&["assert", "-f", &file, "-c", "completed", "-c", "nofailure"]);
    assert_eq!(code(&completed), 0, "{}", text(&completed.stdout));
    server.shutdown().await;
}

#[test]
fn invalid_spec_exits_64_listing_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("bad.yaml");
    std::fs::write(
        &spec,
        "name: bad\nversions:\n  - name: v1\n    url: ftp://x/\nload:\n  qps: 0\n  connections: 0\nslos:\n  - metric: http/latency-p95\n    upperLimit: 10\n    version: v2\n",
    )
    .unwrap();
    let out = slogate(&["run", "--spec", spec.to_str().unwrap()]);
    assert_eq!(code(&out), 64);
    let err = text(&out.stderr);
    for expected in [
        "invalid experiment spec (4 problems)",
        "versions[0].url:",
        "load.qps: must be a number greater than 0",
        "load.connections: must be at least 1",
        "slos[0].version: no version is named \"v2\"",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
    let missing = slogate(&["run", "--spec", "/no/such/spec.yaml"]);
    assert_eq!(code(&missing), 64);
    assert!(text(&missing.stderr).contains("--spec /no/such/spec.yaml"));
}

#[test]
fn missing_body_file_is_invalid_input_and_nothing_is_published() {
    // Used to exit 2 after publishing a Failed result: a file that is not there is bad input.
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(
        dir.path(),
        "http://127.0.0.1:9/",
        "{ numRequests: 10, bodyFile: /no/such/body.json }",
    );
    let result = dir.path().join("result.json");
    let out = slogate(&[
        "run",
        "--spec",
        &path_str(&spec),
        "--result-file",
        &path_str(&result),
    ]);
    let err = text(&out.stderr);
    assert_eq!(code(&out), 64, "{err}");
    assert!(
        err.contains("load.bodyFile: cannot read /no/such/body.json: No such file or directory"),
        "{err}"
    );
    assert!(!result.exists(), "a result was published");
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
}

/// A minimal document in a given stage, as a run writes it.
fn document(stage: &str) -> String {
    let end = if stage == "Running" {
        String::new()
    } else {
        r#""endTime": "2026-11-23T10:01:00Z","#.to_owned()
    };
    let tail = match stage {
        "Completed" => r#","verdict": {"pass": true, "reason": "All 1 SLOs are satisfied."}"#,
        "Failed" => r#","failure": "Interrupted: SIGTERM""#,
        _ => "",
    };
    format!(
        r#"{{"apiVersion": "slogate.dev/v1alpha1", "kind": "ExperimentResult", "name": "x",
            "startTime": "2026-11-23T10:00:00Z", {end} "stage": "{stage}",
            "progress": {{"requestsDone": 10, "elapsedSeconds": 1.0}}, "confidence": 0.95,
            "versions": [], "slos": [] {tail}}}"#
    )
}

#[test]
fn assert_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.json");
    let f = file.to_str().unwrap();

    std::fs::write(&file, document("Failed")).unwrap();
    let out = slogate(&["assert", "-f", f, "-c", "nofailure", "--timeout", "30s"]);
    assert_eq!(code(&out), 1, "a failed run cannot recover: no waiting");
    assert!(text(&out.stdout).contains("Interrupted: SIGTERM"));

    std::fs::write(&file, document("Running")).unwrap();
    let started = Instant::now();
    let out = slogate(&["assert", "-f", f, "-c", "completed", "--timeout", "1500ms"]);
    assert_eq!(code(&out), 2, "{}", text(&out.stderr));
    assert!(started.elapsed() >= Duration::from_millis(1400));
    assert!(
        text(&out.stderr).contains("still running"),
        "{}",
        text(&out.stderr)
    );

    let missing = slogate(&["assert", "-f", "/no/such/result.json", "-c", "completed"]);
    assert_eq!(code(&missing), 2);
    let unknown = slogate(&["assert", "-f", f, "-c", "finished"]);
    assert_eq!(code(&unknown), 64);
    let cluster = slogate(&["assert", "-n", "staging", "my-exp", "-c", "completed"]);
    assert_eq!(code(&cluster), 2);
    let both = slogate(&["assert", "-f", f, "my-exp", "-c", "completed"]);
    assert_eq!(code(&both), 64);
}

#[test]
fn assert_stops_waiting_once_the_experiment_is_done() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.json");
    std::fs::write(&file, document("Running")).unwrap();
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_slogate"))
        .args(["assert", "-f", file.to_str().unwrap()])
        .args(["-c", "completed", "-c", "slos", "--timeout", "60s"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    std::fs::write(&file, document("Completed")).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stdout));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_publishes_an_interrupted_result() {
    let server = HelloServer::start(Behavior::new().latency(Duration::from_millis(2)))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(
        dir.path(),
        &server.url(),
        "{ connections: 2, qps: 100, duration: 60s }",
    );
    let result = dir.path().join("result.json");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_slogate"))
        .args(["run", "--spec", spec.to_str().unwrap()])
        .args(["--result-file", result.to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let running = validate(&result);
    assert_eq!(running["stage"], "Running");
    common::signal(child.id().unwrap(), "TERM");
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("slogate stops soon after SIGTERM")
        .unwrap();
    assert_eq!(status.code(), Some(2));
    let doc = validate(&result);
    assert_eq!(doc["stage"], "Failed");
    assert_eq!(doc["failure"], "Interrupted: SIGTERM");
    let done = doc["progress"]["requestsDone"].as_u64().unwrap();
    assert!(
        done > 50,
        "what was measured before the signal is kept: {done}"
    );
    assert!(doc.get("verdict").is_none());
    server.shutdown().await;
}

#[test]
fn describe_watch_reprints_until_the_experiment_is_done() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.json");
    std::fs::write(&file, document("Running")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_slogate"))
        .args(["describe", "-f", file.to_str().unwrap(), "-o", "json"])
        .args(["--watch", "--interval", "300ms"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    std::fs::write(&file, document("Completed")).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 0);
    let printed = text(&out.stdout);
    let prints: Vec<&str> = printed.split("\n---\n").collect();
    assert!(
        prints.len() >= 3,
        "printed {} times:\n{printed}",
        prints.len()
    );
    assert!(prints[0].contains("\"stage\": \"Running\""));
    assert!(prints.last().unwrap().contains("\"stage\": \"Completed\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_hard_is_called_stale_and_nothing_waits_for_it() {
    let server = HelloServer::start(Behavior::new().latency(Duration::from_millis(2)))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(
        dir.path(),
        &server.url(),
        "{ connections: 2, qps: 50, duration: 120s }",
    );
    let result = dir.path().join("result.json");
    // What an earlier run killed between a write and its rename left behind (a process id
    // above Linux's largest).
    let stray = dir.path().join(".result.json.4294967.tmp");
    std::fs::write(&stray, "{").unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_slogate"))
        .args(["run", "--spec", spec.to_str().unwrap()])
        .args(["--result-file", result.to_str().unwrap()])
        .args(["--publish-every", "200ms"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let running = validate(&result);
    assert_eq!(running["stage"], "Running");
    assert_eq!(running["publishIntervalSeconds"], 0.2);
    assert!(running["updatedAt"].is_string(), "{running:#}");
    assert!(
        !stray.exists(),
        "the earlier run's temporary file is removed"
    );
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    server.shutdown().await;

    let f = result.to_str().unwrap().to_owned();
    // While the last update is recent the run may be alive: assert keeps waiting.
    let early = slogate_async(vec![
        "assert".into(),
        "-f".into(),
        f.clone(),
        "-c".into(),
        "completed".into(),
    ])
    .await;
    assert_eq!(code(&early), 2);
    assert!(
        text(&early.stderr).contains("still running"),
        "{}",
        text(&early.stderr)
    );

    // describe --watch would print for ever; it stops once the result is stale (3 publish
    // intervals and 5 s for clock differences), saying why.
    let watch = tokio::time::timeout(
        Duration::from_secs(60),
        slogate_async(vec![
            "describe".into(),
            "-f".into(),
            f.clone(),
            "--watch".into(),
            "--interval".into(),
            "300ms".into(),
        ]),
    )
    .await
    .expect("describe --watch returns once the run is stale");
    assert_eq!(code(&watch), 2, "{}", text(&watch.stderr));
    let printed = text(&watch.stdout);
    assert!(
        printed.contains("Warning:               stale: the result has not been updated for"),
        "{printed}"
    );
    assert!(
        text(&watch.stderr).contains("will not finish"),
        "{}",
        text(&watch.stderr)
    );

    // assert gives up at once instead of waiting out its timeout.
    let started = Instant::now();
    let out = slogate_async(vec![
        "assert".into(),
        "-f".into(),
        f,
        "-c".into(),
        "completed".into(),
        "--timeout".into(),
        "10m".into(),
    ])
    .await;
    assert_eq!(code(&out), 2, "{}", text(&out.stdout));
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("will not finish (completed not decided)"),
        "{stderr}"
    );
    assert!(stderr.contains("stale"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_the_payload_is_fetched_publishes_an_interrupted_result() {
    // A payload server that takes the request and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let payload = format!("http://{}/body", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(
        dir.path(),
        "http://127.0.0.1:9/",
        &format!("{{ connections: 1, numRequests: 10, payloadUrl: '{payload}' }}"),
    );
    let result = dir.path().join("result.json");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_slogate"))
        .args(["run", "--spec", spec.to_str().unwrap()])
        .args(["--result-file", result.to_str().unwrap()])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    common::signal(child.id().unwrap(), "TERM");
    let status = tokio::time::timeout(Duration::from_secs(8), child.wait())
        .await
        .expect("slogate stops soon after SIGTERM")
        .unwrap();
    assert_eq!(status.code(), Some(2));
    let doc = validate(&result);
    assert_eq!(doc["stage"], "Failed");
    assert_eq!(doc["failure"], "Interrupted: SIGTERM");
}
