//! Metrics from a real Prometheus (Debian's `/usr/bin/prometheus`, started per test,
//! scraping a test exporter of Knative's revision metrics every second), judged by the built
//! `slogate run --spec` as a user runs it: the Iter8 Knative tutorial's three objectives per
//! revision (samples/prometheus-canary.yaml), relative SLOs between revisions, a gauge
//! judged on its value, and the errors that must never pass or violate silently (an empty
//! result, a Prometheus that is down, a query of many series).

mod common;

use std::path::Path;

use common::prometheus::{Exporter, Prometheus, Traffic, free_port};
use common::{slogate, slogate_async, text};
use serde_json::Value;

/// A candidate whose p95 is between 250 and 500 ms, with 5 % errors.
fn bad() -> Traffic {
    Traffic {
        error_fraction: 0.05,
        bucket_shares: [0.0, 0.1, 0.1, 0.1, 0.2, 0.3, 0.2, 0.0],
        mean_ms: 150.0,
        memory_bytes: 900e6,
        ..Traffic::good()
    }
}

/// The sample spec with its Prometheus URL replaced by `url`, and `extra` appended.
fn sample_spec(dir: &Path, url: &str, extra: &str) -> String {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../samples/prometheus-canary.yaml"
    ))
    .unwrap()
    .replace("http://prometheus.monitoring:9090", url)
    .replace("intervalSeconds: 5", "intervalSeconds: 3");
    let path = dir.join("spec.yaml");
    std::fs::write(&path, format!("{text}{extra}")).unwrap();
    path.to_str().unwrap().to_owned()
}

fn schema_errors(doc: &Value) -> Vec<String> {
    let schema: Value =
        serde_json::from_str(include_str!("../../../schemas/result.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    validator
        .iter_errors(doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

/// Runs the spec and returns the exit code, the result document and stderr.
async fn run(dir: &Path, spec: String) -> (i32, Value, String) {
    let result = dir.join("result.json");
    let out = slogate_async(vec![
        "run".into(),
        "--spec".into(),
        spec,
        "--result-file".into(),
        result.to_str().unwrap().into(),
    ])
    .await;
    let stderr = text(&out.stderr);
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(&result).unwrap_or_else(|e| panic!("{e}: {stderr}")),
    )
    .unwrap();
    let errors = schema_errors(&doc);
    assert!(errors.is_empty(), "schema errors: {errors:#?}\n{doc:#}");
    (out.status.code().unwrap(), doc, stderr)
}

fn slo<'a>(doc: &'a Value, metric: &str, version: &str, relative: bool) -> &'a Value {
    doc["slos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            s["metric"] == metric
                && s["version"] == version
                && s.get("comparison").is_some() == relative
        })
        .unwrap_or_else(|| panic!("no SLO {metric} of {version} in {doc:#}"))
}

fn custom<'a>(doc: &'a Value, version: &str, metric: &str) -> &'a Value {
    doc["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == version)
        .and_then(|v| v["customMetrics"].as_array())
        .and_then(|ms| ms.iter().find(|m| m["name"] == metric))
        .unwrap_or_else(|| panic!("no {metric} of {version} in {doc:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tutorial_objectives_from_prometheus_pass_a_good_candidate_with_intervals() {
    let exporter = Exporter::start(&[
        ("sample-app-v1", Traffic::good()),
        ("sample-app-v2", Traffic::good()),
    ])
    .await;
    let prometheus = Prometheus::start(&exporter.target()).await;
    let dir = tempfile::tempdir().unwrap();
    let spec = sample_spec(dir.path(), &prometheus.url(), "");
    let (code, doc, stderr) = run(dir.path(), spec).await;
    assert_eq!(code, 0, "{stderr}\n{doc:#}");
    assert_eq!(doc["stage"], "Completed", "{doc:#}");
    assert_eq!(doc["winner"]["name"], "candidate", "{doc:#}");

    // The ratio has a binomial interval, as the built-in error rate.
    let er = slo(&doc, "iter8-knative/error-rate", "candidate", false);
    assert_eq!(er["verdict"], "satisfied", "{er:#}");
    assert_eq!(er["method"], "clopper-pearson", "{er:#}");
    let upper = er["interval"]["upper"].as_f64().unwrap();
    assert!(upper > 0.0 && upper < 0.01, "{er:#}");
    // The quantile's interval is made of the bucket edges around it (25 .. 50 ms).
    let p95 = slo(
        &doc,
        "iter8-knative/95th-percentile-tail-latency",
        "candidate",
        false,
    );
    assert_eq!(p95["verdict"], "satisfied", "{p95:#}");
    assert_eq!(p95["method"], "order-statistic", "{p95:#}");
    assert_eq!(p95["interval"]["lower"], 25.0, "{p95:#}");
    assert_eq!(p95["interval"]["upper"], 50.0, "{p95:#}");
    // The mean from sum and count has no sampling interval, and says so.
    let mean = slo(&doc, "iter8-knative/mean-latency", "candidate", false);
    assert_eq!(mean["verdict"], "satisfied", "{mean:#}");
    assert!(mean.get("interval").is_none(), "{mean:#}");
    let observed = mean["observed"].as_f64().unwrap();
    assert!((observed - 12.0).abs() < 0.5, "{mean:#}");
    assert!(
        mean["reason"]
            .as_str()
            .unwrap()
            .contains("judged on its value; no sampling interval"),
        "{mean:#}"
    );
    // Relative SLOs compare the revisions.
    let rel = slo(
        &doc,
        "iter8-knative/95th-percentile-tail-latency",
        "candidate",
        true,
    );
    assert_eq!(rel["verdict"], "satisfied", "{rel:#}");
    assert_eq!(rel["comparison"]["versus"], "current", "{rel:#}");
    let rel_er = slo(&doc, "iter8-knative/error-rate", "candidate", true);
    assert_eq!(rel_er["verdict"], "satisfied", "{rel_er:#}");

    // The queries sent are kept, rendered for each revision over the window.
    let q = custom(
        &doc,
        "current",
        "iter8-knative/95th-percentile-tail-latency",
    );
    let sent = q["queries"]["query"].as_str().unwrap();
    assert!(sent.contains("revision_name=\"sample-app-v1\""), "{sent}");
    assert!(sent.contains("[6s]") || sent.contains("[7s]"), "{sent}");
    let q = custom(&doc, "candidate", "iter8-knative/error-rate");
    assert!(
        q["queries"]["denominator"]
            .as_str()
            .unwrap()
            .contains("sample-app-v2"),
        "{q:#}"
    );
    // describe shows each metric's query and value.
    let file = dir.path().join("result.json");
    let report = text(&slogate(&["describe", "-f", file.to_str().unwrap()]).stdout);
    assert!(
        report.contains(
            "sum(increase(revision_app_request_latencies_bucket{revision_name=\"sample-app-v2\"}"
        ),
        "{report}"
    );
    assert!(report.contains("iter8-knative/mean-latency"), "{report}");
    let md = text(&slogate(&["describe", "-f", file.to_str().unwrap(), "-o", "markdown"]).stdout);
    assert!(md.contains("sample-app-v1"), "{md}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_failing_candidate_loses_and_a_gauge_is_judged_on_its_value() {
    let exporter =
        Exporter::start(&[("sample-app-v1", Traffic::good()), ("sample-app-v2", bad())]).await;
    let prometheus = Prometheus::start(&exporter.target()).await;
    let dir = tempfile::tempdir().unwrap();
    let gauge = "  - {metric: app/memory, upperLimit: 200000000}\n";
    let spec_text = sample_spec(dir.path(), &prometheus.url(), gauge);
    // The gauge joins the metrics.
    let with_gauge = std::fs::read_to_string(&spec_text).unwrap().replace(
        "metrics:\n",
        &format!(
            "metrics:\n  - {{name: app/memory, provider: prometheus, url: '{}', kind: value, unit: bytes, query: 'max(app_memory_bytes{{revision_name=\"{{{{variables.revision}}}}\"}})'}}\n",
            prometheus.url()
        ),
    );
    std::fs::write(&spec_text, with_gauge).unwrap();
    let (code, doc, stderr) = run(dir.path(), spec_text).await;
    assert_eq!(code, 0, "the run completes; the verdict fails: {stderr}");
    assert_eq!(doc["stage"], "Completed", "{doc:#}");
    assert_eq!(doc["verdict"]["pass"], false, "{doc:#}");
    assert_eq!(doc["winner"]["name"], "current", "{doc:#}");
    let p95 = slo(
        &doc,
        "iter8-knative/95th-percentile-tail-latency",
        "candidate",
        false,
    );
    assert_eq!(p95["verdict"], "violated", "{p95:#}");
    assert_eq!(p95["interval"]["lower"], 250.0, "{p95:#}");
    let rel = slo(
        &doc,
        "iter8-knative/95th-percentile-tail-latency",
        "candidate",
        true,
    );
    assert_eq!(rel["verdict"], "violated", "{rel:#}");
    let er = slo(&doc, "iter8-knative/error-rate", "candidate", true);
    assert_eq!(er["verdict"], "violated", "{er:#}");
    let mem = slo(&doc, "app/memory", "candidate", false);
    assert_eq!(mem["verdict"], "violated", "{mem:#}");
    assert_eq!(mem["observed"], 900e6, "{mem:#}");
    assert_eq!(mem["method"], "value", "{mem:#}");
    let base_mem = slo(&doc, "app/memory", "current", false);
    assert_eq!(base_mem["verdict"], "satisfied", "{base_mem:#}");
}

/// A spec of one version judged on one ratio metric against `url`, with the numerator and
/// the denominator given, three iterations of a second and an error limit of 3.
fn ratio_spec(dir: &Path, url: &str, numerator: &str, denominator: &str) -> String {
    let spec = format!(
        r#"name: prom-errors
versions:
  - {{name: candidate, variables: {{revision: sample-app-v2}}}}
duration: {{intervalSeconds: 1, iterationsPerLoop: 4}}
metrics:
  - name: app/error-rate
    provider: prometheus
    url: '{url}'
    kind: ratio
    consecutiveErrorLimit: 3
    numerator: '{numerator}'
    denominator: '{denominator}'
slos:
  - {{metric: app/error-rate, upperLimit: 0.01}}
"#
    );
    let path = dir.join("spec.yaml");
    std::fs::write(&path, spec).unwrap();
    path.to_str().unwrap().to_owned()
}

const DENOMINATOR: &str = r#"sum(increase(revision_app_request_latencies_count{revision_name="{{variables.revision}}"}[{{elapsed}}]))"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_result_is_no_data_and_the_experiment_fails_at_the_error_limit() {
    let exporter = Exporter::start(&[("sample-app-v2", Traffic::good())]).await;
    let prometheus = Prometheus::start(&exporter.target()).await;
    let dir = tempfile::tempdir().unwrap();
    // No series has this name: the vector is empty.
    let spec = ratio_spec(
        dir.path(),
        &prometheus.url(),
        r#"sum(increase(no_such_metric_total{revision_name="{{variables.revision}}"}[{{elapsed}}]))"#,
        DENOMINATOR,
    );
    let (code, doc, stderr) = run(dir.path(), spec).await;
    assert_eq!(code, 2, "a failed run is a runtime failure: {stderr}");
    assert_eq!(doc["stage"], "Failed", "{doc:#}");
    let reason = doc["failure"].as_str().unwrap_or_default();
    assert!(
        reason.contains("app/error-rate")
            && reason.contains("3 consecutive errors")
            && reason.contains("empty result"),
        "{reason}\n{doc:#}"
    );
    // The first look had no data: neither satisfied nor violated.
    let first = &doc["iterations"][0];
    assert_eq!(first["verdict"], "inconclusive", "{doc:#}");
    let s = slo(&doc, "app/error-rate", "candidate", false);
    assert_eq!(s["verdict"], "noData", "{s:#}");
    assert!(stderr.contains("no data"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prometheus_that_is_down_fails_the_experiment_at_the_error_limit_never_passing() {
    let dir = tempfile::tempdir().unwrap();
    let down = format!("http://127.0.0.1:{}", free_port());
    let spec = ratio_spec(dir.path(), &down, "vector(0)", DENOMINATOR);
    let (code, doc, stderr) = run(dir.path(), spec).await;
    assert_eq!(code, 2, "a failed run is a runtime failure: {stderr}");
    assert_eq!(doc["stage"], "Failed", "{doc:#}");
    let reason = doc["failure"].as_str().unwrap_or_default();
    assert!(
        reason.contains("app/error-rate") && reason.contains("cannot query"),
        "{reason}"
    );
    assert_ne!(doc["verdict"]["pass"], true, "{doc:#}");
    assert_eq!(
        slogate(&[
            "assert",
            "-f",
            dir.path().join("result.json").to_str().unwrap(),
            "-c",
            "nofailure"
        ])
        .status
        .code(),
        Some(1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_of_many_series_is_refused_naming_the_labels_that_differ() {
    let exporter = Exporter::start(&[("sample-app-v2", bad())]).await;
    let prometheus = Prometheus::start(&exporter.target()).await;
    let dir = tempfile::tempdir().unwrap();
    let by_class = r#"sum by (response_code_class) (increase(revision_app_request_latencies_count{revision_name="{{variables.revision}}"}[{{elapsed}}]))"#;
    let spec = ratio_spec(dir.path(), &prometheus.url(), by_class, DENOMINATOR);
    let (_, doc, stderr) = run(dir.path(), spec).await;
    assert_eq!(doc["stage"], "Failed", "{doc:#}");
    let reason = doc["failure"].as_str().unwrap_or_default();
    assert!(
        reason.contains("numerator")
            && reason.contains("2 series")
            && reason.contains(r#"response_code_class="2xx"|"5xx""#),
        "{reason}\n{stderr}"
    );
}

#[test]
fn invalid_metric_specs_exit_64_naming_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let spec = r#"name: bad-metrics
versions:
  - {name: candidate, variables: {revision: v2}}
duration: {intervalSeconds: 1, iterationsPerLoop: 1}
metrics:
  - {name: a/kind, provider: prometheus, url: 'http://p:9090', kind: average, query: up}
  - {name: a/ratio, provider: prometheus, url: 'http://p:9090', kind: ratio, numerator: up}
  - {name: a/template, provider: prometheus, url: 'http://p:9090', kind: value, query: 'up{r="{{variables.revison}}"}'}
  - {name: a/syntax, provider: prometheus, url: 'http://p:9090', kind: value, query: 'up{{#if}}'}
  - {name: a/url, provider: prometheus, url: 'ftp://p:9090', kind: value, query: up}
slos:
  - {metric: a/nothing, upperLimit: 1}
"#;
    let path = dir.path().join("spec.yaml");
    std::fs::write(&path, spec).unwrap();
    let out = slogate(&["run", "--spec", path.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    for field in [
        "metrics[0].kind",
        "metrics[1].denominator",
        "metrics[2].query",
        "revison",
        "metrics[3].query",
        "metrics[4].url",
        "slos[0].metric",
    ] {
        assert!(stderr.contains(field), "{field} not named:\n{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prometheus_over_https_is_trusted_through_its_ca_file_and_refused_without() {
    let exporter = Exporter::start(&[("sample-app-v2", Traffic::good())]).await;
    let prometheus = Prometheus::start_tls(&exporter.target()).await;
    let ca = prometheus.ca_file().unwrap().display().to_string();
    for (trusted, name) in [(true, "with-ca"), (false, "without-ca")] {
        let dir = tempfile::tempdir().unwrap();
        let ca_line = if trusted {
            format!("    caFile: '{ca}'\n")
        } else {
            String::new()
        };
        let spec = format!(
            r#"name: prom-{name}
versions:
  - {{name: candidate, variables: {{revision: sample-app-v2}}}}
duration: {{intervalSeconds: 1, iterationsPerLoop: 1}}
metrics:
  - name: app/memory
    provider: prometheus
    url: '{}'
{ca_line}    consecutiveErrorLimit: 2
    kind: value
    query: 'max(app_memory_bytes{{revision_name="{{{{variables.revision}}}}"}})'
slos:
  - {{metric: app/memory, upperLimit: 100000000}}
"#,
            prometheus.url()
        );
        let path = dir.path().join("spec.yaml");
        std::fs::write(&path, spec).unwrap();
        let (code, doc, stderr) = run(dir.path(), path.to_str().unwrap().to_owned()).await;
        if trusted {
            assert_eq!(code, 0, "{stderr}\n{doc:#}");
            assert_eq!(doc["verdict"]["pass"], true, "{doc:#}");
        } else {
            assert_eq!(code, 2, "{stderr}");
            let reason = doc["failure"].as_str().unwrap_or_default();
            assert!(reason.contains("certificate"), "{reason}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn built_in_load_and_prometheus_metrics_are_judged_together() {
    let exporter = Exporter::start(&[("sample-app-v2", Traffic::good())]).await;
    let prometheus = Prometheus::start(&exporter.target()).await;
    let hello = slogate_hello::HelloServer::start(slogate_hello::Behavior::new())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spec = format!(
        r#"name: prom-and-load
versions:
  - {{name: candidate, url: '{}', variables: {{revision: sample-app-v2}}}}
duration: {{intervalSeconds: 2, iterationsPerLoop: 2}}
load: {{connections: 2, qps: 100}}
metrics:
  - name: app/memory
    provider: prometheus
    url: '{}'
    kind: value
    unit: bytes
    query: 'max(app_memory_bytes{{revision_name="{{{{variables.revision}}}}"}})'
slos:
  - {{metric: http/latency-p95, upperLimit: 1000}}
  - {{metric: app/memory, upperLimit: 100000000}}
"#,
        hello.url(),
        prometheus.url()
    );
    let path = dir.path().join("spec.yaml");
    std::fs::write(&path, spec).unwrap();
    let (code, doc, stderr) = run(dir.path(), path.to_str().unwrap().to_owned()).await;
    assert_eq!(code, 0, "{stderr}\n{doc:#}");
    assert_eq!(doc["verdict"]["pass"], true, "{doc:#}");
    assert!(
        hello.requests_served() >= 300,
        "{}",
        hello.requests_served()
    );
    let p95 = slo(&doc, "http/latency-p95", "candidate", false);
    assert_eq!(p95["verdict"], "satisfied", "{p95:#}");
    let mem = custom(&doc, "candidate", "app/memory");
    assert_eq!(mem["value"], 50e6, "{mem:#}");
    let version = &doc["versions"][0];
    assert!(
        version["metrics"]["http/request-count"].as_f64().unwrap() >= 300.0,
        "{version:#}"
    );
    let qps = version["achievedQps"].as_f64().unwrap();
    assert!(
        (80.0..=120.0).contains(&qps),
        "the window is the load's: {qps}"
    );
}
