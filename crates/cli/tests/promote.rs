//! `slogate run` with promotion, as a user runs it: the built binary loads the hello service
//! on loopback and promotes through the GitHub double of `slogate-github`'s tests, whose every
//! request is checked against GitHub's OpenAPI description.

mod common;
#[path = "../../github/tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use slogate_hello::{Behavior, HelloServer};
use support::{GitHubDouble, HEAD_SHA};

const TOKEN: &str = "ghp_CliLeakCanary0a1b2c3d4e5f6a7b8c9d0e1f2";

async fn slogate(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_slogate"))
            .args(&args)
            .env("RUST_LOG", "trace")
            .output()
            .expect("the slogate binary runs")
    })
    .await
    .unwrap()
}

/// The latency SLO is on p95: its order-statistic bound is not thrown by one slow request on a
/// busy test machine, where the mean of a 1 ms service would be too skewed to judge.
fn write_spec(dir: &Path, service: &str, api_url: &str, latency_limit: f64) -> PathBuf {
    let spec = format!(
        r#"name: hello-slo
namespace: staging
versions:
  - name: candidate
    url: {service}
load: {{ connections: 2, numRequests: 400 }}
slos:
  - {{ metric: http/error-rate, upperLimit: 0.0 }}
  - {{ metric: http/latency-p95, upperLimit: {latency_limit} }}
promotion:
  owner: octo
  repo: hello
  base: master
  head: staging
  apiUrl: {api_url}
  labels: [slo-validated]
  reviewers: [alice]
"#
    );
    let path = dir.join("spec.yaml");
    std::fs::write(&path, spec).unwrap();
    path
}

/// The result document with its promotion outcome is valid under the committed schema.
fn assert_valid(doc: &serde_json::Value) {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../../schemas/result.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_opens_the_pr_then_updates_it_and_never_shows_the_token() {
    let server = HelloServer::start(Behavior::new().latency(Duration::from_millis(1)))
        .await
        .unwrap();
    let double = GitHubDouble::start("octo", "hello", TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let spec = write_spec(dir.path(), &server.url(), &double.url, 50.0);
    // A finish command that prints the token's file and its environment: what it printed
    // is kept in the result, the token redacted.
    let mut text = std::fs::read_to_string(&spec).unwrap();
    text.push_str(&format!(
        "actions:\n  finish:\n    - {{if: always, exec: {{cmd: sh, args: [-c, 'cat {}; env']}}}}\n",
        s(&token_file)
    ));
    std::fs::write(&spec, text).unwrap();
    let result = dir.path().join("result.json");
    let args = vec![
        "run".to_owned(),
        "--spec".into(),
        s(&spec),
        "--result-file".into(),
        s(&result),
        "--token-file".into(),
        s(&token_file),
    ];

    let mut seen = String::new();
    for (round, expected) in [(1, "opened"), (2, "updated")] {
        let out = slogate(args.clone()).await;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "round {round}: {stderr}");
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&result).unwrap()).unwrap();
        assert_eq!(doc["verdict"]["pass"], true, "{doc:#}");
        assert_eq!(doc["promotion"]["outcome"], expected, "{doc:#}");
        assert_valid(&doc);
        assert_eq!(doc["actions"][0]["kind"], "pullRequest", "{doc:#}");
        assert_eq!(doc["actions"][0]["outcome"], "done", "{doc:#}");
        assert_eq!(doc["actions"][0]["pullRequest"]["outcome"], expected);
        let printed = doc["actions"][1]["exec"]["stdout"]["text"]
            .as_str()
            .unwrap();
        assert!(printed.starts_with("[redacted]\n"), "{printed}");
        assert!(
            printed.contains("PATH="),
            "the environment was printed: {printed}"
        );
        assert_eq!(doc["promotion"]["number"], 1);
        assert_eq!(
            doc["promotion"]["url"],
            "https://github.com/octo/hello/pull/1"
        );
        assert!(
            stderr.contains("pull request #1: https://github.com/octo/hello/pull/1"),
            "{stderr}"
        );
        let status = &doc["promotion"]["commitStatus"];
        assert_eq!(status["state"], "success", "{doc:#}");
        assert_eq!(status["sha"], HEAD_SHA);
        assert_eq!(status["context"], "slogate/slo");
        assert!(
            stderr.contains(&format!("commit status slogate/slo: success on {HEAD_SHA}")),
            "{stderr}"
        );
        seen.push_str(&stderr);
        seen.push_str(&String::from_utf8_lossy(&out.stdout));
        seen.push_str(&std::fs::read_to_string(&result).unwrap());
    }
    double.assert_conforming();
    {
        let st = double.state();
        assert_eq!(st.prs.len(), 1, "re-running made no second PR");
        assert!(st.prs[0].body.contains("hello-slo"), "{}", st.prs[0].body);
        assert_eq!(st.prs[0].labels, ["slo-validated"]);
        assert_eq!(st.statuses.len(), 2);
        assert!(
            st.statuses
                .iter()
                .all(|(_, b)| b["state"] == "success" && b["context"] == "slogate/slo")
        );
        for pr in &st.prs {
            seen.push_str(&pr.title);
            seen.push_str(&pr.body);
        }
    }
    assert!(seen.contains("slogate_github"), "TRACE logs were captured");
    assert!(
        !seen.contains(TOKEN) && !seen.contains("CliLeakCanary"),
        "the token leaked:\n{seen}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_promotion_keeps_the_verdict_and_exit_code() {
    let server = HelloServer::start(Behavior::new().latency(Duration::from_millis(1)))
        .await
        .unwrap();
    let double = GitHubDouble::start("octo", "hello", TOKEN).await;
    double.state().no_commits = true;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let spec = write_spec(dir.path(), &server.url(), &double.url, 50.0);
    let result = dir.path().join("result.json");
    let out = slogate(vec![
        "run".into(),
        "--spec".into(),
        s(&spec),
        "--result-file".into(),
        s(&result),
        "--token-file".into(),
        s(&token_file),
    ])
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&result).unwrap()).unwrap();
    assert_eq!(doc["verdict"]["pass"], true);
    assert_eq!(doc["promotion"]["outcome"], "failed");
    assert!(
        doc["promotion"]["reason"]
            .as_str()
            .unwrap()
            .contains("No commits between master and staging"),
        "{doc:#}"
    );
    assert!(
        stderr.contains("promotion failed (the SLO verdict stands)"),
        "{stderr}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_verdict_and_dry_run_send_nothing() {
    let server = HelloServer::start(Behavior::new().latency(Duration::from_millis(1)))
        .await
        .unwrap();
    let double = GitHubDouble::start("octo", "hello", TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let result = dir.path().join("result.json");

    // A p95 latency limit no service meets: the verdict fails, promotion is skipped.
    let spec = write_spec(dir.path(), &server.url(), &double.url, 0.0001);
    let out = slogate(vec![
        "run".into(),
        "--spec".into(),
        s(&spec),
        "--result-file".into(),
        s(&result),
    ])
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&result).unwrap()).unwrap();
    assert_eq!(doc["verdict"]["pass"], false);
    assert_eq!(doc["promotion"]["outcome"], "skipped", "{doc:#}");

    // A passing run with --dry-run prints the PR and needs no token.
    let spec = write_spec(dir.path(), &server.url(), &double.url, 50.0);
    let out = slogate(vec![
        "run".into(),
        "--spec".into(),
        s(&spec),
        "--result-file".into(),
        s(&result),
        "--dry-run".into(),
    ])
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("# Promote staging to master: hello-slo satisfies its SLOs"),
        "{stderr}"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&result).unwrap()).unwrap();
    assert_eq!(doc["promotion"]["outcome"], "dryRun");
    assert!(
        double.state().received.is_empty(),
        "no request reached GitHub"
    );
    server.shutdown().await;
}

#[test]
fn template_typo_is_invalid_input_before_any_load() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.yaml");
    std::fs::write(
        &spec,
        "name: t\nversions: [{name: v, url: 'http://127.0.0.1:9/'}]\npromotion: {owner: o, repo: r, base: master, head: staging, title: '{{#if pass}}x'}\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_slogate"))
        .args(["run", "--spec", spec.to_str().unwrap(), "--dry-run"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("promotion.title"), "{stderr}");
}

/// Polls the result file until its stage is `stage` (or the run ends), for up to 60 s.
async fn wait_for_stage(result: &Path, stage: &str) -> serde_json::Value {
    for _ in 0..600 {
        if let Ok(text) = std::fs::read_to_string(result)
            && let Ok(doc) = serde_json::from_str::<serde_json::Value>(&text)
            && doc["stage"] == stage
        {
            return doc;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the result never reached stage {stage}");
}

/// Starts `slogate run` with promotion in the background.
fn spawn_run(spec: &Path, result: &Path, token_file: &Path) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_slogate"))
        .args(["run", "--spec", &s(spec), "--result-file", &s(result)])
        .args(["--token-file", &s(token_file), "--publish-every", "300ms"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completed_is_not_claimed_while_the_pull_request_is_being_opened() {
    let server = HelloServer::start(Behavior::new().latency(Duration::from_millis(1)))
        .await
        .unwrap();
    let double = GitHubDouble::start("octo", "hello", TOKEN).await;
    // GitHub keeps the promotion waiting for a few seconds.
    double.inject("pulls/list", support::Fault::secondary_rate_limit(4));
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let spec = write_spec(dir.path(), &server.url(), &double.url, 50.0);
    let result = dir.path().join("result.json");
    let child = spawn_run(&spec, &result, &token_file);

    let finishing = wait_for_stage(&result, "Finishing").await;
    assert_valid(&finishing);
    assert_eq!(finishing["verdict"]["pass"], true, "{finishing:#}");
    assert!(finishing.get("endTime").is_none());
    let f = s(&result);
    let assert_out = slogate(vec![
        "assert".into(),
        "-f".into(),
        f.clone(),
        "-c".into(),
        "completed".into(),
    ])
    .await;
    assert_eq!(
        assert_out.status.code(),
        Some(2),
        "completed must not hold while promotion is under way: {}",
        String::from_utf8_lossy(&assert_out.stdout)
    );
    assert!(
        String::from_utf8_lossy(&assert_out.stderr).contains("completed not decided yet"),
        "{}",
        String::from_utf8_lossy(&assert_out.stderr)
    );
    // The verdict is final already: `slos` holds.
    let slos = slogate(vec![
        "assert".into(),
        "-f".into(),
        f.clone(),
        "-c".into(),
        "slos".into(),
    ])
    .await;
    assert_eq!(slos.status.code(), Some(0));
    let describe = slogate(vec!["describe".into(), "-f".into(), f.clone()]).await;
    let text = String::from_utf8_lossy(&describe.stdout);
    assert!(text.contains("Finishing (promotion under way)"), "{text}");
    assert!(text.contains("Promotion: in progress"), "{text}");
    assert!(!text.contains("none configured"), "{text}");

    let out = child.wait_with_output().await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&result).unwrap()).unwrap();
    assert_valid(&doc);
    assert_eq!(doc["stage"], "Completed");
    assert_eq!(doc["promotion"]["outcome"], "opened", "{doc:#}");
    let done = slogate(vec![
        "assert".into(),
        "-f".into(),
        f,
        "-c".into(),
        "completed".into(),
    ])
    .await;
    assert_eq!(done.status.code(), Some(0));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_rate_limit_wait_ends_promotion_as_interrupted_at_once() {
    let server = HelloServer::start(Behavior::new().latency(Duration::from_millis(1)))
        .await
        .unwrap();
    let double = GitHubDouble::start("octo", "hello", TOKEN).await;
    // The report's case: a 429 asking for 120 s, within the 300 s slogate waits at most.
    double.inject("pulls/list", support::Fault::secondary_rate_limit(120));
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let spec = write_spec(dir.path(), &server.url(), &double.url, 50.0);
    let result = dir.path().join("result.json");
    let mut child = spawn_run(&spec, &result, &token_file);

    wait_for_stage(&result, "Finishing").await;
    // Let the rate limit's wait begin.
    for _ in 0..100 {
        if !double.state().received.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    common::signal(child.id().unwrap(), "TERM");
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("slogate stops well within Kubernetes' 30 s grace period")
        .unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "the verdict was reached; the run completed"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&result).unwrap()).unwrap();
    assert_valid(&doc);
    assert_eq!(doc["stage"], "Completed", "{doc:#}");
    assert_eq!(doc["verdict"]["pass"], true);
    assert_eq!(doc["promotion"]["outcome"], "interrupted", "{doc:#}");
    assert_eq!(doc["promotion"]["reason"], "Interrupted: SIGTERM");
    assert_eq!(
        double.ops(),
        ["pulls/list"],
        "nothing was sent after the signal"
    );
    let describe = slogate(vec!["describe".into(), "-f".into(), s(&result)]).await;
    let text = String::from_utf8_lossy(&describe.stdout);
    assert!(
        text.contains("Promotion: INTERRUPTED before it ended (Interrupted: SIGTERM)"),
        "{text}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reviewer_github_refused_shows_in_describe() {
    let server = HelloServer::start(Behavior::new().latency(Duration::from_millis(1)))
        .await
        .unwrap();
    let double = GitHubDouble::start("octo", "hello", TOKEN).await;
    double.inject(
        "pulls/request-reviewers",
        support::Fault {
            status: 422,
            headers: vec![],
            body: serde_json::json!({"message": "Reviews may only be requested from collaborators. One or more of the users or teams you specified is not a collaborator of the octo/hello repository.", "documentation_url": "https://docs.github.com/rest/pulls/review-requests#request-reviewers-for-a-pull-request"}),
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let spec = write_spec(dir.path(), &server.url(), &double.url, 50.0);
    let result = dir.path().join("result.json");
    let out = slogate(vec![
        "run".into(),
        "--spec".into(),
        s(&spec),
        "--result-file".into(),
        s(&result),
        "--token-file".into(),
        s(&token_file),
    ])
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (format, expected) in [
        (
            "text",
            "  ! requesting reviewers failed: GitHub answered 422",
        ),
        (
            "markdown",
            "- ⚠ requesting reviewers failed: GitHub answered 422",
        ),
        (
            "html",
            "<dt>Promotion warning</dt><dd class=\"bad\">requesting reviewers failed: GitHub answered 422",
        ),
    ] {
        let d = slogate(vec![
            "describe".into(),
            "-f".into(),
            s(&result),
            "-o".into(),
            format.into(),
        ])
        .await;
        let printed = String::from_utf8_lossy(&d.stdout);
        assert!(printed.contains(expected), "{format}:\n{printed}");
        assert!(
            printed.contains("Reviews may only be requested from collaborators"),
            "{format}"
        );
    }
    double.assert_conforming();
    server.shutdown().await;
}

/// A Canary's winner promoted by one commit: the spec's `gitops` action renders a template
/// and a command's output from the result, commits both in one commit onto the tested head,
/// opens the pull request, and a command printing the token's file is refused before
/// anything is sent. The token is nowhere in what a user sees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_commits_the_winners_files_once_and_opens_the_pull_request() {
    let baseline = HelloServer::start(Behavior::new().latency(Duration::from_millis(1)))
        .await
        .unwrap();
    let candidate = HelloServer::start(Behavior::new().latency(Duration::from_millis(1)))
        .await
        .unwrap();
    let double = GitHubDouble::start("octo", "hello", TOKEN).await;
    let tested = double.seed_branch(
        "octo",
        "hello",
        "staging",
        &[("prod/values.yaml", "image: hello:1.0\n")],
    );
    double.seed_branch("octo", "hello", "master", &[("README.md", "env\n")]);
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let spec = dir.path().join("spec.yaml");
    let write = |leaky: bool| {
        let command = if leaky {
            format!("[-c, 'cat {}']", s(&token_file))
        } else {
            "[-c, 'echo \"kind: Deployment\"; echo \"image: {{image}}\"']".to_owned()
        };
        std::fs::write(
            &spec,
            format!(
                r#"name: hello-gitops
strategy: {{testingPattern: Canary}}
versions:
  - {{name: current, role: baseline, url: '{}', variables: {{image: 'hello:1.0'}}}}
  - {{name: candidate, url: '{}', variables: {{image: 'hello:1.1'}}}}
load: {{connections: 2, numRequests: 300}}
slos:
  - {{metric: http/error-rate, upperLimit: 0.5}}
actions:
  finish:
    - if: always
      gitops:
        owner: octo
        repo: hello
        branch: staging
        base: master
        headSha: {tested}
        apiUrl: {}
        message: "promote {{{{winner.name}}}}: {{{{image}}}}"
        files:
          - {{path: prod/values.yaml, template: "image: {{{{image}}}}\n"}}
          - {{path: prod/deployment.yaml, command: {{cmd: sh, args: {command}}}}}
"#,
                baseline.url(),
                candidate.url(),
                double.url
            ),
        )
        .unwrap();
    };
    let result = dir.path().join("result.json");
    let args = vec![
        "run".to_owned(),
        "--spec".into(),
        s(&spec),
        "--result-file".into(),
        s(&result),
        "--token-file".into(),
        s(&token_file),
    ];
    let mut seen = String::new();

    write(true);
    let out = slogate(args.clone()).await;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&result).unwrap()).unwrap();
    assert_valid(&doc);
    let action = &doc["actions"][0];
    assert_eq!(action["outcome"], "failed", "{doc:#}");
    assert!(
        action["detail"]
            .as_str()
            .unwrap()
            .contains("prod/deployment.yaml holds a GitHub token; it is not committed"),
        "{doc:#}"
    );
    assert_eq!(double.commit_calls(), 0, "nothing was sent");
    assert_eq!(
        double.branch_tip("octo", "hello", "staging").as_deref(),
        Some(tested.as_str())
    );
    seen.push_str(&stderr);
    seen.push_str(&std::fs::read_to_string(&result).unwrap());

    write(false);
    let out = slogate(args).await;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&result).unwrap()).unwrap();
    assert_valid(&doc);
    let action = &doc["actions"][0];
    assert_eq!(action["kind"], "gitops");
    assert_eq!(action["outcome"], "done", "{doc:#}");
    let winner = doc["winner"]["name"].as_str().unwrap().to_owned();
    let image = if winner == "candidate" {
        "hello:1.1"
    } else {
        "hello:1.0"
    };
    let tip = double.branch_tip("octo", "hello", "staging").unwrap();
    assert_eq!(action["gitops"]["commit"], tip.as_str());
    assert_eq!(action["gitops"]["parent"], tested.as_str());
    assert_eq!(action["pullRequest"]["outcome"], "opened", "{doc:#}");
    let files = double.files_at("octo", "hello", "staging");
    assert_eq!(
        files["prod/deployment.yaml"],
        format!("kind: Deployment\nimage: {image}\n")
    );
    let log = double.branch_log("octo", "hello", "staging");
    assert_eq!(log[0].headline, format!("promote {winner}: {image}"));
    assert_eq!(log[0].parents, vec![tested.clone()]);
    if winner == "candidate" {
        assert_eq!(log[0].paths.len(), 2, "both files in one commit: {log:#?}");
    }
    assert_eq!(double.commit_successes(), 1);
    assert_eq!(double.graphql_refused(), Vec::<String>::new());
    double.assert_conforming();
    seen.push_str(&stderr);
    seen.push_str(&std::fs::read_to_string(&result).unwrap());
    seen.push_str(&format!("{:?}", double.graphql_ops()));
    for (path, content) in &files {
        seen.push_str(path);
        seen.push_str(content);
    }
    assert!(
        !seen.contains(TOKEN) && !seen.contains("CliLeakCanary"),
        "the token leaked:\n{seen}"
    );
    baseline.shutdown().await;
    candidate.shutdown().await;
}
