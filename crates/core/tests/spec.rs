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
        "slos[2].version: no version is named \"b\" (versions: \"a\", \"a\")",
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
        found[0].starts_with("versions[0].weight: unknown field; the fields here are name, url"),
        "{found:?}"
    );

    let found = problems("name: x\nversions: []\nload:\n  qps: fast\n");
    assert_eq!(found[0], "load.qps: \"fast\" is not a number", "{found:?}");

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

#[test]
fn a_spec_with_six_problems_reports_all_six_type_errors_included() {
    let found = problems(
        r#"
name: six
versions:
  - name: v1
    url: http://127.0.0.1:8080/
    weight: 3
  - name: v2
load:
  connections: 1.5
  qps: fast
  timeout: banana
inconclusive: maybe
slos:
  - metric: http/latency-p95
    upperLimit: lots
"#,
    );
    let text = found.join("\n");
    for expected in [
        "versions[0].weight: unknown field; the fields here are name, url, headers",
        "versions[1].url: is required",
        "load.connections: 1.5 is not a whole number from 0 to 4294967295",
        "load.qps: \"fast\" is not a number",
        "load.timeout: \"banana\" is not a duration; write it like 30s, 2m or 1h30m",
        "inconclusive: \"maybe\" is not a choice here; choose fail or pass",
        "slos[0].upperLimit: \"lots\" is not a number",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert_eq!(found.len(), 7, "{text}");
}

#[test]
fn type_errors_and_rule_violations_are_reported_together() {
    let found = problems(
        "name: Bad_Name\nversions: [{name: v, url: 'ftp://x/'}]\n\
         load: {connections: many, numRequests: 0}\nconfidence: 7\n",
    );
    let text = found.join("\n");
    for expected in [
        "name: \"Bad_Name\" is not a valid Kubernetes name",
        "versions[0].url: \"ftp://x/\": the scheme must be http or https",
        "load.connections: \"many\" is not a whole number",
        "load.numRequests: must be at least 1",
        "confidence: must be between 0 and 1",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    // The stand-in put in place of `many` is not reported as a rule violation of its own.
    assert_eq!(found.len(), 5, "{text}");
}

#[test]
fn a_missing_or_misshapen_part_is_one_problem_not_a_cascade() {
    let mut found = problems("versions: [just-a-string]\nload: 5\n");
    found.sort();
    assert_eq!(
        found,
        [
            "load: 5 is not a mapping of fields (key: value)",
            "name: is required",
            "versions[0]: \"just-a-string\" is not a mapping of fields (key: value)",
        ],
        "{found:?}"
    );
    let found = problems("");
    assert_eq!(
        found,
        ["the spec is empty: it needs at least name and versions"]
    );
    let found = problems("[1, 2]");
    assert_eq!(
        found,
        ["the spec must be a mapping of fields (name: ..., versions: ...)"]
    );
}

#[test]
fn a_number_where_a_name_belongs_says_to_quote_it() {
    let found = problems(
        "name: x\nversions: [{name: v, url: 'http://127.0.0.1/'}]\n\
         promotion: {owner: me, repo: app, base: main, head: 2024}\n",
    );
    assert_eq!(
        found,
        ["promotion.head: 2024 is not a string; write it in quotes (\"2024\")"]
    );
}

#[test]
fn a_huge_value_is_quoted_by_a_short_prefix() {
    // 4 MB values (the report had a 50 MB name and got 52 MB of stderr back).
    let huge = "A".repeat(4 << 20);
    let text = format!(
        "name: {huge}\nnamespace: {huge}\nversions: [{{name: v, url: 'http://{huge}:x/'}}]\n\
         slos: [{{metric: {huge}, upperLimit: 1}}]\nload: {{method: '{huge} ', qps: {huge}}}\n"
    );
    let err = ExperimentSpec::from_yaml(&text).unwrap_err();
    let message = err.to_string();
    assert_eq!(
        err.problems().len(),
        6,
        "{}",
        &message[..message.len().min(2000)]
    );
    assert!(message.len() < 2000, "{} bytes of message", message.len());
    assert!(
        message.contains(&format!(
            "name: \"{}…\" ({} bytes)",
            "A".repeat(64),
            4 << 20
        )),
        "{message}"
    );
    let load_qps = err
        .problems()
        .iter()
        .find(|p| p.path == "load.qps")
        .unwrap();
    assert!(load_qps.reason.ends_with("is not a number"), "{load_qps}");
}

#[test]
fn a_huge_unknown_key_is_cut_in_the_path_too() {
    let key = "k".repeat(100_000);
    let err = ExperimentSpec::from_yaml(&format!(
        "name: x\nversions: [{{name: v, url: 'http://127.0.0.1/'}}]\n? {key}\n: 1\n"
    ))
    .unwrap_err();
    let message = err.to_string();
    assert!(message.len() < 1000, "{} bytes of message", message.len());
    assert!(message.contains("unknown field"), "{message}");
}

#[test]
fn duration_banana_says_what_a_duration_looks_like_in_every_duration_field() {
    for field in ["duration", "warmup", "timeout"] {
        let found = problems(&format!(
            "name: x\nversions: [{{name: v, url: 'http://127.0.0.1/'}}]\nload: {{{field}: banana}}\n"
        ));
        assert_eq!(
            found,
            [format!(
                "load.{field}: \"banana\" is not a duration; write it like 30s, 2m or 1h30m"
            )],
            "{field}"
        );
        let found = problems(&format!(
            "name: x\nversions: [{{name: v, url: 'http://127.0.0.1/'}}]\nload: {{{field}: 30}}\n"
        ));
        assert_eq!(
            found,
            [format!(
                "load.{field}: 30 is not a duration like 30s, 2m or 1h30m"
            )],
            "{field}"
        );
    }
    let err = slogate_core::spec::parse_duration("expected number at 0").unwrap_err();
    assert_eq!(
        err.to_string(),
        "\"expected number at 0\" is not a duration; write it like 30s, 2m or 1h30m"
    );
    assert_eq!(
        slogate_core::spec::parse_duration("1h30m").unwrap(),
        Duration::from_secs(5400)
    );
}

const CANARY: &str = r#"
name: canary
strategy: {testingPattern: Canary}
versions:
  - name: current
    role: baseline
    url: http://127.0.0.1:8080/
    variables: {promote: baseline}
  - name: candidate
    url: http://127.0.0.1:8081/
    variables: {promote: candidate}
slos:
  - {metric: http/latency-p95, upperLimit: 100}
  - {metric: http/latency-p95, versus: baseline, maxIncrease: 10%}
  - {metric: http/latency-mean, versus: baseline, maxIncrease: 5}
  - {metric: http/error-rate, versus: baseline, maxIncrease: 0.01}
"#;

#[test]
fn a_canary_spec_reads_roles_variables_and_relative_slos() {
    use slogate_core::spec::{Change, Role, TestingPattern};
    let spec = ExperimentSpec::from_yaml(CANARY).unwrap();
    assert_eq!(spec.testing_pattern(), TestingPattern::Canary);
    assert_eq!(spec.versions[0].role, Role::Baseline);
    assert_eq!(spec.versions[1].role, Role::Candidate);
    assert_eq!(spec.versions[1].variables["promote"], "candidate");
    assert_eq!(spec.baseline().unwrap().name, "current");
    assert_eq!(spec.slos[1].max_increase, Some(Change::Percent(10.0)));
    assert_eq!(spec.slos[2].max_increase, Some(Change::Amount(5.0)));
    let relative: Vec<&str> = spec
        .slo_versions(&spec.slos[1])
        .map(|v| v.name.as_str())
        .collect();
    assert_eq!(
        relative,
        ["candidate"],
        "the baseline is not compared with itself"
    );
    assert_eq!(spec.slo_versions(&spec.slos[0]).count(), 2);
}

#[test]
fn every_bad_canary_field_is_named_at_once() {
    let bad = r#"
name: canary
strategy: {testingPattern: Canary}
versions:
  - {name: a, role: baseline, url: http://127.0.0.1:8080/}
  - {name: b, role: baseline, url: http://127.0.0.1:8081/, variables: {"a b": x}}
slos:
  - {metric: http/latency-stddev, versus: baseline, maxIncrease: 10%}
  - {metric: http/error-rate, versus: baseline, maxIncrease: 5%}
  - {metric: http/latency-p95, versus: current, upperLimit: 3}
  - {metric: http/latency-p95, versus: baseline, maxIncrease: -1, version: a}
  - {metric: http/latency-p95, versus: baseline, maxIncrease: "ten percent"}
"#;
    let p = problems(bad);
    let has = |path: &str, words: &str| {
        assert!(
            p.iter().any(|x| x.starts_with(path) && x.contains(words)),
            "no {path} … {words} in {p:#?}"
        )
    };
    has("versions[1].role", "versions[0] is the baseline already");
    has("versions[1].variables", "is not a variable name");
    has("strategy.testingPattern", "exactly one candidate, not 0");
    has("slos[0].metric", "cannot be compared with the baseline");
    has("slos[1].maxIncrease", "give the increase as a fraction");
    has("slos[2].versus", "write versus: baseline");
    has("slos[2].upperLimit", "a relative SLO takes maxIncrease");
    has("slos[2]", "give maxIncrease, maxDecrease or both");
    has("slos[3].maxIncrease", "at least 0");
    has("slos[3].version", "is the baseline");
    has(
        "slos[4].maxIncrease",
        "is not a number in the metric's unit",
    );
}

#[test]
fn a_canary_without_a_baseline_is_refused() {
    let p = problems(
        "name: c\nstrategy: {testingPattern: Canary}\nversions: [{name: v, url: 'http://a/'}]\nslos: [{metric: http/latency-mean, versus: baseline, maxIncrease: 1}]\n",
    );
    assert!(
        p.iter()
            .any(|x| x.starts_with("strategy.testingPattern: Canary compares")),
        "{p:#?}"
    );
    assert!(
        p.iter()
            .any(|x| x.starts_with("slos[0].versus: no version has role: baseline")),
        "{p:#?}"
    );
    let p = problems(
        "name: c\nstrategy: {testingPattern: Sideways}\nversions: [{name: v, url: 'http://a/'}]\n",
    );
    assert!(
        p.iter().any(|x| x.starts_with("strategy.testingPattern")),
        "{p:#?}"
    );
}

#[test]
fn the_sample_canary_spec_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/canary.yaml");
    let spec = ExperimentSpec::from_yaml(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(spec.baseline().unwrap().name, "current");
    assert_eq!(spec.slos.iter().filter(|s| s.is_relative()).count(), 3);
}

#[test]
fn a_grpc_version_is_read_with_its_call_and_loads_over_http2() {
    let spec = ExperimentSpec::from_yaml(
        r#"
name: greeter
versions:
  - name: candidate
    url: grpc://greeter.staging:50051
    grpc:
      proto: protos/greeter.proto
      importPaths: [protos]
      call: slogate.hello.v1.Greeter/SayHello
      data: {name: slogate, repeat: 2}
      metadata: {x-team: checkout}
slos:
  - {metric: grpc/error-rate, upperLimit: 0.01}
  - {metric: grpc/latency-p99.9, upperLimit: 50}
"#,
    )
    .unwrap();
    let v = &spec.versions[0];
    assert_eq!(v.protocol(), slogate_core::metrics::Protocol::Grpc);
    let grpc = v.grpc.as_ref().unwrap();
    assert_eq!(
        grpc.service_and_method(),
        Some(("slogate.hello.v1.Greeter", "SayHello"))
    );
    assert_eq!(grpc.data["repeat"], 2);
    assert_eq!(grpc.metadata["x-team"], "checkout");
    // gRPC runs on HTTP/2 whatever load.http2 says, so streams > 1 are allowed.
    assert!(spec.load.settings().unwrap().http2());
}

#[test]
fn every_bad_grpc_field_is_named_at_once() {
    let found = problems(
        r#"
name: greeter
versions:
  - name: a
    url: http://greeter:50051/
    grpc: {proto: "", call: "Greeter", data: [1], metadata: {Bad Key: x, grpc-timeout: 1S}}
  - name: b
    url: grpc://greeter
    grpc: {proto: g.proto, call: pkg.Svc/Method}
  - name: c
    url: http://plain/
slos:
  - {metric: http/error-rate, upperLimit: 0.01}
"#,
    );
    let joined = found.join("\n");
    for expected in [
        "versions[0].url",
        "versions[0].grpc.proto",
        "versions[0].grpc.call",
        "versions[0].grpc.data",
        "versions[0].grpc.metadata.Bad Key",
        "versions[0].grpc.metadata.grpc-timeout",
        "versions[1].url",
        "versions[2].grpc",
        "slos[0].metric",
    ] {
        assert!(
            found.iter().any(|p| p.starts_with(expected)),
            "{expected} missing from:\n{joined}"
        );
    }
    assert!(joined.contains("has no port"), "{joined}");
    assert!(joined.contains("write grpc/error-rate"), "{joined}");
    assert!(joined.contains("same protocol"), "{joined}");
}

#[test]
fn the_grpc_sample_spec_is_valid() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../samples/grpc-canary.yaml"
    );
    let spec = ExperimentSpec::from_yaml(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(spec.versions.len(), 2);
    assert!(spec.versions.iter().all(|v| v.grpc.is_some()));
    assert_eq!(spec.load.settings().unwrap().streams(), 4);
}

#[test]
fn parallelism_is_checked_with_every_bad_field_named() {
    let base = "name: x\nversions: [{name: v, url: 'http://127.0.0.1/'}, {name: w, url: 'http://127.0.0.1/'}]\n";
    assert_eq!(
        paths_of(&format!("{base}parallelism: {{pods: 65}}")),
        ["parallelism.pods"]
    );
    assert_eq!(
        paths_of(&format!(
            "{base}parallelism: {{pods: 0, reportTimeout: 0s}}"
        )),
        ["parallelism.pods"]
    );
    assert_eq!(
        paths_of(&format!(
            "{base}parallelism: {{pods: 5, reportTimeout: 0s}}\nload: {{connections: 8, numRequests: 4}}"
        )),
        [
            "parallelism.reportTimeout",
            "load.connections",
            "load.numRequests"
        ]
    );
    assert_eq!(
        paths_of(&format!(
            "{base}parallelism: {{pods: 2}}\nduration: {{intervalSeconds: 1, iterationsPerLoop: 2}}"
        )),
        ["parallelism.pods"]
    );
    assert_eq!(
        paths_of(&format!("{base}parallelism: {{pods: 2, onMissing: maybe}}")),
        ["parallelism.onMissing"]
    );
    let spec = ExperimentSpec::from_yaml(&format!(
        "{base}parallelism: {{pods: 4, onMissing: judgeWhatArrived, reportTimeout: 30s}}"
    ))
    .unwrap();
    let p = spec.parallelism.unwrap();
    assert_eq!(spec.load_pods(), 4);
    assert_eq!(
        p.on_missing,
        slogate_core::spec::OnMissing::JudgeWhatArrived
    );
    assert_eq!(p.report_timeout, std::time::Duration::from_secs(30));
}

fn paths_of(text: &str) -> Vec<String> {
    match ExperimentSpec::from_yaml(text) {
        Ok(_) => panic!("spec was accepted:\n{text}"),
        Err(err) => err.problems().iter().map(|p| p.path.clone()).collect(),
    }
}

#[test]
fn the_prometheus_sample_spec_is_valid_and_loads_nothing() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../samples/prometheus-canary.yaml"
    );
    let spec = ExperimentSpec::from_yaml(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(spec.metrics.len(), 3);
    assert_eq!(spec.loaded_versions().count(), 0);
    assert_eq!(spec.planned_requests(), None);
    assert!(spec.metric("iter8-knative/error-rate").is_some());
}

#[test]
fn metric_specs_name_every_bad_field() {
    let found = problems(
        r#"name: x
versions:
  - {name: v1, role: baseline, variables: {revision: a}}
  - {name: v2}
metrics:
  - {name: http/error-rate, provider: prometheus, url: 'http://p', kind: value, query: up}
  - {name: a/q, provider: prometheus, url: 'http://p', kind: histogramQuantile, query: up, quantile: 1.5}
  - {name: a/v, url: 'http://p', kind: value, query: 'up{r="{{variables.revision}}"}', numerator: up}
  - {name: a/r, provider: prometheus, url: 'http://p', kind: ratio, numerator: up, denominator: up, consecutiveErrorLimit: 0}
slos:
  - {metric: http/latency-p95, upperLimit: 100}
  - {metric: a/r, upperLimit: 2}
  - {metric: a/q, versus: baseline, maxIncrease: 10%, maxDecrease: 5}
"#,
    );
    let text = found.join("\n");
    for expected in [
        "metrics[0].name: \"http/error-rate\" is a built-in metric",
        "metrics[1].quantile: must be between 0 and 1",
        "metrics[2].provider: is required",
        "metrics[2].numerator: is not used by kind: value",
        "metrics[2].query: for version \"v2\"",
        "metrics[3].consecutiveErrorLimit: must be at least 1",
        "slos[0].metric: \"http/latency-p95\" is measured by slogate's own load",
        "slos[1].upperLimit: \"a/r\" is a ratio",
        "slos[2].maxDecrease:",
        "metrics: metrics are queried over the experiment loop's window",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}
