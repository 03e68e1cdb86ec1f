//! Reading and validating experiment specs the way a user writes them.

use std::time::Duration;

use slogate_core::spec::{ExperimentSpec, InconclusivePolicy, PromotionSpec, SpecError};

fn sample() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/experiment.yaml");
    std::fs::read_to_string(path).expect("samples/experiment.yaml")
}

fn problems(text: &str) -> Vec<String> {
    match ExperimentSpec::from_yaml(text) {
        Ok(_) => panic!("spec was accepted:\n{text}"),
        Err(err) => err.problems().iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn the_sample_spec_is_valid() {
    let spec = ExperimentSpec::from_yaml(&sample()).unwrap();
    assert_eq!(spec.name, "hello-slo");
    assert_eq!(spec.versions[0].name, "candidate");
    assert_eq!(spec.load.qps, Some(200.0));
    assert_eq!(spec.load.duration, Some(Duration::from_secs(30)));
    assert_eq!(spec.slos.len(), 3);
    assert_eq!(spec.slos[0].upper_limit, Some(0.0));
    assert_eq!(spec.inconclusive, InconclusivePolicy::Fail);
    assert_eq!(spec.promotion.unwrap().base, "master");
}

#[test]
fn minimal_spec_gets_defaults() {
    let spec = ExperimentSpec::from_yaml(
        "name: tiny\nversions:\n  - name: v1\n    url: http://127.0.0.1:8080/\n",
    )
    .unwrap();
    assert_eq!(spec.confidence, 0.95);
    assert_eq!(spec.load.connections, 8);
    assert_eq!(spec.planned_requests(), Some(100));
    assert!(spec.slos.is_empty());
}

#[test]
fn json_is_accepted_too() {
    let spec = ExperimentSpec::from_yaml(
        r#"{"name": "j", "versions": [{"name": "v1", "url": "https://example.test"}],
            "slos": [{"metric": "http/latency-p99.9", "upperLimit": 250}]}"#,
    )
    .unwrap();
    assert_eq!(spec.slos[0].upper_limit, Some(250.0));
}

#[test]
fn every_problem_is_reported_at_once_with_its_path() {
    let found = problems(
        r#"
name: Bad_Name
versions:
  - name: a
    url: ftp://example.test/
  - name: a
    url: not a url
load:
  connections: 0
  qps: -5
  numRequests: 10
  duration: 10s
  warmup: 1s
  warmupRequests: 3
  body: "{}"
  bodyFile: body.json
  errorRanges:
    - { from: 600, to: 500 }
slos:
  - metric: http/latency-p95
  - metric: http/latency-p101
    upperLimit: 10
  - metric: http/error-rate
    upperLimit: 5
    version: b
  - metric: http/latency-mean
    upperLimit: -1
confidence: 1.5
promotion:
  owner: ""
  repo: r
  base: main
  head: main
"#,
    );
    let text = found.join("\n");
    for expected in [
        "name: \"Bad_Name\" is not a valid Kubernetes name",
        "versions[0].url: \"ftp://example.test/\": the scheme must be http or https",
        "versions[1].name: \"a\" is used by an earlier version",
        "versions[1].url: \"not a url\" is not a URL",
        "load.connections: must be at least 1",
        "load.qps: must be a number greater than 0, not -5",
        "load.duration: numRequests and duration exclude each other",
        "load.warmup: warmupRequests and warmup exclude each other",
        "load.bodyFile: body and bodyFile exclude each other",
        "load.errorRanges[0].from: 600 is not an HTTP status",
        "load.errorRanges[0]: from (600) is greater than to (500)",
        "slos[0]: give upperLimit, lowerLimit or both",
        "slos[1].metric: \"http/latency-p101\": the percentile must be",
        "slos[2].upperLimit: 5 is above 1: http/error-rate is a fraction",
        "slos[2].version: no version is named \"b\" (versions: a, a)",
        "slos[3].upperLimit: -1 is negative",
        "confidence: must be between 0 and 1",
        "promotion.owner: must not be empty",
        "promotion.head: \"main\" is also the base branch",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert_eq!(found.len(), 19, "{text}");
}

#[test]
fn unknown_field_is_rejected_with_its_path() {
    let found =
        problems("name: x\nversions:\n  - name: v1\n    url: http://127.0.0.1/\n    weight: 3\n");
    assert_eq!(found.len(), 1);
    assert!(
        found[0].starts_with("versions[0].weight: unknown field `weight`"),
        "{found:?}"
    );

    let found = problems("name: x\nversions: []\nload:\n  qps: fast\n");
    assert!(found[0].starts_with("load.qps: invalid type"), "{found:?}");

    let found = problems("name: x\nversions: []\nload:\n  duration: soon\n");
    assert!(found[0].starts_with("load.duration:"), "{found:?}");
}

#[test]
fn yaml_syntax_error_is_its_own_kind() {
    let err = ExperimentSpec::from_yaml("name: [unclosed\n").unwrap_err();
    assert!(matches!(err, SpecError::Yaml(_)), "{err}");
    assert!(err.to_string().starts_with("the spec is not valid YAML"));
}

#[test]
fn error_message_lists_every_problem() {
    let err = ExperimentSpec::from_yaml("name: x\nversions: []\nconfidence: 0\n").unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("invalid experiment spec (2 problems):"),
        "{text}"
    );
    assert!(
        text.contains("\n  - versions: at least one version is required"),
        "{text}"
    );
    assert!(
        text.contains("\n  - confidence: must be between 0 and 1"),
        "{text}"
    );
}

#[test]
fn promotion_constructor_has_the_defaults_of_a_spec_file() {
    let spec = ExperimentSpec::from_yaml(
        "name: e\nversions: [{name: v, url: 'http://127.0.0.1:1/'}]\n\
         promotion: {owner: me, repo: app, base: master, head: staging}\n",
    )
    .unwrap();
    assert_eq!(
        spec.promotion,
        Some(PromotionSpec::new("me", "app", "master", "staging"))
    );
}
