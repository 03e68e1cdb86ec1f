//! Bad input through the built binary: exit 64, every problem named, values quoted short,
//! and documents that are not slogate results refused before they are parsed.

mod common;

use common::{slogate, text};

fn code(out: &std::process::Output) -> i32 {
    out.status.code().expect("exited")
}

#[test]
fn run_with_six_spec_problems_exits_64_naming_all_of_them() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("six.yaml");
    std::fs::write(
        &spec,
        "name: six\nversions:\n  - name: v1\n    url: http://127.0.0.1:1/\n    weight: 3\n\
         load:\n  connections: 1.5\n  qps: fast\n  duration: banana\n  warmupRequests: -1\n\
         confidence: 2\n",
    )
    .unwrap();
    let out = slogate(&["run", "--spec", spec.to_str().unwrap()]);
    assert_eq!(code(&out), 64, "{}", text(&out.stderr));
    let err = text(&out.stderr);
    for expected in [
        "invalid experiment spec (6 problems)",
        "versions[0].weight: unknown field",
        "load.connections: 1.5 is not a whole number",
        "load.qps: \"fast\" is not a number",
        "load.duration: \"banana\" is not a duration; write it like 30s, 2m or 1h30m",
        "load.warmupRequests: -1 is not a whole number of 0 or more",
        "confidence: must be between 0 and 1",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
}

#[test]
fn a_50_mb_name_is_not_echoed_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("huge.yaml");
    let name = "N".repeat(50 << 20);
    std::fs::write(
        &spec,
        format!("name: {name}\nversions: [{{name: v, url: 'http://127.0.0.1:1/'}}]\n"),
    )
    .unwrap();
    let out = slogate(&["run", "--spec", spec.to_str().unwrap()]);
    assert_eq!(code(&out), 64);
    let err = text(&out.stderr);
    assert!(err.len() < 2000, "{} bytes on stderr", err.len());
    assert!(
        err.contains(&format!(
            "name: \"{}…\" (52428800 bytes) is not a valid Kubernetes name",
            "N".repeat(64)
        )),
        "{err}"
    );
}

#[test]
fn a_bad_duration_flag_says_what_a_duration_looks_like() {
    for args in [
        vec!["load", "http://127.0.0.1:1/", "-z", "banana"],
        vec!["load", "http://127.0.0.1:1/", "--timeout", "banana"],
        vec![
            "assert",
            "-f",
            "r.json",
            "-c",
            "completed",
            "--timeout",
            "banana",
        ],
        vec![
            "describe",
            "-f",
            "r.json",
            "--watch",
            "--interval",
            "banana",
        ],
    ] {
        let out = slogate(&args);
        assert_eq!(code(&out), 64, "{args:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains("\"banana\" is not a duration; write it like 30s, 2m or 1h30m"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn a_huge_flag_value_is_cut_short_in_the_message() {
    let huge = "9".repeat(100_000);
    let out = slogate(&["load", "http://127.0.0.1:1/", "-q", &format!("{huge}x")]);
    assert_eq!(code(&out), 64);
    let err = text(&out.stderr);
    assert!(err.len() < 2000, "{} bytes on stderr", err.len());
    assert!(
        err.contains("invalid value for '--qps <QPS>': \"999999999999"),
        "{err}"
    );
    assert!(err.contains("(100001 bytes) is not a number"), "{err}");
}

fn result_with(api_version: &str, kind: &str) -> String {
    format!(
        r#"{{"apiVersion": "{api_version}", "kind": "{kind}", "name": "x",
            "startTime": "2026-11-23T10:00:00Z", "endTime": "2026-11-23T10:01:00Z",
            "stage": "Completed", "progress": {{"requestsDone": 10, "elapsedSeconds": 1.0}},
            "confidence": 0.95, "versions": [], "slos": [],
            "verdict": {{"pass": true, "reason": "All 0 SLOs are satisfied."}}}}"#
    )
}

#[test]
fn describe_and_assert_refuse_an_unknown_api_version_or_kind_with_exit_64() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.json");
    let f = file.to_str().unwrap();

    std::fs::write(
        &file,
        result_with("slogate.dev/v1alpha1", "ExperimentResult"),
    )
    .unwrap();
    assert_eq!(code(&slogate(&["describe", "-f", f])), 0);

    std::fs::write(&file, result_with("slogate.dev/v2", "ExperimentResult")).unwrap();
    for args in [
        vec!["describe", "-f", f],
        vec!["assert", "-f", f, "-c", "completed", "--timeout", "30s"],
    ] {
        let out = slogate(&args);
        assert_eq!(code(&out), 64, "{args:?}");
        assert!(
            text(&out.stderr).contains(&format!(
                "{f}: has apiVersion \"slogate.dev/v2\", which this slogate does not read"
            )),
            "{}",
            text(&out.stderr)
        );
    }

    std::fs::write(&file, result_with("apps/v1", "Deployment")).unwrap();
    let out = slogate(&["assert", "-f", f, "-c", "slos"]);
    assert_eq!(code(&out), 64);
    assert!(
        text(&out.stderr).contains("has kind \"Deployment\", not ExperimentResult"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn describe_of_a_200_mb_result_is_refused_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.json");
    // Sparse: 200 MB that take no disk.
    let f = std::fs::File::create(&file).unwrap();
    f.set_len(200 << 20).unwrap();
    let out = slogate(&["describe", "-f", file.to_str().unwrap()]);
    assert_eq!(code(&out), 64);
    let err = text(&out.stderr);
    assert!(
        err.contains("over the 4194304-byte limit of a result document"),
        "{err}"
    );
    // An endless file is refused the same way, not read to its end.
    let out = slogate(&["describe", "-f", "/dev/zero"]);
    assert_eq!(code(&out), 64);
}

#[test]
fn a_malformed_progressive_loop_exits_64_naming_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("loop.yaml");
    std::fs::write(
        &spec,
        "name: loop
versions:
  - {name: current, role: baseline, url: 'http://127.0.0.1:1/',
     weightObjRef: {apiVersion: 'a/b/c', kind: HTTPRoute, name: r, fieldPath: '.spec.rules[x].weight'}}
  - {name: candidate, url: 'http://127.0.0.1:2/'}
strategy:
  deploymentPattern: Progressive
  weights: {maxCandidateWeight: 150, maxCandidateWeightIncrement: 0}
duration: {intervalSeconds: 0, iterationsPerLoop: 5}
load: {duration: 30s}
readiness: {timeout: 1m, objects: []}
slos: [{metric: http/latency-p95, upperLimit: 100}]
",
    )
    .unwrap();
    let out = slogate(&["run", "--spec", spec.to_str().unwrap()]);
    assert_eq!(code(&out), 64, "{}", text(&out.stderr));
    let err = text(&out.stderr);
    for expected in [
        "strategy.weights.maxCandidateWeight: 150 is above 100",
        "strategy.weights.maxCandidateWeightIncrement: must be between 1 and 100",
        "duration.intervalSeconds: must be at least 1",
        "load.duration: duration (intervalSeconds × iterationsPerLoop) sets how long load runs",
        "versions[0].weightObjRef.apiVersion: \"a/b/c\" is not group/version",
        "versions[0].weightObjRef.fieldPath: \".spec.rules[x].weight\" is not a field path",
        "versions[1].weightObjRef: Progressive writes the candidate's weight",
        "readiness.objects: name at least one object",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
}

#[test]
fn a_loop_with_more_looks_than_the_bootstrap_resolves_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("looks.yaml");
    std::fs::write(
        &spec,
        "name: looks
versions: [{name: v, url: 'http://127.0.0.1:1/'}]
duration: {intervalSeconds: 1, iterationsPerLoop: 200}
slos: [{metric: http/latency-mean, upperLimit: 10}]
",
    )
    .unwrap();
    let out = slogate(&["run", "--spec", spec.to_str().unwrap()]);
    assert_eq!(code(&out), 64, "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("duration.iterationsPerLoop: 200 looks at 0.95 confidence"),
        "{err}"
    );
}

#[test]
fn several_load_pods_outside_the_job_exit_64_naming_parallelism() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("pods.yaml");
    std::fs::write(
        &spec,
        "name: pods\nversions: [{name: v, url: 'http://127.0.0.1:1/'}]\nparallelism: {pods: 3}\n",
    )
    .unwrap();
    let out = slogate(&["run", "--spec", spec.to_str().unwrap()]);
    assert_eq!(code(&out), 64, "{}", text(&out.stderr));
    assert!(
        text(&out.stderr)
            .contains("parallelism.pods: 3 load pods run as the slo-pr chart's Indexed Job"),
        "{}",
        text(&out.stderr)
    );
    // With the experiment loop, several pods are refused by validation, the field named.
    std::fs::write(
        &spec,
        "name: pods\nversions: [{name: v, url: 'http://127.0.0.1:1/'}]\nparallelism: {pods: 2}\nduration: {intervalSeconds: 1, iterationsPerLoop: 2}\n",
    )
    .unwrap();
    let out = slogate(&["run", "--spec", spec.to_str().unwrap()]);
    assert_eq!(code(&out), 64);
    assert!(
        text(&out.stderr).contains("parallelism.pods: 2 load pods cannot run the experiment loop"),
        "{}",
        text(&out.stderr)
    );
}
