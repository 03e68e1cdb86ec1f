//! The slo-pr chart through the real `helm`: what it renders for the tutorial's command, and
//! which values it refuses.

use std::path::PathBuf;
use std::process::Command;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use slogate_core::spec::ExperimentSpec;
use slogate_k8s::testing::{TUTORIAL_SETS, tool};

fn chart() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../charts/slo-pr")
}

fn samples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../samples/values")
}

/// Runs helm; Ok(stdout) or Err(stderr).
fn helm(args: &[&str]) -> Result<String, String> {
    let helm = tool("helm").unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(helm).args(args).output().expect("helm runs");
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap())
    } else {
        Err(String::from_utf8(out.stderr).unwrap())
    }
}

/// The tutorial's command, as `helm template`.
fn seed() -> Vec<&'static str> {
    let mut args = vec!["--set", "URL=http://hello.staging.svc.cluster.local:8080"];
    args.extend_from_slice(TUTORIAL_SETS);
    args
}

fn template(extra: &[&str]) -> Result<String, String> {
    let chart = chart();
    let mut args = vec![
        "template",
        "-n",
        "staging",
        "my-exp",
        chart.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    helm(&args)
}

/// The rendered objects, each parsed into its Kubernetes type.
#[derive(Default)]
struct Rendered {
    service_accounts: Vec<ServiceAccount>,
    roles: Vec<Role>,
    bindings: Vec<RoleBinding>,
    config_maps: Vec<ConfigMap>,
    jobs: Vec<Job>,
}

fn parse(yaml: &str) -> Rendered {
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(yaml).expect("helm renders YAML");
    let mut r = Rendered::default();
    for doc in docs.into_iter().filter(|d| !d.is_null()) {
        let kind = doc["kind"].as_str().unwrap_or_default().to_owned();
        match kind.as_str() {
            "ServiceAccount" => r.service_accounts.push(typed(doc)),
            "Role" => r.roles.push(typed(doc)),
            "RoleBinding" => r.bindings.push(typed(doc)),
            "ConfigMap" => r.config_maps.push(typed(doc)),
            "Job" => r.jobs.push(typed(doc)),
            other => panic!("unexpected kind {other}"),
        }
    }
    r
}

/// A rendered object as its Kubernetes type; unknown or mistyped fields fail the test.
fn typed<T: serde::de::DeserializeOwned>(doc: serde_json::Value) -> T {
    let kind = doc["kind"].clone();
    serde_path_to_error::deserialize(doc)
        .unwrap_or_else(|e| panic!("{kind} does not fit its Kubernetes type: {e}"))
}

fn spec_of(r: &Rendered) -> ExperimentSpec {
    let cm = r
        .config_maps
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some("my-exp-spec"))
        .expect("spec ConfigMap");
    let text = &cm.data.as_ref().unwrap()["spec.yaml"];
    ExperimentSpec::from_yaml(text)
        .unwrap_or_else(|e| panic!("the chart's spec is not accepted by slogate: {e}\n{text}"))
}

#[test]
#[ignore = "needs helm; run by make test"]
fn seed_command_renders_a_job_that_runs_the_experiment() {
    let r = parse(&template(&seed()).unwrap());
    assert_eq!(
        (
            r.service_accounts.len(),
            r.roles.len(),
            r.bindings.len(),
            r.config_maps.len(),
            r.jobs.len()
        ),
        (1, 1, 1, 1, 1)
    );
    for ns in r
        .jobs
        .iter()
        .map(|o| &o.metadata.namespace)
        .chain(r.roles.iter().map(|o| &o.metadata.namespace))
    {
        assert_eq!(
            ns.as_deref(),
            Some("staging"),
            "everything lives in the release namespace"
        );
    }

    let job = &r.jobs[0];
    assert_eq!(
        job.metadata.name.as_deref(),
        Some("my-exp-1"),
        "Job named after the release revision"
    );
    let spec = job.spec.as_ref().unwrap();
    assert_eq!(spec.backoff_limit, Some(0));
    assert_eq!(spec.active_deadline_seconds, Some(1800));
    let pod = spec.template.spec.as_ref().unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some("my-exp"));
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    let psc = pod.security_context.as_ref().unwrap();
    assert_eq!(
        (psc.run_as_non_root, psc.run_as_user),
        (Some(true), Some(65532))
    );
    assert_eq!(
        psc.seccomp_profile.as_ref().unwrap().type_,
        "RuntimeDefault"
    );

    let c = &pod.containers[0];
    assert_eq!(
        c.args.as_deref().unwrap(),
        ["run", "--spec", "/etc/slogate/spec.yaml"]
    );
    let sc = c.security_context.as_ref().unwrap();
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(
        sc.capabilities.as_ref().unwrap().drop.as_deref().unwrap(),
        ["ALL"]
    );
    let res = c.resources.as_ref().unwrap();
    assert!(
        res.requests.is_some() && res.limits.is_some(),
        "requests and limits are set"
    );

    // The token reaches the pod only as a read-only file from the optional Secret.
    let env = c.env.as_deref().unwrap();
    let rendered_env = serde_json::to_string(env).unwrap();
    assert!(
        !rendered_env.contains("ghtoken"),
        "no token in the environment: {rendered_env}"
    );
    assert!(!c.args.as_ref().unwrap().iter().any(|a| a.contains("token")));
    let token_volume = pod
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .find(|v| v.secret.is_some())
        .unwrap();
    let secret = token_volume.secret.as_ref().unwrap();
    assert_eq!(
        (secret.secret_name.as_deref(), secret.optional),
        (Some("ghtoken"), Some(true))
    );
    let mount = c
        .volume_mounts
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.name == token_volume.name)
        .unwrap();
    assert_eq!(mount.read_only, Some(true));
    assert_eq!(mount.mount_path, "/var/run/secrets/slogate/github");
    let field = |name: &str| {
        env.iter()
            .find(|e| e.name == name)
            .and_then(|e| e.value_from.as_ref())
            .and_then(|v| v.field_ref.as_ref())
            .map(|f| f.field_path.clone())
    };
    assert_eq!(
        field("POD_NAMESPACE").as_deref(),
        Some("metadata.namespace")
    );
    assert_eq!(
        field("SLOGATE_JOB_UID").as_deref(),
        Some("metadata.labels['batch.kubernetes.io/controller-uid']")
    );

    // The spec is one slogate accepts, with the tutorial's three SLOs and the promotion.
    let spec = spec_of(&r);
    assert_eq!(spec.name, "my-exp");
    assert_eq!(
        spec.versions[0].url,
        "http://hello.staging.svc.cluster.local:8080"
    );
    let slos: Vec<(&str, Option<f64>)> = spec
        .slos
        .iter()
        .map(|s| (s.metric.as_str(), s.upper_limit))
        .collect();
    assert_eq!(
        slos,
        [
            ("http/latency-mean", Some(50.0)),
            ("http/error-rate", Some(0.0)),
            ("http/latency-p95", Some(100.0))
        ]
    );
    assert_eq!(
        spec.result.as_ref().unwrap().config_map.as_deref(),
        Some("my-exp")
    );
    let promotion = spec.promotion.as_ref().unwrap();
    assert_eq!(
        (promotion.owner.as_str(), promotion.repo.as_str()),
        ("me", "app")
    );
    assert_eq!(
        (promotion.base.as_str(), promotion.head.as_str()),
        ("master", "staging")
    );
    assert_eq!(
        promotion.token_file.as_deref(),
        Some(std::path::Path::new(
            "/var/run/secrets/slogate/github/token"
        )),
        "the token file is the mounted Secret's key"
    );
    assert_eq!(promotion.api_url, "https://api.github.com");
}

#[test]
#[ignore = "needs helm; run by make test"]
fn role_reaches_only_the_token_secret_the_result_configmap_the_job_and_its_events() {
    let r = parse(&template(&seed()).unwrap());
    let rules = r.roles[0].rules.as_ref().unwrap();
    let mut seen = Vec::new();
    for rule in rules {
        let resources = rule.resources.as_ref().unwrap().join(",");
        let names = rule.resource_names.clone().unwrap_or_default().join(",");
        for verb in &rule.verbs {
            seen.push(format!("{verb} {resources} {names}").trim().to_owned());
        }
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "create configmaps my-exp",
            "create events",
            "get configmaps my-exp",
            "get jobs my-exp-1",
            "get secrets ghtoken",
            "patch configmaps my-exp",
            "patch events"
        ]
    );
    let binding = &r.bindings[0];
    assert_eq!(binding.role_ref.kind, "Role", "a Role, never a ClusterRole");
    let subject = &binding.subjects.as_ref().unwrap()[0];
    assert_eq!(
        (subject.name.as_str(), subject.namespace.as_deref()),
        ("my-exp", Some("staging"))
    );
}

#[test]
#[ignore = "needs helm; run by make test"]
fn no_promotion_without_owner_and_repo() {
    let r = parse(
        &template(&[
            "--set",
            "URL=http://127.0.0.1:8080",
            "--set",
            "limitErrorRate=0.01",
        ])
        .unwrap(),
    );
    let spec = spec_of(&r);
    assert!(spec.promotion.is_none());
    assert_eq!(spec.load.num_requests, Some(100));
    assert_eq!(spec.slos.len(), 1);
}

#[test]
#[ignore = "needs helm; run by make test"]
fn load_values_reach_the_spec() {
    let r = parse(
        &template(&[
            "--set",
            "URL=http://127.0.0.1:8080",
            "--set",
            "QPS=12.5",
            "--set",
            "duration=2m",
            "--set",
            "connections=4",
            "--set",
            "confidence=0.99",
            "--set",
            "payloadURL=http://127.0.0.1:9000/body.json",
            "--set",
            "contentType=application/json",
            "--set",
            "extraSLOs[0].metric=http/latency-p99",
            "--set",
            "extraSLOs[0].upperLimit=250.5",
        ])
        .unwrap(),
    );
    let spec = spec_of(&r);
    assert_eq!(spec.load.qps, Some(12.5));
    assert_eq!(
        spec.load.duration,
        Some(std::time::Duration::from_secs(120))
    );
    assert_eq!(spec.load.num_requests, None);
    assert_eq!(spec.load.connections, 4);
    assert_eq!(spec.confidence, 0.99);
    assert_eq!(
        spec.load.payload_url.as_deref(),
        Some("http://127.0.0.1:9000/body.json")
    );
    assert_eq!(spec.slos[0].metric, "http/latency-p99");
    assert_eq!(spec.slos[0].upper_limit, Some(250.5));
}

#[test]
#[ignore = "needs helm; run by make test"]
fn bad_values_are_refused_with_the_value_named() {
    let url = "URL=http://127.0.0.1:8080";
    let cases: &[(&[&str], &str)] = &[
        (&["--set", "limitMeanLatency=50"], "missing property 'URL'"),
        (&["--set", "URL=ftp://example"], "at '/URL'"),
        (
            &["--set", url, "--set", "limitMeanLatency=-5"],
            "limitMeanLatency must be at least 0, not -5",
        ),
        (
            &["--set", url, "--set", "limit95thPercentileLatency=-5.0"],
            "limit95thPercentileLatency must be at least 0, not -5.0",
        ),
        (
            &["--set", url, "--set", "limitErrorRate=1.5"],
            "limitErrorRate must be at most 1, not 1.5; it is a fraction (0.01 means 1 %)",
        ),
        (
            &["--set", url, "--set", "QPS=fast"],
            "QPS must be a number written with digits and at most one '.' (e.g. 50 or 12.5), not \"fast\"",
        ),
        (
            &["--set", url, "--set", "numQueries=many"],
            "numQueries must be a whole number written with digits only (e.g. 8), not \"many\"",
        ),
        (
            &["--set", url, "--set", "confidence=1.0"],
            "confidence must be less than 1, not 1.0",
        ),
        (
            &["--set", url, "--set", "duration=soon"],
            "duration \"soon\" is not a duration; write it like 30s, 2m or 1h30m",
        ),
        (
            &["--set", url, "--set", "limitMeanLatancy=50.0"],
            "additional properties 'limitMeanLatancy' not allowed",
        ),
        (
            &[
                "--set",
                url,
                "--set",
                "numQueries=10",
                "--set",
                "duration=1m",
            ],
            "numQueries and duration exclude each other",
        ),
        (
            &["--set", url, "--set", "owner=me"],
            "owner and repo go together",
        ),
        (
            &["--set", url, "--set", "owner=me", "--set", "repo=app"],
            "base and head are needed",
        ),
        (
            &[
                "--set",
                url,
                "--set",
                "owner=me",
                "--set",
                "repo=app",
                "--set",
                "head=master",
            ],
            "also the base branch",
        ),
        (
            &["--set", url, "--set", "secret=Not_A_Name"],
            "at '/secret'",
        ),
    ];
    for (args, expected) in cases {
        match template(args) {
            Ok(_) => panic!("{args:?} was accepted"),
            Err(stderr) => assert!(
                stderr.contains(expected),
                "{args:?}: expected {expected:?} in:\n{stderr}"
            ),
        }
    }
}

#[test]
#[ignore = "needs helm; run by make test"]
fn lint_is_strictly_clean_and_every_sample_values_file_renders() {
    let chart = chart();
    let chart = chart.to_str().unwrap();
    for entry in std::fs::read_dir(samples()).unwrap() {
        let path = entry.unwrap().path();
        let file = path.to_str().unwrap();
        let out = helm(&["lint", "--strict", chart, "-f", file])
            .unwrap_or_else(|e| panic!("lint with {file}: {e}"));
        assert!(out.contains("0 chart(s) failed"), "{out}");
        let r = parse(&template(&["-f", file]).unwrap());
        spec_of(&r);
    }
}

/// `helm template` with the tutorial's URL and `extra`; Err(stderr) when refused.
fn refused(extra: &[&str]) -> String {
    let mut args = vec!["--set", "URL=http://127.0.0.1:8080"];
    args.extend_from_slice(extra);
    match template(&args) {
        Ok(_) => panic!("{extra:?} was accepted"),
        Err(stderr) => stderr,
    }
}

#[test]
#[ignore = "needs helm; run by make test"]
fn a_limit_of_401_digits_is_refused_not_rendered_as_zero() {
    let huge = format!("limitMeanLatency=1{}", "0".repeat(400));
    for flag in ["--set-string", "--set"] {
        let err = refused(&[flag, &huge]);
        assert!(
            err.contains("limitMeanLatency \"1000")
                && err.contains("(401 characters) has more than 15 digits"),
            "{flag}: {err}"
        );
        assert!(err.len() < 1000, "the value is quoted short: {err}");
    }
    // 16 digits would not survive a float64; 15 do, exactly as typed.
    refused(&["--set-string", "limitMeanLatency=1234567890123456"]);
    let r = parse(
        &template(&[
            "--set",
            "URL=http://127.0.0.1:8080",
            "--set-string",
            "limitMeanLatency=123456789.012345",
            "--set",
            "limit95thPercentileLatency=999999999999999",
            "--set",
            "limitErrorRate=0.00000000000001",
        ])
        .unwrap(),
    );
    let spec = spec_of(&r);
    let limits: Vec<f64> = spec.slos.iter().filter_map(|s| s.upper_limit).collect();
    assert_eq!(
        limits,
        [123456789.012345, 0.00000000000001, 999999999999999.0]
    );
}

#[test]
#[ignore = "needs helm; run by make test"]
fn qps_zero_says_it_must_be_greater_than_zero_not_exclusive_minimum() {
    let err = refused(&["--set", "QPS=0"]);
    assert!(
        err.contains("QPS must be greater than 0, not 0; leave it out (null) to send as fast as the connections go"),
        "{err}"
    );
    assert!(!err.contains("exclusiveMinimum"), "{err}");
}

#[test]
#[ignore = "needs helm; run by make test"]
fn connections_one_and_a_half_says_it_must_be_a_whole_number() {
    let err = refused(&["--set", "connections=1.5"]);
    assert!(
        err.contains(
            "connections must be a whole number written with digits only (e.g. 8), not \"1.5\""
        ),
        "{err}"
    );
    assert!(!err.contains("got string, want integer"), "{err}");
    let err = refused(&["--set", "connections=0"]);
    assert!(
        err.contains("connections must be at least 1, not 0"),
        "{err}"
    );
    let err = refused(&["--set", "connections=10001"]);
    assert!(
        err.contains("connections must be at most 10000, not 10001"),
        "{err}"
    );
    let err = refused(&["--set", "activeDeadlineSeconds=1.5"]);
    assert!(
        err.contains("activeDeadlineSeconds must be a whole number"),
        "{err}"
    );
}

#[test]
#[ignore = "needs helm; run by make test"]
fn an_image_tag_with_spaces_is_refused() {
    let err = refused(&["--set", "image.tag=a b c"]);
    assert!(
        err.contains("image.tag \"a b c\" is not an image tag"),
        "{err}"
    );
    let err = refused(&["--set", "image.repository=Not A Repo"]);
    assert!(
        err.contains("image.repository \"Not A Repo\" is not an image repository"),
        "{err}"
    );
    let r = parse(
        &template(&[
            "--set",
            "URL=http://127.0.0.1:8080",
            "--set",
            "image.tag=1.2.3-rc_1",
        ])
        .unwrap(),
    );
    let image = r.jobs[0]
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .image
        .clone();
    assert_eq!(image.as_deref(), Some("ghcr.io/slogate/slogate:1.2.3-rc_1"));
}

#[test]
#[ignore = "needs helm; run by make test"]
fn numbers_that_pass_render_as_the_user_typed_them() {
    let r = parse(
        &template(&[
            "--set",
            "URL=http://127.0.0.1:8080",
            "--set",
            "QPS=0.5",
            "--set",
            "numQueries=1000000",
            "--set",
            "connections=10000",
            "--set",
            "confidence=0.999",
            "--set-string",
            "extraSLOs[0].metric=http/latency-p99,extraSLOs[0].upperLimit=250.125,extraSLOs[0].lowerLimit=0.5",
        ])
        .unwrap(),
    );
    let spec = spec_of(&r);
    assert_eq!(spec.load.qps, Some(0.5));
    assert_eq!(spec.load.num_requests, Some(1_000_000));
    assert_eq!(spec.load.connections, 10000);
    assert_eq!(spec.confidence, 0.999);
    assert_eq!(spec.slos[0].upper_limit, Some(250.125));
    assert_eq!(spec.slos[0].lower_limit, Some(0.5));
}

#[test]
#[ignore = "needs helm; run by make test"]
fn the_seed_command_still_renders_a_conformance_experiment_of_one_version() {
    let spec = spec_of(&parse(&template(&seed()).unwrap()));
    assert_eq!(spec.versions.len(), 1);
    assert!(spec.strategy.is_none(), "no baseline, no Canary");
    assert!(spec.slos.iter().all(|s| !s.is_relative()));
}

#[test]
#[ignore = "needs helm; run by make test"]
fn a_baseline_url_renders_a_canary_experiment_with_relative_slos() {
    use slogate_core::spec::{Change, Role, TestingPattern};
    let mut args = seed();
    args.extend_from_slice(&[
        "--set",
        "baselineURL=http://hello.prod.svc.cluster.local:8080",
        "--set",
        "maxIncrease95thPercentileLatency=10%",
        "--set",
        "maxIncreaseMeanLatency=5",
        "--set",
        "maxIncreaseErrorRate=0.01",
    ]);
    let spec = spec_of(&parse(&template(&args).unwrap()));
    assert_eq!(spec.testing_pattern(), TestingPattern::Canary);
    let baseline = spec.baseline().expect("a baseline");
    assert_eq!(baseline.url, "http://hello.prod.svc.cluster.local:8080");
    assert_eq!(baseline.role, Role::Baseline);
    assert_eq!(baseline.variables["promote"], "baseline");
    let candidate = spec
        .versions
        .iter()
        .find(|v| v.role == Role::Candidate)
        .unwrap();
    assert_eq!(candidate.url, "http://hello.staging.svc.cluster.local:8080");
    assert_eq!(candidate.variables["promote"], "candidate");
    let relative: Vec<(&str, Option<Change>)> = spec
        .slos
        .iter()
        .filter(|s| s.is_relative())
        .map(|s| (s.metric.as_str(), s.max_increase))
        .collect();
    assert_eq!(
        relative,
        [
            ("http/latency-mean", Some(Change::Amount(5.0))),
            ("http/latency-p95", Some(Change::Percent(10.0))),
            ("http/error-rate", Some(Change::Amount(0.01))),
        ]
    );
    // The tutorial's absolute SLOs are still there.
    assert_eq!(spec.slos.iter().filter(|s| !s.is_relative()).count(), 3);
}

#[test]
#[ignore = "needs helm; run by make test"]
fn relative_limits_without_a_baseline_or_malformed_are_refused_with_what_to_write() {
    let mut args = seed();
    args.extend_from_slice(&["--set", "maxIncreaseMeanLatency=5"]);
    let err = template(&args).unwrap_err();
    assert!(
        err.contains(
            "maxIncreaseMeanLatency compares the candidate with the baseline: set baselineURL too"
        ),
        "{err}"
    );

    let mut args = seed();
    args.extend_from_slice(&[
        "--set",
        "baselineURL=http://hello.prod:8080",
        "--set-string",
        "maxIncrease95thPercentileLatency=ten percent",
    ]);
    let err = template(&args).unwrap_err();
    assert!(err.contains("maxIncrease95thPercentileLatency"), "{err}");

    let mut args = seed();
    args.extend_from_slice(&[
        "--set",
        "baselineURL=http://hello.prod:8080",
        "--set-string",
        "maxIncreaseErrorRate=5%",
    ]);
    let err = template(&args).unwrap_err();
    assert!(err.contains("give the increase as a fraction"), "{err}");

    let mut args = seed();
    args.extend_from_slice(&["--set", "baselineURL=ftp://x"]);
    let err = template(&args).unwrap_err();
    assert!(err.contains("baselineURL"), "{err}");
}

/// Every rule of every rendered Role as `namespace: verb resource names`.
fn role_rules(r: &Rendered) -> Vec<String> {
    let mut seen = Vec::new();
    for role in &r.roles {
        let ns = role.metadata.namespace.clone().unwrap_or_default();
        for rule in role.rules.as_ref().unwrap() {
            let resources = rule.resources.as_ref().unwrap().join(",");
            let names = rule.resource_names.clone().unwrap_or_default().join(",");
            for verb in &rule.verbs {
                seen.push(
                    format!("{ns}: {verb} {resources} {names}")
                        .trim()
                        .to_owned(),
                );
            }
        }
    }
    seen.sort();
    seen.dedup();
    seen
}

#[test]
#[ignore = "needs helm; run by make test"]
fn progressive_canary_values_render_the_loop_and_rules_for_exactly_the_named_objects() {
    use slogate_core::rollout::DeploymentPattern;
    let values = samples().join("progressive-canary.yaml");
    let r = parse(&template(&["-f", values.to_str().unwrap()]).unwrap());
    let spec = spec_of(&r);
    let strategy = spec.strategy.as_ref().unwrap();
    assert_eq!(strategy.deployment_pattern, DeploymentPattern::Progressive);
    let weights = strategy.weights.unwrap();
    assert_eq!(
        (
            weights.max_candidate_weight,
            weights.max_candidate_weight_increment
        ),
        (75, 20)
    );
    let duration = spec.duration.unwrap();
    assert_eq!(
        (duration.interval_seconds, duration.iterations_per_loop),
        (10, 10)
    );
    assert_eq!(
        spec.load.num_requests, None,
        "the loop sets how long load runs"
    );
    let refs: Vec<String> = spec
        .versions
        .iter()
        .map(|v| v.weight_obj_ref.as_ref().unwrap().field_path.clone())
        .collect();
    assert_eq!(
        refs,
        [
            ".spec.rules[0].backendRefs[0].weight",
            ".spec.rules[0].backendRefs[1].weight"
        ]
    );
    assert_eq!(
        spec.readiness.as_ref().unwrap().objects[0].name,
        "sample-app-v2"
    );
    let rules = role_rules(&r);
    let objects: Vec<&String> = rules
        .iter()
        .filter(|x| x.contains("httproutes") || x.contains("deployments"))
        .collect();
    assert_eq!(
        objects,
        [
            "staging: get deployments sample-app-v2",
            "staging: get httproutes sample-app",
            "staging: patch httproutes sample-app"
        ]
    );
    // Nothing without a name but the events, which are created with generated names.
    for rule in &rules {
        assert!(
            rule.split(' ').count() == 4 || rule.ends_with(" events"),
            "a rule not limited to named objects: {rule}"
        );
    }
}

#[test]
#[ignore = "needs helm; run by make test"]
fn a_weight_object_in_another_namespace_gets_a_role_there_and_nothing_more() {
    let r = parse(
        &template(&[
            "--set",
            "URL=http://v2:8080",
            "--set",
            "baselineURL=http://v1:8080",
            "--set",
            "iterationsPerLoop=3",
            "--set",
            "deploymentPattern=Progressive",
            "--set-json",
            r#"candidateWeightObjRef={"apiVersion":"networking.istio.io/v1","kind":"VirtualService","namespace":"mesh","name":"app","fieldPath":".spec.http[0].route[1].weight"}"#,
        ])
        .unwrap(),
    );
    let rules = role_rules(&r);
    let mesh: Vec<&String> = rules.iter().filter(|x| x.starts_with("mesh:")).collect();
    assert_eq!(
        mesh,
        [
            "mesh: get virtualservices app",
            "mesh: patch virtualservices app"
        ]
    );
    let binding = r
        .bindings
        .iter()
        .find(|b| b.metadata.namespace.as_deref() == Some("mesh"))
        .expect("a RoleBinding in mesh");
    assert_eq!(binding.role_ref.kind, "Role");
    assert_eq!(
        binding.subjects.as_ref().unwrap()[0].namespace.as_deref(),
        Some("staging")
    );
}

#[test]
#[ignore = "needs helm; run by make test"]
fn a_grpc_target_renders_calls_with_the_proto_mounted_beside_the_spec() {
    let proto = concat!(env!("CARGO_MANIFEST_DIR"), "/../hello/proto/hello.proto");
    let args = [
        "--set",
        "URL=grpc://greeter.staging.svc.cluster.local:50051",
        "--set",
        "baselineURL=grpc://greeter.prod.svc.cluster.local:50051",
        "--set-file",
        &format!("grpc.proto={proto}"),
        "--set",
        "grpc.call=slogate.hello.v1.Greeter/SayHello",
        "--set",
        "grpc.data.name=slogate",
        "--set",
        "grpc.metadata.x-team=checkout",
        "--set",
        "limitErrorRate=0.01",
        "--set",
        "limit95thPercentileLatency=100",
        "--set",
        "maxIncrease95thPercentileLatency=10%",
    ];
    let r = parse(&template(&args).unwrap());
    let spec = spec_of(&r);
    // Both versions make the same call; the limits are on gRPC's metrics.
    for version in &spec.versions {
        let grpc = version.grpc.as_ref().expect("a gRPC version");
        assert_eq!(grpc.proto, PathBuf::from("/etc/slogate/service.proto"));
        assert_eq!(grpc.call, "slogate.hello.v1.Greeter/SayHello");
        assert_eq!(grpc.data["name"], "slogate");
        assert_eq!(grpc.metadata["x-team"], "checkout");
    }
    let metrics: Vec<&str> = spec.slos.iter().map(|s| s.metric.as_str()).collect();
    assert_eq!(
        metrics,
        ["grpc/error-rate", "grpc/latency-p95", "grpc/latency-p95"]
    );
    // The proto file's text is in the spec ConfigMap and mounted where the spec says.
    let cm = r
        .config_maps
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some("my-exp-spec"))
        .unwrap();
    let shipped = &cm.data.as_ref().unwrap()["service.proto"];
    assert_eq!(
        shipped.trim(),
        std::fs::read_to_string(proto).unwrap().trim()
    );
    let pod = r.jobs[0]
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap();
    let volume = pod
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .find(|v| v.name == "spec")
        .unwrap();
    let items: Vec<&str> = volume
        .config_map
        .as_ref()
        .unwrap()
        .items
        .as_ref()
        .unwrap()
        .iter()
        .map(|i| i.path.as_str())
        .collect();
    assert_eq!(items, ["spec.yaml", "service.proto"]);

    // A gRPC target without its call, or without a port, is refused naming the value.
    let refused = template(&[
        "--set",
        "URL=grpc://greeter:50051",
        "--set",
        "grpc.call=a.B/C",
    ])
    .unwrap_err();
    assert!(refused.contains("proto"), "{refused}");
    let refused = template(&["--set", "URL=grpc://greeter"]).unwrap_err();
    assert!(refused.contains("/URL"), "{refused}");
}

#[test]
#[ignore = "needs helm; run by make test"]
fn parallelism_renders_an_indexed_job_and_rights_on_exactly_its_partials() {
    let mut args = seed();
    args.extend_from_slice(&["--set", "parallelism=3", "--set", "numQueries=300"]);
    let r = parse(&template(&args).unwrap());
    let job = r.jobs[0].spec.as_ref().unwrap();
    assert_eq!(job.completion_mode.as_deref(), Some("Indexed"));
    assert_eq!((job.completions, job.parallelism), (Some(3), Some(3)));
    assert_eq!(job.backoff_limit_per_index, Some(0), "no retries");
    assert_eq!(job.backoff_limit, None);
    let container = &job.template.spec.as_ref().unwrap().containers[0];
    let env: Vec<(String, String)> = container
        .env
        .clone()
        .unwrap()
        .into_iter()
        .filter_map(|e| Some((e.name, e.value_from?.field_ref?.field_path)))
        .collect();
    assert!(env.contains(&(
        "JOB_COMPLETION_INDEX".into(),
        "metadata.annotations['batch.kubernetes.io/job-completion-index']".into()
    )));
    let spec = spec_of(&r);
    let p = spec.parallelism.unwrap();
    assert_eq!(p.pods, 3);
    assert_eq!(p.report_timeout, std::time::Duration::from_secs(120));
    assert_eq!(
        role_rules(&r),
        [
            "staging: create configmaps my-exp",
            "staging: create configmaps my-exp-1-partial-0,my-exp-1-partial-1,my-exp-1-partial-2",
            "staging: create events",
            "staging: get configmaps my-exp",
            "staging: get configmaps my-exp-1-partial-0,my-exp-1-partial-1,my-exp-1-partial-2",
            "staging: get jobs my-exp-1",
            "staging: get secrets ghtoken",
            "staging: patch configmaps my-exp",
            "staging: patch configmaps my-exp-1-partial-0,my-exp-1-partial-1,my-exp-1-partial-2",
            "staging: patch events",
        ]
    );
    // One pod renders the Job exactly as before: not Indexed, no partials.
    let one = parse(&template(&seed()).unwrap());
    let job = one.jobs[0].spec.as_ref().unwrap();
    assert_eq!(
        (job.completion_mode.as_deref(), job.backoff_limit),
        (None, Some(0))
    );
    assert!(spec_of(&one).parallelism.is_none());
    assert!(!role_rules(&one).iter().any(|r| r.contains("partial")));
}

#[test]
#[ignore = "needs helm; run by make test"]
fn parallelism_out_of_range_or_not_whole_is_refused() {
    for bad in [
        "parallelism=0",
        "parallelism=65",
        "parallelism=2.5",
        "parallelism=many",
    ] {
        let err = refused(&["--set", bad]);
        assert!(err.contains("parallelism"), "{bad}: {err}");
    }
    let err = refused(&["--set", "parallelism=2", "--set", "iterationsPerLoop=3"]);
    assert!(err.contains("cannot run the experiment loop"), "{err}");
    let err = refused(&[
        "--set",
        "parallelism=2",
        "--set",
        "parallelismOnMissing=ignore",
    ]);
    assert!(err.contains("parallelismOnMissing"), "{err}");
}

#[test]
#[ignore = "needs helm; run by make test"]
fn finish_actions_reach_the_spec_and_a_helm_action_gets_helms_secrets_in_the_release_namespace_only()
 {
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("actions.yaml");
    std::fs::write(
        &values,
        r#"URL: http://hello.staging.svc.cluster.local:8080
actions:
  - if: always
    exec:
      cmd: /usr/local/bin/helm
      args: [upgrade, --install, sample-app, oci://example/sample-app, "--values=/values/{{promote}}-values.yaml"]
      timeout: 5m
  - if: fail
    exec: {cmd: echo, args: ["{{name}} failed"]}
actionRules:
  - {apiGroups: [""], resources: [configmaps], resourceNames: [sample-app], verbs: [get, patch]}
"#,
    )
    .unwrap();
    let chart = chart();
    let out = helm(&[
        "lint",
        "--strict",
        chart.to_str().unwrap(),
        "-f",
        values.to_str().unwrap(),
    ])
    .unwrap();
    assert!(out.contains("0 chart(s) failed"), "{out}");
    let r = parse(&template(&["-f", values.to_str().unwrap()]).unwrap());
    let spec = spec_of(&r);
    let planned = spec.finish_actions();
    assert_eq!(planned.len(), 2);
    assert_eq!(planned[0].condition.to_string(), "always");
    match planned[0].action {
        slogate_core::actions::Action::Exec(exec) => {
            assert_eq!(exec.cmd, "/usr/local/bin/helm");
            assert_eq!(exec.args[4], "--values=/values/{{promote}}-values.yaml");
        }
        other => panic!("{other:?}"),
    }
    let args = r.jobs[0]
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .args
        .clone()
        .unwrap();
    assert_eq!(
        args[3..],
        ["--token-file", "/var/run/secrets/slogate/github/token"],
        "a command printing the token's file has it redacted"
    );
    let rules = role_rules(&r);
    for expected in [
        "staging: list secrets",
        "staging: create secrets",
        "staging: get configmaps sample-app",
        "staging: patch configmaps sample-app",
    ] {
        assert!(
            rules.iter().any(|r| r == expected),
            "no {expected:?} in {rules:#?}"
        );
    }
    assert!(
        rules.iter().all(|r| r.starts_with("staging: ")),
        "{rules:#?}"
    );

    // Without a helm action, the Secrets stay out of reach but for the token.
    let plain = parse(
        &template(&[
            "--set",
            "URL=http://hello:8080",
            "--set",
            "actions[0].exec.cmd=echo",
        ])
        .unwrap(),
    );
    assert_eq!(spec_of(&plain).finish_actions().len(), 1);
    let secrets: Vec<String> = role_rules(&plain)
        .into_iter()
        .filter(|r| r.contains("secrets"))
        .collect();
    assert_eq!(secrets, ["staging: get secrets ghtoken"]);
}

#[test]
#[ignore = "needs helm; run by make test"]
fn malformed_actions_are_refused_by_the_values_schema() {
    for (set, words) in [
        ("actions[0].if=sometimes", "if"),
        ("actions[0].exec.timeout=soon", "timeout"),
        ("actions[0].gitlab=x", "gitlab"),
    ] {
        let err = refused(&["--set", "actions[0].exec.cmd=helm", "--set", set]);
        assert!(err.contains(words), "{set}: {err}");
    }
    let err = refused(&["--set-json", r#"actions=[{"exec": {"cmd": ""}}]"#]);
    assert!(err.contains("cmd"), "{err}");
}

#[test]
#[ignore = "needs helm; run by make test"]
fn head_sha_and_a_gitops_action_reach_the_spec() {
    const SHA: &str = "4f2c0e6d8a1b3c5d7e9f0a2b4c6d8e0f1a3b5c7d";
    let mut values = seed();
    values.extend([
        "--set",
        "headSHA=4f2c0e6d8a1b3c5d7e9f0a2b4c6d8e0f1a3b5c7d",
        "--set",
        "host=https://ghe.example.com/api/v3",
        "--set-json",
        r#"actions=[{"gitops":{"owner":"me","repo":"env","branch":"staging","base":"master","files":[{"path":"prod/values.yaml","template":"image: {{image}}"}]}},{"if":"fail","gitops":{"owner":"me","repo":"env","branch":"rollback","files":[{"path":"prod/values.yaml","template":"x"}]}}]"#,
    ]);
    let r = parse(&template(&values).unwrap());
    let spec = spec_of(&r);
    let promotion = spec.promotion.as_ref().expect("owner and repo are set");
    assert_eq!(promotion.head_sha.as_deref(), Some(SHA));
    let planned = spec.finish_actions();
    let gitops: Vec<_> = planned
        .iter()
        .filter_map(|p| match p.action {
            slogate_core::actions::Action::Gitops(g) => Some(g),
            _ => None,
        })
        .collect();
    assert_eq!(gitops.len(), 2);
    assert_eq!(gitops[0].api_url, "https://ghe.example.com/api/v3");
    assert_eq!(
        gitops[0].head_sha.as_deref(),
        Some(SHA),
        "its branch is head: the tested commit is its"
    );
    assert_eq!(
        gitops[1].head_sha, None,
        "another branch was not what was tested"
    );

    let refused = refused(&["--set", "headSHA=HEAD"]);
    assert!(refused.contains("headSHA"), "{refused}");
}
