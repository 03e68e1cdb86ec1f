//! Result documents built by the real builder validate against the committed JSON Schema
//! and stay small enough for a ConfigMap.

use std::time::Duration;

use jiff::Timestamp;
use slogate_core::measure::{ErrorKind, Measurement};
use slogate_core::result::{CommitStatus, ExperimentResult, PromotionOutcome, SloVerdict, Stage};
use slogate_core::spec::ExperimentSpec;

fn schema() -> jsonschema::Validator {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../schemas/result.schema.json"
    );
    let text = std::fs::read_to_string(path).expect("schemas/result.schema.json");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("schema is JSON");
    jsonschema::validator_for(&schema).expect("schema compiles")
}

fn assert_valid(result: &ExperimentResult) {
    let doc: serde_json::Value = serde_json::from_str(&result.to_json()).unwrap();
    let validator = schema();
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "schema errors:\n{}", errors.join("\n"));
}

const SPEC: &str = r#"
name: three-versions
namespace: staging
versions:
  - { name: stable, url: "http://127.0.0.1:8081/" }
  - { name: candidate, url: "http://127.0.0.1:8082/" }
  - { name: canary, url: "http://127.0.0.1:8083/" }
load: { connections: 16, numRequests: 200000 }
slos:
  - { metric: http/error-rate, upperLimit: 0.0 }
  - { metric: http/error-rate, upperLimit: 0.01 }
  - { metric: http/latency-mean, upperLimit: 50.0 }
  - { metric: http/latency-p95, upperLimit: 100.0 }
  - { metric: http/latency-p97.5, upperLimit: 150.0 }
  - { metric: http/latency-p99.9, upperLimit: 400.0 }
  - { metric: http/latency-stddev, upperLimit: 80.0 }
  - { metric: http/latency-max, upperLimit: 5000.0 }
  - { metric: http/request-count, lowerLimit: 1000.0, version: candidate }
promotion: { owner: o, repo: r, base: master, head: staging }
"#;

/// A long, varied run: a log-normal-ish spread over four decades, some errors of each kind.
fn measurement(n: u64, median_ms: f64, errors: u64) -> Measurement {
    let mut m = Measurement::default();
    for i in 0..n {
        // A deterministic spread: the fractional part walks evenly over (0, 1).
        let u = ((i as f64 + 0.5) * 0.618_033_988_749_895).fract();
        let ms = median_ms * (8.0 * (u - 0.5)).exp();
        m.latency.record((ms * 1000.0).max(1.0) as u64).unwrap();
    }
    m.requests = n;
    m.errors = errors;
    m.status_counts.insert(200, n - errors);
    if errors > 0 {
        m.status_counts.insert(503, errors / 2);
        m.error_kinds.insert(ErrorKind::Status, errors / 2);
        m.error_kinds.insert(ErrorKind::Reset, errors - errors / 2);
    }
    m.elapsed = Duration::from_secs(60);
    m.target_qps = Some(3333.3);
    m
}

/// Judges the evidence and records it, as a run does.
fn complete(
    result: &mut ExperimentResult,
    spec: &ExperimentSpec,
    ms: &[Measurement],
    end: Timestamp,
) {
    let judged = slogate_core::verdict::judge_experiment(spec, ms);
    result.complete(spec, ms, judged, end);
}

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

#[test]
fn completed_result_with_three_versions_is_valid_and_small() {
    let spec = ExperimentSpec::from_yaml(SPEC).unwrap();
    let measurements = [
        measurement(200_000, 8.0, 0),
        measurement(200_000, 12.0, 40),
        measurement(200_000, 60.0, 5_000),
    ];
    let mut result = ExperimentResult::running(&spec, at("2026-11-23T10:00:00Z"));
    assert_valid(&result);
    complete(
        &mut result,
        &spec,
        &measurements,
        at("2026-11-23T10:03:00.5Z"),
    );
    result.promotion = Some(PromotionOutcome::Opened {
        number: 42,
        url: "https://github.com/o/r/pull/42".into(),
        commit_status: None,
        warnings: Vec::new(),
    });
    assert_valid(&result);

    assert_eq!(result.stage, Stage::Completed);
    assert_eq!(result.progress.requests_done, 600_000);
    assert_eq!(result.versions.len(), 3);
    // 8 SLOs on every version, one on the candidate only.
    assert_eq!(result.slos.len(), 8 * 3 + 1);
    assert!(result.versions.iter().all(|v| v.histogram.len() <= 60));
    assert!(
        result.versions[0]
            .metrics
            .contains_key("http/latency-p97.5")
    );
    let verdict = result.verdict.as_ref().unwrap();
    assert!(!verdict.pass, "the canary's errors fail the experiment");
    let stable_errors = &result.slos[0];
    assert_eq!(
        (stable_errors.version.as_str(), stable_errors.verdict),
        ("stable", SloVerdict::Satisfied)
    );

    let size = result.to_json().len();
    assert!(size < 64 * 1024, "result document is {size} bytes");
    eprintln!("three-version result document: {size} bytes");
}

#[test]
fn failed_and_empty_results_are_valid() {
    let spec = ExperimentSpec::from_yaml(SPEC).unwrap();
    let mut result = ExperimentResult::running(&spec, at("2026-11-23T10:00:00Z"));
    result.set_progress(1234, Duration::from_millis(4500));
    result.record_version(&spec, &spec.versions[0], &measurement(1234, 5.0, 0));
    result.fail("Interrupted: SIGTERM", at("2026-11-23T10:00:05Z"));
    assert_valid(&result);

    // Nothing answered: no latency metric, no NaN anywhere, still valid.
    let dead = Measurement {
        requests: 10,
        errors: 10,
        ..Measurement::default()
    };
    let mut result = ExperimentResult::running(&spec, at("2026-11-23T10:00:00Z"));
    complete(
        &mut result,
        &spec,
        &[dead.clone(), dead.clone(), dead],
        at("2026-11-23T10:00:01Z"),
    );
    result.promotion = Some(PromotionOutcome::Skipped {
        reason: "the verdict failed".into(),
    });
    assert_valid(&result);
    assert!(!result.to_json().contains("null"));
    assert!(
        result
            .slos
            .iter()
            .all(|s| s.verdict != SloVerdict::Satisfied
                || s.metric == "http/latency-max"
                || s.metric == "http/request-count")
    );
}

#[test]
fn promotion_with_commit_status_and_warnings_is_valid() {
    let spec = ExperimentSpec::from_yaml(SPEC).unwrap();
    let mut result = ExperimentResult::running(&spec, at("2026-11-23T10:00:00Z"));
    complete(
        &mut result,
        &spec,
        &[
            measurement(5000, 5.0, 0),
            measurement(5000, 6.0, 0),
            measurement(5000, 7.0, 0),
        ],
        at("2026-11-23T10:00:30Z"),
    );
    result.promotion = Some(PromotionOutcome::Updated {
        number: 7,
        url: "https://github.com/o/r/pull/7".into(),
        commit_status: Some(CommitStatus {
            state: "failure".into(),
            sha: "abc1234def5678".into(),
            context: "slogate/slo".into(),
            error: Some("setting the commit status failed: GitHub answered 403".into()),
        }),
        warnings: vec!["setting the commit status failed: GitHub answered 403".into()],
    });
    assert_valid(&result);

    let doc: serde_json::Value = serde_json::from_str(&result.to_json()).unwrap();
    let promotion = &doc["promotion"];
    assert_eq!(promotion["outcome"], "updated");
    assert_eq!(promotion["commitStatus"]["state"], "failure");
    assert_eq!(promotion["commitStatus"]["sha"], "abc1234def5678");
    assert_eq!(promotion["commitStatus"]["context"], "slogate/slo");
    assert_eq!(promotion["warnings"].as_array().map(Vec::len), Some(1));
    let back: ExperimentResult = serde_json::from_str(&result.to_json()).unwrap();
    assert_eq!(back, result);

    // The schema still closes the commit status: an unknown state or field is rejected.
    let mut bad = doc.clone();
    bad["promotion"]["commitStatus"]["state"] = "green".into();
    assert!(!schema().is_valid(&bad));
    let mut bad = doc;
    bad["promotion"]["commitStatus"]["colour"] = "red".into();
    assert!(!schema().is_valid(&bad));
}

#[test]
fn a_nan_would_be_rejected() {
    // serde_json writes a non-finite number as null; the schema must catch that.
    let spec = ExperimentSpec::from_yaml(SPEC).unwrap();
    let result = ExperimentResult::running(&spec, at("2026-11-23T10:00:00Z"));
    let mut doc: serde_json::Value = serde_json::from_str(&result.to_json()).unwrap();
    doc["progress"]["elapsedSeconds"] = serde_json::Value::Null;
    assert!(!schema().is_valid(&doc));
}

#[test]
fn documents_round_trip() {
    let spec = ExperimentSpec::from_yaml(SPEC).unwrap();
    let mut result = ExperimentResult::running(&spec, at("2026-11-23T10:00:00Z"));
    complete(
        &mut result,
        &spec,
        &[
            measurement(5000, 5.0, 0),
            measurement(5000, 6.0, 1),
            measurement(5000, 7.0, 2),
        ],
        at("2026-11-23T10:00:30Z"),
    );
    let back: ExperimentResult = serde_json::from_str(&result.to_json()).unwrap();
    assert_eq!(back, result);
}

#[test]
fn finishing_has_a_verdict_and_no_end_until_promotion_ends() {
    let spec = ExperimentSpec::from_yaml(SPEC).unwrap();
    let mut result = ExperimentResult::running(&spec, at("2026-11-23T10:00:00Z"));
    result.touch(at("2026-11-23T10:00:00Z"), Duration::from_secs(10));
    assert_valid(&result);
    let m = || measurement(5000, 5.0, 0);
    complete(
        &mut result,
        &spec,
        &[m(), m(), m()],
        at("2026-11-23T10:00:30Z"),
    );
    result.begin_finishing();
    assert_eq!(result.stage, Stage::Finishing);
    assert!(!result.is_done(), "promotion is still under way");
    assert_eq!(result.end_time, None);
    assert!(result.verdict.is_some());
    assert_valid(&result);
    // A Finishing document claiming an end, or without a verdict, is not valid.
    let doc: serde_json::Value = serde_json::from_str(&result.to_json()).unwrap();
    let mut ended = doc.clone();
    ended["endTime"] = "2026-11-23T10:00:31Z".into();
    assert!(!schema().is_valid(&ended));
    let mut unjudged = doc;
    unjudged.as_object_mut().unwrap().remove("verdict");
    assert!(!schema().is_valid(&unjudged));

    result.promotion = Some(PromotionOutcome::Interrupted {
        reason: "Interrupted: SIGTERM".into(),
    });
    result.end_finishing(at("2026-11-23T10:00:40Z"));
    assert_eq!(result.stage, Stage::Completed);
    assert_eq!(result.end_time, Some(at("2026-11-23T10:00:40Z")));
    assert_valid(&result);
    let back: ExperimentResult = serde_json::from_str(&result.to_json()).unwrap();
    assert_eq!(back, result);
}

#[test]
fn a_run_that_stopped_publishing_is_stale_after_a_few_intervals() {
    let spec = ExperimentSpec::from_yaml(SPEC).unwrap();
    let mut result = ExperimentResult::running(&spec, at("2026-11-23T10:00:00Z"));
    // No heartbeat (a document of an older version): staleness cannot be told.
    assert_eq!(result.staleness(at("2026-11-24T10:00:00Z")), None);
    result.touch(at("2026-11-23T10:00:00Z"), Duration::from_secs(10));
    assert_eq!(result.stale_after(), Some(Duration::from_secs(35)));
    assert_eq!(result.staleness(at("2026-11-23T10:00:35Z")), None);
    assert_eq!(
        result.staleness(at("2026-11-23T10:00:36Z")),
        Some(Duration::from_secs(36))
    );
    result.stage = Stage::Finishing;
    assert!(result.staleness(at("2026-11-23T10:05:00Z")).is_some());
    // A document written by a clock ahead of the reader's is not stale.
    assert_eq!(result.staleness(at("2026-11-23T09:00:00Z")), None);
    // A done run never is.
    result.fail("Interrupted: SIGTERM", at("2026-11-23T10:00:01Z"));
    assert_eq!(result.staleness(at("2026-11-24T10:00:00Z")), None);
}

#[test]
fn saturated_open_model_result_keeps_service_time_resends_and_is_valid() {
    let spec = ExperimentSpec::from_yaml(SPEC).unwrap();
    let mut m = measurement(5000, 200.0, 30);
    // The service answered in about 30 ms; the corrected latency above holds the queue.
    let mut service = slogate_core::measure::new_latency_histogram();
    for i in 0..5000u64 {
        service.record(30_000 + i % 1000).unwrap();
    }
    m.service_time = Some(service);
    m.error_kinds.insert(ErrorKind::ClosedWithoutResponse, 30);
    m.resends = 3;
    m.peak_connections = 8;
    m.saturation = Some(slogate_core::measure::Saturation {
        connections_needed: 15,
        max_connections: 8,
        late_requests: 4000,
    });
    let mut result = ExperimentResult::running(&spec, at("2026-11-23T10:00:00Z"));
    complete(
        &mut result,
        &spec,
        &[m.clone(), m.clone(), m],
        at("2026-11-23T10:00:30Z"),
    );
    assert_valid(&result);
    let v = &result.versions[0];
    let service = v.service_time.as_ref().unwrap();
    assert!((service.metrics["http/latency-mean"] - 30.5).abs() < 0.1);
    assert!(v.metrics["http/latency-mean"] > 100.0);
    assert!(!service.metrics.contains_key("http/error-rate"));
    assert_eq!(v.resends, 3);
    assert!(
        v.saturation
            .as_ref()
            .unwrap()
            .reason
            .contains("15 connections needed")
    );
    // Latency SLOs are inconclusive, never violated, when the generator was the bottleneck.
    for slo in result
        .slos
        .iter()
        .filter(|s| s.metric.starts_with("http/latency-"))
    {
        assert_eq!(slo.verdict, SloVerdict::Inconclusive, "{}", slo.reason);
    }
    let back: ExperimentResult = serde_json::from_str(&result.to_json()).unwrap();
    assert_eq!(back, result);
}

const CANARY: &str = r#"
name: canary
strategy: { testingPattern: Canary }
versions:
  - { name: current, role: baseline, url: "http://127.0.0.1:8081/", variables: { promote: baseline } }
  - { name: candidate, url: "http://127.0.0.1:8082/", variables: { promote: candidate } }
load: { connections: 8, numRequests: 20000 }
slos:
  - { metric: http/latency-p95, upperLimit: 1000.0 }
  - { metric: http/latency-p95, versus: baseline, maxIncrease: 10% }
  - { metric: http/latency-mean, versus: baseline, maxIncrease: 10% }
  - { metric: http/latency-p50, versus: baseline, maxIncrease: 5 }
  - { metric: http/error-rate, versus: baseline, maxIncrease: 0.01 }
"#;

fn judged_canary(candidate: Measurement, baseline: Measurement) -> ExperimentResult {
    let spec = ExperimentSpec::from_yaml(CANARY).unwrap();
    let mut result = ExperimentResult::running(&spec, at("2026-11-23T10:00:00Z"));
    complete(
        &mut result,
        &spec,
        &[baseline, candidate],
        at("2026-11-23T10:01:00Z"),
    );
    assert_valid(&result);
    result
}

#[test]
fn canary_with_equal_versions_names_the_candidate_winner_in_a_valid_document() {
    let result = judged_canary(measurement(20_000, 10.0, 0), measurement(20_000, 10.0, 0));
    let winner = result.winner.as_ref().unwrap();
    assert!(winner.found, "{}", winner.reason);
    assert_eq!(
        winner.name.as_deref(),
        Some("candidate"),
        "{}",
        winner.reason
    );
    assert_eq!(winner.variables["promote"], "candidate");
    assert!(result.verdict.as_ref().unwrap().pass);
    let relative: Vec<_> = result
        .slos
        .iter()
        .filter(|s| s.comparison.is_some())
        .collect();
    assert_eq!(relative.len(), 4);
    assert!(
        relative
            .iter()
            .all(|s| s.verdict == SloVerdict::Satisfied && s.version == "candidate"),
        "{relative:#?}"
    );
    let doc: serde_json::Value = serde_json::from_str(&result.to_json()).unwrap();
    assert_eq!(doc["apiVersion"], "slogate.dev/v1alpha2");
    assert_eq!(doc["testingPattern"], "Canary");
    assert_eq!(doc["versions"][0]["role"], "baseline");
}

#[test]
fn canary_with_a_slower_candidate_names_the_baseline_winner() {
    let result = judged_canary(measurement(20_000, 13.0, 0), measurement(20_000, 10.0, 0));
    let winner = result.winner.as_ref().unwrap();
    assert_eq!(winner.name.as_deref(), Some("current"), "{}", winner.reason);
    assert_eq!(winner.variables["promote"], "baseline");
    assert!(
        winner
            .reason
            .contains("violates http/latency-p95 versus current"),
        "{}",
        winner.reason
    );
    assert!(!result.verdict.as_ref().unwrap().pass);
    let p95 = result
        .slos
        .iter()
        .find(|s| s.comparison.is_some() && s.metric == "http/latency-p95")
        .unwrap();
    assert_eq!(p95.verdict, SloVerdict::Violated, "{}", p95.reason);
    assert!(
        (p95.observed.unwrap() - 1.3).abs() < 0.02,
        "{:?}",
        p95.observed
    );
    // The difference of medians (3 ms) is below the 5 ms allowed: negative ends are fine.
    let p50 = result
        .slos
        .iter()
        .find(|s| s.metric == "http/latency-p50")
        .unwrap();
    assert_eq!(p50.verdict, SloVerdict::Satisfied, "{}", p50.reason);
}

#[test]
fn canary_on_thin_evidence_finds_no_winner_and_says_how_many_requests_would_decide() {
    let result = judged_canary(measurement(40, 10.5, 0), measurement(40, 10.0, 0));
    let winner = result.winner.as_ref().unwrap();
    assert!(!winner.found, "{}", winner.reason);
    assert!(winner.name.is_none());
    assert!(
        winner.reason.starts_with("No winner found"),
        "{}",
        winner.reason
    );
    assert!(
        winner.reason.contains("requests per version would decide"),
        "{}",
        winner.reason
    );
    assert!(!result.verdict.as_ref().unwrap().pass);
}

#[test]
fn a_v1alpha1_document_still_reads() {
    let spec = ExperimentSpec::from_yaml(SPEC).unwrap();
    let mut result = ExperimentResult::running(&spec, at("2026-11-23T10:00:00Z"));
    complete(
        &mut result,
        &spec,
        &[
            measurement(1000, 5.0, 0),
            measurement(1000, 5.0, 0),
            measurement(1000, 5.0, 0),
        ],
        at("2026-11-23T10:00:10Z"),
    );
    let mut doc: serde_json::Value = serde_json::from_str(&result.to_json()).unwrap();
    doc["apiVersion"] = "slogate.dev/v1alpha1".into();
    for v in doc["versions"].as_array_mut().unwrap() {
        v.as_object_mut().unwrap().remove("role");
    }
    doc["progress"].as_object_mut().unwrap().remove("versions");
    let old_schema: serde_json::Value =
        serde_json::from_str(include_str!("../../../schemas/result-v1alpha1.schema.json")).unwrap();
    assert!(
        jsonschema::validator_for(&old_schema)
            .unwrap()
            .is_valid(&doc),
        "a v1alpha1 document"
    );
    let read = ExperimentResult::from_json(&doc.to_string()).unwrap();
    assert_eq!(read.api_version, "slogate.dev/v1alpha1");
    assert!(read.winner.is_none() && read.versions[0].role.is_none());
}

/// Sixteen load pods, each with its own wide spread of latencies on every version, merged
/// exactly as index 0 merges the partials: the document holds a row per pod and stays under
/// 100 KB (a ConfigMap holds 1 MiB).
#[test]
fn result_of_sixteen_load_pods_is_valid_and_under_100_kb() {
    use std::collections::BTreeMap;

    use slogate_core::parallel::{PodReport, merge_reports};

    let text = SPEC.replace("connections: 16,", "connections: 48,");
    let spec = ExperimentSpec::from_yaml(&format!("{text}parallelism: {{pods: 16}}\n")).unwrap();
    let names: Vec<String> = spec.versions.iter().map(|v| v.name.clone()).collect();
    let reports: BTreeMap<u32, PodReport> = (0..16u32)
        .map(|i| {
            let measured: Vec<(String, Measurement)> = names
                .iter()
                .enumerate()
                .map(|(v, name)| {
                    let median = 4.0 + f64::from(i) * 0.7 + 9.0 * v as f64;
                    (name.clone(), measurement(12_500, median, u64::from(i) * 3))
                })
                .collect();
            let report = PodReport::ready(i, format!("exp-1-{i}-x7k2p"), None).done(&measured);
            // Through the JSON of the partial ConfigMap, as index 0 reads it.
            let json = serde_json::to_string(&report).unwrap();
            (i, serde_json::from_str(&json).unwrap())
        })
        .collect();
    let merged = merge_reports(16, &names, &reports, &BTreeMap::new()).unwrap();
    assert_eq!(merged.reported(), 16);
    let ms: Vec<Measurement> = merged.measurements.iter().map(|(_, m)| m.clone()).collect();
    assert_eq!(ms[0].requests, 16 * 12_500);
    let mut result = ExperimentResult::running(&spec, at("2026-11-23T10:00:00Z"));
    complete(&mut result, &spec, &ms, at("2026-11-23T10:01:00Z"));
    result.load_pods = merged.pods;
    assert_valid(&result);
    assert_eq!(result.progress.requests_done, 3 * 16 * 12_500);
    let size = result.to_json().len();
    let partial = serde_json::to_string(&reports[&0]).unwrap().len();
    eprintln!("16-pod result document: {size} bytes; one partial of 3 versions: {partial} bytes");
    assert!(size < 100 * 1024, "result document is {size} bytes");
}
