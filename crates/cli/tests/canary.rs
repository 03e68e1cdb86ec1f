//! Canary experiments as a user runs them: the built binary loads two in-process hello
//! services at the same time (the baseline and the candidate, each its own behaviour),
//! compares them and names a winner; `describe` and `assert` read the result.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{slogate, slogate_async, text};
use slogate_hello::{Behavior, HelloServer};

/// The baseline: 10 ms per request, every tenth 10 ms slower (p95 about 20 ms).
fn baseline() -> Behavior {
    Behavior::new()
        .latency(Duration::from_millis(10))
        .slow(0.1, Duration::from_millis(10))
}

fn write_spec(dir: &Path, baseline: &str, candidate: &str) -> PathBuf {
    let spec = format!(
        r#"name: hello-canary
strategy: {{ testingPattern: Canary }}
versions:
  - {{ name: current, role: baseline, url: "{baseline}", variables: {{ promote: baseline }} }}
  - {{ name: candidate, url: "{candidate}", variables: {{ promote: candidate }} }}
load: {{ connections: 8, numRequests: 1500 }}
slos:
  - {{ metric: http/latency-p95, upperLimit: 1000 }}
  - {{ metric: http/latency-p95, versus: baseline, maxIncrease: 15% }}
  - {{ metric: http/error-rate, versus: baseline, maxIncrease: 0.01 }}
"#
    );
    let path = dir.join("spec.yaml");
    std::fs::write(&path, spec).unwrap();
    path
}

fn schema_errors(doc: &serde_json::Value) -> Vec<String> {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../../schemas/result.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    validator
        .iter_errors(doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

/// Runs a Canary of `candidate` against [`baseline`] and returns the result document and
/// the result file's path (inside `dir`).
async fn canary(dir: &Path, candidate: Behavior) -> (serde_json::Value, String) {
    let base = HelloServer::start(baseline()).await.unwrap();
    let cand = HelloServer::start(candidate).await.unwrap();
    let spec = write_spec(dir, &base.url(), &cand.url());
    let result = dir.join("result.json");
    let result_path = result.to_str().unwrap().to_owned();
    let out = slogate_async(vec![
        "run".into(),
        "--spec".into(),
        spec.to_str().unwrap().into(),
        "--result-file".into(),
        result_path.clone(),
    ])
    .await;
    let stderr = text(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "slogate run: {stderr}"
    );
    // Both versions were loaded at the same time: each server saw its requests while the
    // other was being loaded too, and each version's progress is in the document.
    assert!(base.requests_served() >= 1500 && cand.requests_served() >= 1500);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&result).unwrap()).unwrap();
    let errors = schema_errors(&doc);
    assert!(errors.is_empty(), "schema errors: {errors:#?}");
    assert_eq!(doc["progress"]["versions"]["current"], 1500, "{doc:#}");
    assert_eq!(doc["progress"]["versions"]["candidate"], 1500, "{doc:#}");
    (doc, result_path)
}

fn relative<'a>(doc: &'a serde_json::Value, metric: &str) -> &'a serde_json::Value {
    doc["slos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["metric"] == metric && s.get("comparison").is_some())
        .unwrap_or_else(|| panic!("no relative {metric} in {doc:#}"))
}

fn assert_code(file: &str, condition: &str) -> i32 {
    slogate(&["assert", "-f", file, "-c", condition])
        .status
        .code()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equal_versions_violate_no_relative_slo_and_the_candidate_wins() {
    let dir = tempfile::tempdir().unwrap();
    let (doc, file) = canary(dir.path(), baseline()).await;
    let p95 = relative(&doc, "http/latency-p95");
    assert_ne!(p95["verdict"], "violated", "{p95:#}");
    assert_ne!(
        relative(&doc, "http/error-rate")["verdict"],
        "violated",
        "{doc:#}"
    );
    assert_eq!(doc["winner"]["found"], true, "{:#}", doc["winner"]);
    assert_eq!(doc["winner"]["name"], "candidate", "{:#}", doc["winner"]);
    assert_eq!(doc["winner"]["variables"]["promote"], "candidate");
    assert_eq!(assert_code(&file, "winnerFound"), 0);
    assert_eq!(assert_code(&file, "winner=candidate"), 0);
    assert_eq!(assert_code(&file, "winner=current"), 1);
    let report = text(&slogate(&["describe", "-f", &file]).stdout);
    assert!(report.contains("****** Comparison ******"), "{report}");
    assert!(
        report.contains("****** Winner ******\n✔ candidate: candidate wins"),
        "{report}"
    );
    assert!(report.contains("Variables: promote=candidate"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_candidate_30_percent_slower_at_p95_loses_to_the_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let slower = Behavior::new()
        .latency(Duration::from_millis(13))
        .slow(0.1, Duration::from_millis(13));
    let (doc, file) = canary(dir.path(), slower).await;
    let p95 = relative(&doc, "http/latency-p95");
    assert_eq!(p95["verdict"], "violated", "{p95:#}");
    let ratio = p95["observed"].as_f64().unwrap();
    assert!((1.15..1.5).contains(&ratio), "p95 ratio {ratio}");
    assert_eq!(doc["winner"]["name"], "current", "{:#}", doc["winner"]);
    assert_eq!(doc["winner"]["variables"]["promote"], "baseline");
    assert_eq!(doc["verdict"]["pass"], false);
    assert_eq!(assert_code(&file, "winnerFound"), 0);
    assert_eq!(assert_code(&file, "winner=candidate"), 1);
    assert_eq!(assert_code(&file, "slos"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_candidate_with_2_percent_errors_loses_on_the_error_rate_difference() {
    let dir = tempfile::tempdir().unwrap();
    let (doc, _) = canary(dir.path(), baseline().error_status(0.02, 503)).await;
    let errors = relative(&doc, "http/error-rate");
    assert_eq!(errors["verdict"], "violated", "{errors:#}");
    assert_eq!(errors["method"], "newcombe");
    assert_eq!(errors["comparison"]["versus"], "current");
    assert_eq!(doc["winner"]["name"], "current", "{:#}", doc["winner"]);
    assert!(
        doc["winner"]["reason"]
            .as_str()
            .unwrap()
            .contains("violates http/error-rate versus current"),
        "{:#}",
        doc["winner"]
    );
}
