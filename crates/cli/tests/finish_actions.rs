//! Finish actions as a user runs them: `slogate run` judges a Canary of two hello services on
//! loopback, then runs `actions.finish` in order. The real `helm` upgrades a release on a
//! real API server to the winner's values file, and back to the baseline's when the
//! candidate fails; `if` selects which actions run and the others are recorded as skipped
//! with the reason; a failing command, one that times out and one that prints too much are
//! recorded as such, the verdict untouched; a command that prints the GitHub token's file
//! shows `[redacted]`, and the token appears nowhere.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{slogate, slogate_async, text};
use serde_json::Value;
use slogate_hello::{Behavior, HelloServer};
use slogate_k8s::testing::{ControlPlane, tool};

const TOKEN: &str = "ghp_ExecLeakCanary9f8e7d6c5b4a3f2e1d0c9b8a7";

fn behavior() -> Behavior {
    Behavior::new()
        .latency(Duration::from_millis(10))
        .slow(0.1, Duration::from_millis(10))
}

/// A Canary of two equal versions (the candidate wins, as in tests/canary.rs) with `actions`.
fn canary_spec(baseline: &str, candidate: &str, actions: &str) -> String {
    format!(
        r#"name: exp
namespace: shop
strategy: {{ testingPattern: Canary }}
versions:
  - {{ name: current, role: baseline, url: "{baseline}", variables: {{ promote: baseline }} }}
  - {{ name: candidate, url: "{candidate}", variables: {{ promote: candidate }} }}
load: {{ connections: 8, numRequests: 1500 }}
slos:
  - {{ metric: http/latency-p95, upperLimit: 1000 }}
  - {{ metric: http/latency-p95, versus: baseline, maxIncrease: 15% }}
  - {{ metric: http/error-rate, versus: baseline, maxIncrease: 0.01 }}
{actions}"#
    )
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

/// Runs the spec in `dir`; returns the result document, its file and slogate's stderr.
async fn run(dir: &Path, spec: String) -> (Value, PathBuf, String) {
    let spec_file = dir.join("spec.yaml");
    std::fs::write(&spec_file, spec).unwrap();
    let result = dir.join("result.json");
    let out = slogate_async(vec![
        "run".into(),
        "--spec".into(),
        spec_file.to_str().unwrap().into(),
        "--result-file".into(),
        result.to_str().unwrap().into(),
    ])
    .await;
    let stderr = text(&out.stderr);
    // Whatever the actions did, the run completed: exit 0.
    assert_eq!(out.status.code(), Some(0), "slogate run: {stderr}");
    let raw = std::fs::read_to_string(&result).unwrap();
    let doc: Value = serde_json::from_str(&raw).unwrap();
    let errors = schema_errors(&doc);
    assert!(errors.is_empty(), "schema errors: {errors:#?}\n{doc:#}");
    assert_eq!(doc["stage"], "Completed", "{doc:#}");
    (doc, result, stderr)
}

fn actions(doc: &Value) -> &Vec<Value> {
    doc["actions"]
        .as_array()
        .unwrap_or_else(|| panic!("no actions in {doc:#}"))
}

fn sample_chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples/charts/sample-app")
}

/// The sample-app release's last revision and its values, as helm reports them.
fn release(plane: &ControlPlane) -> (u64, Value) {
    let history = plane
        .helm(&["history", "sample-app", "-n", "shop", "-o", "json"])
        .unwrap();
    let history: Value = serde_json::from_str(&history).unwrap();
    let revision = history.as_array().unwrap().last().unwrap()["revision"]
        .as_u64()
        .unwrap_or_else(|| panic!("no revision in {history:#}"));
    let values = plane
        .helm(&["get", "values", "sample-app", "-n", "shop", "-o", "json"])
        .unwrap();
    (revision, serde_json::from_str(&values).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_of_helm_promotes_the_winner_and_the_baseline_when_the_candidate_fails() {
    let plane = ControlPlane::start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    plane.create_namespace("shop").await.unwrap();
    let chart = sample_chart().canonicalize().unwrap();
    let chart = chart.to_str().unwrap();
    let kubeconfig = plane.admin_kubeconfig().to_str().unwrap().to_owned();
    // What runs today: the baseline's values, revision 1.
    plane
        .helm(&[
            "install",
            "sample-app",
            chart,
            "-n",
            "shop",
            &format!("--values={chart}/baseline-values.yaml"),
        ])
        .unwrap_or_else(|e| panic!("helm install: {e}"));
    let helm_home = plane.dir().join("helm");
    let base = HelloServer::start(behavior()).await.unwrap();
    let cand = HelloServer::start(behavior()).await.unwrap();
    let helm = tool("helm").unwrap();
    let upgrade = |when: &str| {
        format!(
            r#"    - if: {when}
      exec:
        cmd: {helm}
        args: [upgrade, --install, sample-app, "{chart}", "--values={chart}/{{{{promote}}}}-values.yaml",
               --namespace, "{{{{namespace}}}}", --kubeconfig, "{kubeconfig}"]
        timeout: 2m
        env:
          HELM_CACHE_HOME: "{home}/cache"
          HELM_CONFIG_HOME: "{home}/config"
          HELM_DATA_HOME: "{home}/data"
"#,
            helm = helm.display(),
            home = helm_home.display(),
        )
    };
    let actions_yaml = format!("actions:\n  finish:\n{}", upgrade("always"));
    let dir = tempfile::tempdir().unwrap();
    let (doc, result, _) = run(
        dir.path(),
        canary_spec(&base.url(), &cand.url(), &actions_yaml),
    )
    .await;
    assert_eq!(doc["winner"]["name"], "candidate", "{:#}", doc["winner"]);
    let action = &actions(&doc)[0];
    assert_eq!(action["kind"], "exec");
    assert_eq!(action["if"], "always");
    assert_eq!(action["outcome"], "done", "{action:#}");
    assert_eq!(action["exec"]["exitCode"], 0, "{action:#}");
    let command: Vec<&str> = action["exec"]["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        command.contains(&format!("--values={chart}/candidate-values.yaml").as_str()),
        "{command:?}"
    );
    assert!(command.contains(&"shop"), "{command:?}");
    assert!(
        action["exec"]["stdout"]["text"]
            .as_str()
            .unwrap()
            .contains("has been upgraded"),
        "{action:#}"
    );
    // The cluster agrees: revision 2, with the candidate's values.
    let (revision, values) = release(&plane);
    assert_eq!(revision, 2, "{values:#}");
    assert_eq!(values["version"], "v2", "{values:#}");
    assert_eq!(values["image"], "ghcr.io/slogate/hello:v2", "{values:#}");
    let report = text(&slogate(&["describe", "-f", result.to_str().unwrap()]).stdout);
    assert!(
        report.contains(
            "****** Finish actions ******\n✔ exec (actions.finish[0], if always): done: "
        ),
        "{report}"
    );
    assert!(report.contains("→ exit 0"), "{report}");

    // The tutorial's other ending: had the candidate failed, the baseline is promoted. A
    // candidate answering 5% of requests with 503 fails; the `if: pass` upgrade is skipped
    // and the `if: fail` one sets the release back to the winner's (the baseline's) values.
    let failing = HelloServer::start(behavior().error_status(0.05, 503))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (doc, _, _) = run(
        dir.path(),
        canary_spec(
            &base.url(),
            &failing.url(),
            &format!(
                "actions:\n  finish:\n{}{}",
                upgrade("pass"),
                upgrade("fail")
            ),
        ),
    )
    .await;
    assert_eq!(doc["verdict"]["pass"], false, "{:#}", doc["verdict"]);
    assert_eq!(doc["winner"]["name"], "current", "{:#}", doc["winner"]);
    let a = actions(&doc);
    assert_eq!(a[0]["outcome"], "skipped", "{:#}", a[0]);
    assert_eq!(a[1]["if"], "fail");
    assert_eq!(a[1]["outcome"], "done", "{:#}", a[1]);
    assert_eq!(a[1]["exec"]["exitCode"], 0, "{:#}", a[1]);
    let (revision, values) = release(&plane);
    assert_eq!(revision, 3, "{values:#}");
    assert_eq!(values["version"], "v1", "{values:#}");
    assert_eq!(values["image"], "ghcr.io/slogate/hello:v1", "{values:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn if_selects_the_actions_and_failures_timeouts_and_long_output_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let token = token_file.display();
    let base = HelloServer::start(behavior()).await.unwrap();
    let cand = HelloServer::start(behavior()).await.unwrap();
    let actions_yaml = format!(
        r#"actions:
  finish:
    - exec: {{cmd: echo, args: ["{{{{promote}}}}", "{{{{winner.name}}}}", "{{{{name}}}}", "{{{{verdict}}}}", "{{{{versions.current.variables.promote}}}}"]}}
    - if: fail
      exec: {{cmd: echo, args: [never]}}
    - if: always
      exec: {{cmd: sh, args: [-c, 'echo "it broke: $WHY" >&2; exit 3'], env: {{WHY: "{{{{reason}}}}"}}}}
    - if: winner=current
      exec: {{cmd: echo, args: [never]}}
    - if: winner=candidate
      exec: {{cmd: sh, args: [-c, 'sleep 30 & echo $!; wait'], timeout: 1s}}
    - if: always
      exec: {{cmd: sh, args: [-c, 'yes slogate | head -c 10000; echo THE-END']}}
    - if: fail
      pullRequest: {{owner: o, repo: r, base: master, head: staging, tokenFile: "{token}", apiUrl: "http://127.0.0.1:1"}}
    - if: always
      exec: {{cmd: cat, args: ["{token}"]}}
    - if: always
      exec: {{cmd: /no/such/program}}
    - if: always
      exec: {{cmd: sh, args: [-c, 'echo started; sleep 5 &']}}
"#
    );
    let (doc, result, stderr) = run(
        dir.path(),
        canary_spec(&base.url(), &cand.url(), &actions_yaml),
    )
    .await;
    assert_eq!(doc["verdict"]["pass"], true, "{:#}", doc["verdict"]);
    assert_eq!(doc["winner"]["name"], "candidate", "{:#}", doc["winner"]);
    let a = actions(&doc);
    assert_eq!(a.len(), 10, "{a:#?}");
    let outcome = |i: usize| {
        (
            a[i]["outcome"].as_str().unwrap(),
            a[i]["detail"].as_str().unwrap(),
        )
    };

    // if: pass (the default) ran, its arguments rendered from the result.
    assert_eq!(a[0]["if"], "pass");
    assert_eq!(outcome(0).0, "done", "{:#}", a[0]);
    assert_eq!(
        a[0]["exec"]["stdout"]["text"],
        "candidate candidate exp pass baseline\n"
    );
    assert_eq!(outcome(1), ("skipped", "if: fail, but the verdict is PASS"));
    assert!(a[1].get("exec").is_none(), "{:#}", a[1]);

    // A non-zero exit is a failed action; its output and status are kept.
    assert_eq!(outcome(2).0, "failed", "{:#}", a[2]);
    assert!(outcome(2).1.ends_with("→ exit 3"), "{:#}", a[2]);
    assert_eq!(a[2]["exec"]["exitCode"], 3);
    assert!(
        a[2]["exec"]["stderr"]["text"]
            .as_str()
            .unwrap()
            .starts_with("it broke: "),
        "{:#}",
        a[2]
    );

    assert_eq!(
        outcome(3),
        ("skipped", "if: winner=current, but the winner is candidate")
    );

    // The timeout kills the command well before it would end by itself.
    assert_eq!(outcome(4).0, "failed", "{:#}", a[4]);
    assert!(outcome(4).1.contains("timed out after 1s"), "{:#}", a[4]);
    assert!(a[4]["exec"]["durationSeconds"].as_f64().unwrap() < 10.0);
    assert!(a[4]["exec"].get("exitCode").is_none(), "{:#}", a[4]);
    // What the command started went with it: the whole process group was killed.
    let printed = a[4]["exec"]["stdout"]["text"].as_str().unwrap_or_default();
    let started: u32 = printed
        .split_whitespace()
        .next()
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("the pid the command printed, in {:#}", a[4]));
    let state = std::fs::read_to_string(format!("/proc/{started}/stat")).unwrap_or_default();
    assert!(
        state.is_empty() || state.contains(") Z "),
        "the command's background sleep {started} still runs: {state}"
    );

    // Long output: the end is kept, and how much was cut is said.
    let out = &a[5]["exec"]["stdout"];
    assert_eq!(out["bytes"], 10_008, "{out:#}");
    assert_eq!(out["cutBytes"], 10_008 - 4096, "{out:#}");
    assert!(
        out["text"].as_str().unwrap().ends_with("THE-END\n"),
        "{out:#}"
    );
    assert_eq!(out["text"].as_str().unwrap().len(), 4096);

    assert_eq!(a[6]["kind"], "pullRequest");
    assert_eq!(outcome(6), ("skipped", "if: fail, but the verdict is PASS"));
    // The `promotion` field is the pull request's: none ran, so none is recorded there.
    assert!(doc.get("promotion").is_none(), "{doc:#}");

    // A command that prints the token's file shows it redacted.
    assert_eq!(outcome(7).0, "done", "{:#}", a[7]);
    assert_eq!(a[7]["exec"]["stdout"]["text"], "[redacted]\n");

    assert_eq!(outcome(8).0, "failed");
    assert!(
        outcome(8).1.starts_with("cannot start /no/such/program: "),
        "{:#}",
        a[8]
    );

    // A process left behind holding the output does not hold the run: what was read is kept.
    assert_eq!(outcome(9).0, "done", "{:#}", a[9]);
    let left = a[9]["exec"]["stdout"]["text"].as_str().unwrap();
    assert!(
        left.starts_with("started\n") && left.contains("still open when the command ended"),
        "{left}"
    );

    let raw = std::fs::read_to_string(&result).unwrap();
    assert!(!raw.contains(TOKEN), "the token is in the result");
    assert!(!stderr.contains(TOKEN), "the token is in the log: {stderr}");
    let report = text(&slogate(&["describe", "-f", result.to_str().unwrap()]).stdout);
    assert!(!report.contains(TOKEN));
    assert!(
        report.contains(
            "- exec (actions.finish[1], if fail): skipped: if: fail, but the verdict is PASS"
        ),
        "{report}"
    );
    assert!(
        report.contains("✘ exec (actions.finish[2], if always): failed: sh -c echo \"it broke: $WHY\" >&2; exit 3 → exit 3\n    it broke: "),
        "{report}"
    );
}

#[test]
fn bad_actions_exit_64_naming_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.yaml");
    let versions = "name: exp\nversions: [{name: v1, url: 'http://127.0.0.1:1/'}]\n";
    std::fs::write(
        &spec,
        format!(
            "{versions}actions:\n  finish:\n\
             \x20   - exec: {{cmd: ''}}\n\
             \x20   - {{if: sometimes, exec: {{cmd: helm, timeout: 0s}}}}\n\
             \x20   - gitlab: {{}}\n\
             \x20   - {{exec: {{cmd: helm}}, pullRequest: {{owner: o, repo: r, base: a, head: b}}}}\n"
        ),
    )
    .unwrap();
    let out = slogate(&["run", "--spec", spec.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    for expected in [
        "actions.finish[0].exec.cmd: empty",
        "actions.finish[1].if: \"sometimes\" is not a condition",
        "actions.finish[1].exec.timeout: must be longer than 0s",
        "actions.finish[2].gitlab: unknown field",
        "actions.finish[3]: names two actions",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }

    // Templates that do not parse are refused before any load, every one of them named.
    std::fs::write(
        &spec,
        format!(
            "{versions}actions:\n  finish:\n\
             \x20   - exec: {{cmd: helm, args: [ok, '{{{{#if pass}}}}unclosed']}}\n\
             \x20   - exec: {{cmd: helm, env: {{X: '{{{{promote'}}}}\n"
        ),
    )
    .unwrap();
    let out = slogate(&["run", "--spec", spec.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(
        err.contains("actions.finish[0].exec.args[1]: the template does not parse"),
        "{err}"
    );
    assert!(
        err.contains("actions.finish[1].exec.env.X: the template does not parse"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigterm_while_a_command_runs_kills_it_and_records_it_interrupted() {
    let server = HelloServer::start(Behavior::new().latency(Duration::from_millis(1)))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("pid");
    let spec = dir.path().join("spec.yaml");
    std::fs::write(
        &spec,
        format!(
            "name: exp\nversions: [{{name: v1, url: '{}'}}]\nload: {{numRequests: 100}}\n\
             actions:\n  finish:\n    - if: always\n      exec: {{cmd: sh, args: [-c, 'echo $$ > {}; exec sleep 60']}}\n",
            server.url(),
            marker.display()
        ),
    )
    .unwrap();
    let result = dir.path().join("result.json");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_slogate"))
        .args(["run", "--spec", spec.to_str().unwrap()])
        .args(["--result-file", result.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut pid = None;
    for _ in 0..300 {
        if let Some(p) = std::fs::read_to_string(&marker)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
        {
            pid = Some(p);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pid = pid.expect("the command never started");
    // While it runs, the document says so, and names no pull request that is not there.
    let during: Value = serde_json::from_str(&std::fs::read_to_string(&result).unwrap()).unwrap();
    assert!(
        schema_errors(&during).is_empty(),
        "{:#?}",
        schema_errors(&during)
    );
    assert_eq!(during["stage"], "Finishing", "{during:#}");
    assert_eq!(actions(&during)[0]["outcome"], "running", "{during:#}");
    let report = text(&slogate(&["describe", "-f", result.to_str().unwrap()]).stdout);
    assert!(
        report.contains("… exec (actions.finish[0], if always): running: under way"),
        "{report}"
    );
    assert!(report.contains("Promotion: none configured"), "{report}");
    common::signal(child.id().unwrap(), "TERM");
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("slogate ended soon after SIGTERM")
        .unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "the verdict was final: the run completed"
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&result).unwrap()).unwrap();
    assert!(schema_errors(&doc).is_empty(), "{:#?}", schema_errors(&doc));
    let action = &actions(&doc)[0];
    assert_eq!(action["outcome"], "interrupted", "{action:#}");
    assert_eq!(
        action["detail"], "Interrupted: SIGTERM: the command was killed",
        "{action:#}"
    );
    assert_eq!(doc["stage"], "Completed", "{doc:#}");
    assert!(doc["verdict"].is_object(), "the verdict stands: {doc:#}");
    // The command went with the run (once slogate is gone, nothing is left to reap it late).
    let proc = PathBuf::from(format!("/proc/{pid}"));
    for _ in 0..50 {
        if !proc.exists() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let state = std::fs::read_to_string(proc.join("status")).unwrap_or_default();
    panic!("the command {pid} still runs: {state}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_file_given_on_the_command_line_is_redacted_without_any_pull_request() {
    let server = HelloServer::start(Behavior::new().latency(Duration::from_millis(1)))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let spec = dir.path().join("spec.yaml");
    std::fs::write(
        &spec,
        format!(
            "name: exp\nversions: [{{name: v1, url: '{}'}}]\nload: {{numRequests: 50}}\n\
             actions:\n  finish:\n    - exec: {{cmd: cat, args: ['{}']}}\n",
            server.url(),
            token_file.display()
        ),
    )
    .unwrap();
    let result = dir.path().join("result.json");
    let out = slogate_async(vec![
        "run".into(),
        "--spec".into(),
        spec.to_str().unwrap().into(),
        "--result-file".into(),
        result.to_str().unwrap().into(),
        "--token-file".into(),
        token_file.to_str().unwrap().into(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let raw = std::fs::read_to_string(&result).unwrap();
    let doc: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(actions(&doc)[0]["exec"]["stdout"]["text"], "[redacted]");
    assert!(!raw.contains(TOKEN) && !text(&out.stderr).contains(TOKEN));
}
