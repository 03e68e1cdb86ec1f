//! gRPC as a user runs it: `slogate load grpc://…` and a Canary experiment of two gRPC
//! versions, against the tonic hello service on loopback; `describe` reads the result.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{slogate, slogate_async, text};
use slogate_hello::grpc::{GrpcBehavior, GrpcHelloServer, SAY_HELLO, proto_path};

fn proto() -> String {
    proto_path().to_str().unwrap().to_owned()
}

fn schema_errors(schema: &str, doc: &serde_json::Value) -> Vec<String> {
    let schema: serde_json::Value = serde_json::from_str(schema).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    validator
        .iter_errors(doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

#[test]
fn grpc_flags_that_cannot_make_a_call_exit_64_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.proto");
    std::fs::write(&broken, "syntax = \"proto3\";\nservice X {\n  rpc A(\n}\n").unwrap();
    let broken = broken.to_str().unwrap().to_owned();
    let proto = proto();
    let target = "grpc://127.0.0.1:9";
    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        (vec![target], "--proto", "needs the service's .proto file"),
        (
            vec![target, "--proto", &proto],
            "--call",
            "needs the method",
        ),
        (
            vec!["http://127.0.0.1:9/", "--call", SAY_HELLO],
            "--call",
            "only for a gRPC target",
        ),
        (
            vec![target, "--proto", "/no/such.proto", "--call", SAY_HELLO],
            "--proto",
            "cannot read /no/such.proto",
        ),
        (
            vec![target, "--proto", &broken, "--call", "X/A"],
            "--proto",
            "broken.proto:4:1",
        ),
        (
            vec![target, "--proto", &proto, "--call", "Greeter"],
            "--call",
            "is not package.Service/Method",
        ),
        (
            vec![
                target,
                "--proto",
                &proto,
                "--call",
                "slogate.hello.v1.Greeter/Hi",
            ],
            "--call",
            "methods: \"SayHello\"",
        ),
        (
            vec![
                target,
                "--proto",
                &proto,
                "--call",
                "slogate.hello.v1.Greeter/WatchHellos",
            ],
            "--call",
            "unary calls only",
        ),
        (
            vec![
                target,
                "--proto",
                &proto,
                "--call",
                SAY_HELLO,
                "-d",
                r#"{"nmae": "x"}"#,
            ],
            "--data",
            "unrecognized field name 'nmae'",
        ),
        (
            vec![target, "--proto", &proto, "--call", SAY_HELLO, "-d", "[1]"],
            "--data",
            "JSON object",
        ),
        (
            vec![
                target, "--proto", &proto, "--call", SAY_HELLO, "-d", "{oops",
            ],
            "--data",
            "not JSON",
        ),
        (
            vec![
                target,
                "--proto",
                &proto,
                "--call",
                SAY_HELLO,
                "-M",
                "grpc-timeout: 1S",
            ],
            "--metadata",
            "set by gRPC itself",
        ),
        (
            vec![
                target, "--proto", &proto, "--call", SAY_HELLO, "--body", "x",
            ],
            "--body",
            "not for gRPC calls",
        ),
        (
            vec!["grpc://127.0.0.1", "--proto", &proto, "--call", SAY_HELLO],
            "URL",
            "has no port",
        ),
    ];
    for (args, flag, reason) in cases {
        let mut all = vec!["load"];
        all.extend_from_slice(&args);
        let out = slogate(&all);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {stderr}");
        assert!(
            stderr.contains(flag),
            "{args:?} should name {flag}: {stderr}"
        );
        assert!(
            stderr.contains(reason),
            "{args:?} should say {reason:?}: {stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_load_counts_calls_by_status_name() {
    let server = GrpcHelloServer::start(GrpcBehavior::new().status(0.1, 14))
        .await
        .unwrap();
    let args = vec![
        "load".to_owned(),
        server.url(),
        "--proto".into(),
        proto(),
        "--call".into(),
        SAY_HELLO.into(),
        "-d".into(),
        r#"{"name": "slogate"}"#.into(),
        "-M".into(),
        "x-team: checkout".into(),
        "-n".into(),
        "300".into(),
        "-c".into(),
        "2".into(),
        "--streams".into(),
        "4".into(),
        "-o".into(),
        "json".into(),
    ];
    let out = slogate_async(args).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let errors = schema_errors(
        include_str!("../../../schemas/load-summary.schema.json"),
        &json,
    );
    assert!(errors.is_empty(), "{errors:?}\n{json:#}");
    assert_eq!(json["protocol"], "grpc");
    assert_eq!(json["requests"], 300);
    assert_eq!(json["statusCounts"]["OK"], 270);
    assert_eq!(json["statusCounts"]["UNAVAILABLE"], 30);
    assert_eq!(json["errors"], 30);
    assert_eq!(json["errorKinds"]["status"], 30);
    let metadata = server.last_metadata();
    assert!(
        metadata.contains(&("x-team".into(), "checkout".into())),
        "{metadata:?}"
    );
}

fn write_spec(dir: &Path, baseline: &str, candidate: &str, extra_slo: &str) -> String {
    let proto = proto();
    let spec = format!(
        r#"name: greeter-canary
strategy: {{ testingPattern: Canary }}
versions:
  - name: current
    role: baseline
    url: "{baseline}"
    grpc: {{ proto: "{proto}", call: {SAY_HELLO}, data: {{ name: slogate }} }}
  - name: candidate
    url: "{candidate}"
    grpc: {{ proto: "{proto}", call: {SAY_HELLO}, data: {{ name: slogate }}, metadata: {{ x-version: candidate }} }}
load: {{ connections: 4, numRequests: 1000 }}
slos:
  - {{ metric: grpc/error-rate, upperLimit: 0.01 }}
  - {{ metric: grpc/latency-p95, versus: baseline, maxIncrease: 50% }}
{extra_slo}"#
    );
    let path = dir.join("spec.yaml");
    std::fs::write(&path, spec).unwrap();
    path.to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_canary_judges_grpc_slos_and_describe_shows_the_statuses() {
    let dir = tempfile::tempdir().unwrap();
    // The baseline answers in about 2 ms; the candidate fails one call in twenty.
    let base = GrpcHelloServer::start(GrpcBehavior::new().latency(Duration::from_millis(2)))
        .await
        .unwrap();
    let cand = GrpcHelloServer::start(
        GrpcBehavior::new()
            .latency(Duration::from_millis(2))
            .status(0.05, 14),
    )
    .await
    .unwrap();
    let spec = write_spec(dir.path(), &base.url(), &cand.url(), "");
    let result = dir.path().join("result.json");
    let out = slogate_async(vec![
        "run".into(),
        "--spec".into(),
        spec,
        "--result-file".into(),
        result.to_str().unwrap().into(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(base.calls_served(), 1000);
    assert_eq!(cand.calls_served(), 1000);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&result).unwrap()).unwrap();
    let errors = schema_errors(include_str!("../../../schemas/result.schema.json"), &doc);
    assert!(errors.is_empty(), "schema errors: {errors:#?}");
    let candidate = &doc["versions"][1];
    assert_eq!(candidate["protocol"], "grpc");
    assert_eq!(candidate["statusCounts"]["OK"], 950, "{candidate:#}");
    assert_eq!(candidate["statusCounts"]["UNAVAILABLE"], 50);
    assert_eq!(candidate["metrics"]["grpc/error-rate"], 0.05);
    assert!(candidate["metrics"]["grpc/latency-p95"].as_f64().unwrap() > 1.0);
    assert!(candidate["metrics"].get("http/error-rate").is_none());
    // 5 % errors against a 1 % limit: the candidate fails, the baseline wins.
    let failed: Vec<&serde_json::Value> = doc["slos"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["metric"] == "grpc/error-rate" && s["version"] == "candidate")
        .collect();
    assert_eq!(failed.len(), 1, "{:#}", doc["slos"]);
    assert_eq!(failed[0]["verdict"], "violated", "{:#}", failed[0]);
    assert_eq!(doc["winner"]["name"], "current", "{:#}", doc["winner"]);
    let metadata = cand.last_metadata();
    assert!(
        metadata.contains(&("x-version".into(), "candidate".into())),
        "{metadata:?}"
    );

    let out = slogate(&["describe", "-f", result.to_str().unwrap()]);
    let described = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for expected in ["grpc/error-rate", "grpc/latency-p95", "UNAVAILABLE", "OK"] {
        assert!(
            described.contains(expected),
            "describe should show {expected}:\n{described}"
        );
    }
}

#[test]
fn an_http_metric_for_grpc_versions_is_refused_naming_the_slo() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(
        dir.path(),
        "grpc://127.0.0.1:9",
        "http://127.0.0.1:9/",
        "  - { metric: http/latency-p95, upperLimit: 100 }\n",
    );
    let out = slogate(&["run", "--spec", &spec]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("slos[2].metric"), "{stderr}");
    assert!(stderr.contains("write grpc/latency-p95"), "{stderr}");
    // The candidate's URL is not a gRPC target.
    assert!(stderr.contains("versions[1].url"), "{stderr}");
}
