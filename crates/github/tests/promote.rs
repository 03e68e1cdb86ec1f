//! Promotion against the local GitHub double: every request is checked against GitHub's
//! OpenAPI description, and the double's state shows what a user would see on GitHub.

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use slogate_core::result::{
    CommitStatus, ExperimentResult, OverallVerdict, PromotionOutcome, Stage,
};
use slogate_core::spec::{ExperimentSpec, PromoteWhen, PromotionSpec};
use slogate_github::{Options, Promotion, RetryPolicy, promote_result};
use support::{Fault, GitHubDouble, HEAD_SHA};

const TOKEN: &str = "ghp_TestTokenForTheDouble0123456789abcd";

struct Fixture {
    double: GitHubDouble,
    _dir: tempfile::TempDir,
    token_file: PathBuf,
}

async fn fixture() -> Fixture {
    fixture_with_token(TOKEN, TOKEN).await
}

/// A double accepting `accepted`, and a token file holding `in_file`.
async fn fixture_with_token(accepted: &str, in_file: &str) -> Fixture {
    let double = GitHubDouble::start("octo", "hello", accepted).await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{in_file}\n")).unwrap();
    Fixture {
        double,
        _dir: dir,
        token_file,
    }
}

fn spec(api_url: &str) -> PromotionSpec {
    PromotionSpec {
        api_url: api_url.into(),
        ..PromotionSpec::new("octo", "hello", "master", "staging")
    }
}

fn result(pass: bool) -> ExperimentResult {
    let exp = ExperimentSpec::from_yaml(
        "name: my-exp\nnamespace: staging\nversions: [{name: candidate, url: 'http://127.0.0.1:1/'}]\n",
    )
    .unwrap();
    let mut r = ExperimentResult::running(&exp, jiff::Timestamp::UNIX_EPOCH);
    r.stage = Stage::Completed;
    r.end_time = Some(jiff::Timestamp::UNIX_EPOCH);
    r.verdict = Some(OverallVerdict {
        pass,
        reason: if pass {
            "every SLO is satisfied at 95 % confidence.".into()
        } else {
            "http/latency-p95 is violated at 95 % confidence.".into()
        },
    });
    r
}

/// Fast retries, and rate-limit waits of a few seconds at most.
fn options() -> Options {
    Options {
        dry_run: false,
        retry: RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(100),
            max_rate_limit_wait: Duration::from_secs(3),
            // GitHub's "at least a minute", scaled down.
            secondary_limit_wait: Duration::from_millis(200),
            budget: Duration::from_secs(20),
            connect_timeout: Duration::from_secs(2),
            read_timeout: Duration::from_secs(5),
        },
    }
}

async fn run(f: &Fixture, spec: &PromotionSpec, result: &ExperimentResult) -> Promotion {
    promote_result(spec, result, Some(&f.token_file), &options()).await
}

fn failed_reason(p: &Promotion) -> &str {
    match &p.outcome {
        PromotionOutcome::Failed { reason } => reason,
        other => panic!("expected Failed, got {other:?}"),
    }
}

#[tokio::test]
async fn create_opens_the_pr_with_labels_reviewers_and_commit_status() {
    let f = fixture().await;
    let mut s = spec(&f.double.url);
    s.labels = vec!["slo-passed".into(), "automated".into()];
    s.reviewers = vec!["alice".into()];
    let r = result(true);
    let p = run(&f, &s, &r).await;

    assert_eq!(
        p.outcome,
        PromotionOutcome::Opened {
            number: 1,
            url: "https://github.com/octo/hello/pull/1".into(),
            commit_status: Some(CommitStatus {
                state: "success".into(),
                sha: HEAD_SHA.into(),
                context: "slogate/slo".into(),
                error: None,
            }),
            warnings: Vec::new(),
        }
    );
    // The result document carries the commit status the PR's checks list shows.
    let mut recorded = r.clone();
    recorded.promotion = Some(p.outcome.clone());
    let doc: serde_json::Value = serde_json::from_str(&recorded.to_json()).unwrap();
    assert_eq!(doc["promotion"]["commitStatus"]["state"], "success");
    assert_eq!(doc["promotion"]["commitStatus"]["sha"], HEAD_SHA);
    assert_eq!(doc["promotion"]["commitStatus"]["context"], "slogate/slo");
    assert!(doc["promotion"].get("warnings").is_none(), "{doc}");
    f.double.assert_conforming();
    assert_eq!(
        f.double.ops(),
        [
            "pulls/list",
            "pulls/create",
            "issues/add-labels",
            "pulls/request-reviewers",
            "repos/create-commit-status"
        ]
    );
    assert_eq!(p.requests, 5);
    let st = f.double.state();
    let list = &st.received[0];
    assert!(list.uri.contains("head=octo%3Astaging"), "{}", list.uri);
    assert!(
        list.uri.contains("base=master") && list.uri.contains("state=open"),
        "{}",
        list.uri
    );
    let pr = &st.prs[0];
    assert_eq!((pr.head.as_str(), pr.base.as_str()), ("staging", "master"));
    assert_eq!(
        pr.title,
        "Promote staging to master: my-exp satisfies its SLOs"
    );
    assert_eq!(
        pr.body,
        slogate_report::render(&r, slogate_report::Format::Markdown).unwrap()
    );
    assert_eq!(pr.labels, ["slo-passed", "automated"]);
    assert_eq!(pr.reviewers, ["alice"]);
    let (sha, status) = &st.statuses[0];
    assert_eq!(sha, HEAD_SHA);
    assert_eq!(status["context"], "slogate/slo");
    assert_eq!(status["state"], "success");
    assert_eq!(
        status["description"],
        "SLOs satisfied: every SLO is satisfied at 95 % confidence."
    );
    assert_eq!(status["target_url"], "https://github.com/octo/hello/pull/1");
    let cs = p.commit_status().unwrap();
    assert_eq!((cs.state.as_str(), cs.error.as_deref()), ("success", None));
}

#[tokio::test]
async fn existing_pr_is_updated_not_duplicated() {
    let f = fixture().await;
    f.double.seed_pr(7, "staging", "master");
    f.double.seed_pr(8, "other", "master");
    let s = spec(&f.double.url);
    for _ in 0..2 {
        let p = run(&f, &s, &result(true)).await;
        assert_eq!(
            p.outcome,
            PromotionOutcome::Updated {
                number: 7,
                url: "https://github.com/octo/hello/pull/7".into(),
                commit_status: Some(CommitStatus {
                    state: "success".into(),
                    sha: HEAD_SHA.into(),
                    context: "slogate/slo".into(),
                    error: None,
                }),
                warnings: Vec::new(),
            }
        );
    }
    f.double.assert_conforming();
    let st = f.double.state();
    assert_eq!(st.prs.len(), 2, "no PR was added");
    assert_eq!(
        st.prs[0].title,
        "Promote staging to master: my-exp satisfies its SLOs"
    );
    assert!(st.prs[0].body.contains("my-exp"), "{}", st.prs[0].body);
    assert_eq!(st.prs[1].body, "earlier body", "the other PR is untouched");
    assert!(!st.received.iter().any(|r| r.op == "pulls/create"));
}

#[tokio::test]
async fn rerunning_after_opening_updates_the_same_pr() {
    let f = fixture().await;
    let s = spec(&f.double.url);
    let first = run(&f, &s, &result(true)).await;
    let second = run(&f, &s, &result(false)).await;
    assert!(
        matches!(first.outcome, PromotionOutcome::Opened { number: 1, .. }),
        "{first:?}"
    );
    // The second run failed its SLOs: with when=pass it makes no request at all.
    assert!(
        matches!(second.outcome, PromotionOutcome::Skipped { .. }),
        "{second:?}"
    );
    let mut always = s.clone();
    always.when = PromoteWhen::Always;
    let third = run(&f, &always, &result(false)).await;
    assert!(
        matches!(third.outcome, PromotionOutcome::Updated { number: 1, .. }),
        "{third:?}"
    );
    f.double.assert_conforming();
    let st = f.double.state();
    assert_eq!(st.prs.len(), 1);
    assert_eq!(
        st.prs[0].title,
        "my-exp: SLOs not satisfied (staging → master)"
    );
    assert_eq!(st.statuses.last().unwrap().1["state"], "failure");
}

#[tokio::test]
async fn create_racing_another_run_updates_the_pr_it_opened() {
    let f = fixture().await;
    // Another run opened the PR between this run's look-up and its create: GitHub answers
    // "already exists", and this run updates that PR instead of failing.
    f.double.seed_pr(3, "staging", "master");
    f.double.inject(
        "pulls/list",
        Fault {
            status: 200,
            headers: vec![],
            body: serde_json::json!([]),
        },
    );
    let p = run(&f, &spec(&f.double.url), &result(true)).await;
    assert!(
        matches!(p.outcome, PromotionOutcome::Updated { number: 3, .. }),
        "{p:?}"
    );
    assert_eq!(
        f.double.ops(),
        [
            "pulls/list",
            "pulls/create",
            "pulls/list",
            "pulls/update",
            "repos/create-commit-status"
        ]
    );
    assert_eq!(f.double.state().prs.len(), 1);
    f.double.assert_conforming();
}

#[tokio::test]
async fn rate_limits_are_waited_out_as_the_headers_say() {
    let f = fixture().await;
    f.double.inject("pulls/list", Fault::primary_rate_limit(1));
    f.double
        .inject("pulls/create", Fault::secondary_rate_limit(1));
    let started = Instant::now();
    let p = run(&f, &spec(&f.double.url), &result(true)).await;
    let waited = started.elapsed();
    assert!(
        matches!(p.outcome, PromotionOutcome::Opened { number: 1, .. }),
        "{p:?}"
    );
    f.double.assert_conforming();
    assert_eq!(
        f.double.ops(),
        [
            "pulls/list",
            "pulls/list",
            "pulls/create",
            "pulls/create",
            "repos/create-commit-status"
        ]
    );
    // Retry-After 1 s, and a reset 1 s ahead (+1 s for clock skew): at least 2 s waited,
    // bounded by the policy.
    assert!(waited >= Duration::from_secs(2), "waited {waited:?}");
    assert!(waited < Duration::from_secs(8), "waited {waited:?}");
}

#[tokio::test]
async fn rate_limit_longer_than_the_bound_fails_at_once() {
    let f = fixture().await;
    f.double
        .inject("pulls/list", Fault::secondary_rate_limit(3600));
    let started = Instant::now();
    let p = run(&f, &spec(&f.double.url), &result(true)).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    let reason = failed_reason(&p);
    assert!(reason.contains("rate limit asks to wait 3600s"), "{reason}");
    assert_eq!(f.double.ops(), ["pulls/list"]);
}

#[tokio::test]
async fn bad_gateway_twice_then_success() {
    let f = fixture().await;
    f.double.inject("pulls/create", Fault::bad_gateway());
    f.double.inject("pulls/create", Fault::bad_gateway());
    let p = run(&f, &spec(&f.double.url), &result(true)).await;
    assert!(
        matches!(p.outcome, PromotionOutcome::Opened { number: 1, .. }),
        "{p:?}"
    );
    f.double.assert_conforming();
    let creates = f
        .double
        .ops()
        .iter()
        .filter(|o| *o == "pulls/create")
        .count();
    assert_eq!(creates, 3);
    assert_eq!(f.double.state().prs.len(), 1);
}

#[tokio::test]
async fn persistent_server_errors_end_after_bounded_attempts() {
    let f = fixture().await;
    for _ in 0..10 {
        f.double.inject("pulls/list", Fault::bad_gateway());
    }
    let p = run(&f, &spec(&f.double.url), &result(true)).await;
    let reason = failed_reason(&p);
    assert!(reason.contains("failed 4 times"), "{reason}");
    assert!(reason.contains("502 Bad Gateway: Server Error"), "{reason}");
    assert_eq!(p.requests, 4);
}

#[tokio::test]
async fn connection_refused_is_retried_then_reported() {
    // A port that was just free: nothing listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let f = fixture().await;
    let p = run(
        &f,
        &spec(&format!("http://127.0.0.1:{port}")),
        &result(true),
    )
    .await;
    let reason = failed_reason(&p);
    assert!(
        reason.starts_with(
            "looking for an open pull request failed: GET /repos/octo/hello/pulls failed 4 times"
        ),
        "{reason}"
    );
    assert_eq!(p.requests, 4);
}

#[tokio::test]
async fn bad_credentials_fail_with_githubs_message_and_no_retry() {
    let f = fixture_with_token(TOKEN, "ghp_revokedTokenXXXXXXXXXXXXXXXXXXXXXX").await;
    let p = run(&f, &spec(&f.double.url), &result(true)).await;
    let reason = failed_reason(&p);
    assert_eq!(
        reason,
        "looking for an open pull request failed: GitHub answered 401 Unauthorized to GET /repos/octo/hello/pulls: Bad credentials (the token is not valid: expired, revoked or mistyped)"
    );
    assert_eq!(f.double.ops(), ["pulls/list"]);
    f.double.assert_conforming();
}

#[tokio::test]
async fn unknown_repository_fails_with_not_found() {
    let f = fixture().await;
    let mut s = spec(&f.double.url);
    s.repo = "no-such-repo".into();
    let p = run(&f, &s, &result(true)).await;
    let reason = failed_reason(&p);
    assert!(reason.contains("404 Not Found"), "{reason}");
    assert!(
        reason.contains("the repository does not exist, or the token cannot see it"),
        "{reason}"
    );
    assert_eq!(p.requests, 1);
}

#[tokio::test]
async fn no_commits_between_branches_fails_with_githubs_message() {
    let f = fixture().await;
    f.double.state().no_commits = true;
    let p = run(&f, &spec(&f.double.url), &result(true)).await;
    let reason = failed_reason(&p);
    assert_eq!(
        reason,
        "opening the pull request failed: GitHub answered 422 Unprocessable Entity to POST /repos/octo/hello/pulls: Validation Failed: No commits between master and staging"
    );
    assert_eq!(f.double.ops(), ["pulls/list", "pulls/create"]);
    assert!(p.commit_status().is_none());
    f.double.assert_conforming();
}

#[tokio::test]
async fn failed_verdict_makes_no_request_at_all() {
    let f = fixture().await;
    let p = run(&f, &spec(&f.double.url), &result(false)).await;
    let PromotionOutcome::Skipped { reason } = &p.outcome else {
        panic!("{p:?}")
    };
    assert!(reason.contains("verdict is fail"), "{reason}");
    assert_eq!(p.requests, 0);
    assert!(f.double.state().received.is_empty());
}

#[tokio::test]
async fn dry_run_renders_the_pr_and_makes_no_request() {
    let f = fixture().await;
    let mut s = spec(&f.double.url);
    s.body = Some("{{verdict}} for {{name}} in {{namespace}}\n\n{{report}}".into());
    let opts = Options {
        dry_run: true,
        ..options()
    };
    // No token file is needed for a dry run.
    let p = promote_result(&s, &result(true), None, &opts).await;
    let PromotionOutcome::DryRun { title, body } = &p.outcome else {
        panic!("{p:?}")
    };
    assert_eq!(
        title,
        "Promote staging to master: my-exp satisfies its SLOs"
    );
    assert!(body.starts_with("pass for my-exp in staging\n\n"), "{body}");
    assert!(f.double.state().received.is_empty());
}

#[tokio::test]
async fn missing_token_file_fails_naming_the_path() {
    let f = fixture().await;
    let missing = f._dir.path().join("absent");
    let p = promote_result(
        &spec(&f.double.url),
        &result(true),
        Some(&missing),
        &options(),
    )
    .await;
    assert_eq!(
        failed_reason(&p),
        format!(
            "cannot read the GitHub token file {}: No such file or directory (os error 2)",
            missing.display()
        )
    );
    let p = promote_result(&spec(&f.double.url), &result(true), None, &options()).await;
    assert!(failed_reason(&p).contains("--token-file"));
    assert!(f.double.state().received.is_empty());
}

#[tokio::test]
async fn failing_labels_leave_the_pr_and_status_in_place() {
    let f = fixture().await;
    let mut s = spec(&f.double.url);
    s.labels = vec!["x".into()];
    f.double.inject(
        "issues/add-labels",
        Fault {
            status: 422,
            headers: vec![],
            body: serde_json::json!({"message": "Validation Failed", "errors": [{"resource": "Label", "field": "name", "code": "invalid"}], "documentation_url": "https://docs.github.com/rest"}),
        },
    );
    let p = run(&f, &s, &result(true)).await;
    assert!(
        matches!(p.outcome, PromotionOutcome::Opened { .. }),
        "{p:?}"
    );
    assert_eq!(p.warnings().len(), 1);
    assert!(
        p.warnings()[0].starts_with("adding labels failed: GitHub answered 422"),
        "{:?}",
        p.warnings()
    );
    assert_eq!(f.double.state().statuses.len(), 1);
}

#[tokio::test]
async fn github_enterprise_api_path_prefix_is_kept() {
    let f = fixture().await;
    // GHE serves the API under /api/v3: the double does not, so every request 404s with a
    // path that shows the prefix was kept.
    let p = run(
        &f,
        &spec(&format!("{}/api/v3", f.double.url)),
        &result(true),
    )
    .await;
    failed_reason(&p);
    assert!(
        f.double.state().received[0]
            .uri
            .starts_with("/api/v3/repos/octo/hello/pulls?")
    );
}

#[tokio::test]
async fn a_server_that_never_answers_is_retried_within_the_timeouts() {
    // Accepts connections and reads requests, but never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let f = fixture().await;
    let mut opts = options();
    opts.retry.max_attempts = 2;
    opts.retry.read_timeout = Duration::from_millis(300);
    let started = Instant::now();
    let p = promote_result(&spec(&url), &result(true), Some(&f.token_file), &opts).await;
    let reason = failed_reason(&p);
    assert!(reason.contains("failed 2 times"), "{reason}");
    assert!(
        reason.contains("timed out") || reason.contains("timeout") || reason.contains("within"),
        "{reason}"
    );
    assert_eq!(p.requests, 2);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn secondary_rate_limit_403_without_retry_after_is_waited_out_not_blamed_on_the_token() {
    let f = fixture().await;
    f.double.inject(
        "pulls/create",
        Fault::secondary_rate_limit_without_retry_after(),
    );
    f.double.inject(
        "pulls/create",
        Fault::secondary_rate_limit_without_retry_after(),
    );
    let started = Instant::now();
    let p = run(&f, &spec(&f.double.url), &result(true)).await;
    let waited = started.elapsed();
    assert!(
        matches!(p.outcome, PromotionOutcome::Opened { number: 1, .. }),
        "{p:?}"
    );
    assert_eq!(
        f.double.ops(),
        [
            "pulls/list",
            "pulls/create",
            "pulls/create",
            "pulls/create",
            "repos/create-commit-status"
        ]
    );
    // The policy's minimum wait (scaled: 200 ms), doubled the second time: 600 ms at least.
    assert!(waited >= Duration::from_millis(600), "waited {waited:?}");
    f.double.assert_conforming();
}

#[tokio::test]
async fn secondary_rate_limit_past_the_budget_fails_naming_the_limit_not_the_token() {
    let f = fixture().await;
    f.double.inject(
        "pulls/create",
        Fault::secondary_rate_limit_without_retry_after(),
    );
    let mut opts = options();
    opts.retry.secondary_limit_wait = Duration::from_secs(2);
    opts.retry.budget = Duration::from_secs(1);
    let p = promote_result(
        &spec(&f.double.url),
        &result(true),
        Some(&f.token_file),
        &opts,
    )
    .await;
    let reason = failed_reason(&p);
    assert!(
        reason.contains("GitHub's secondary rate limit asks to wait 2s"),
        "{reason}"
    );
    assert!(reason.contains("budget"), "{reason}");
    assert!(!reason.contains("permission"), "{reason}");
    assert_eq!(f.double.ops(), ["pulls/list", "pulls/create"]);
}

#[tokio::test]
async fn persistent_secondary_rate_limit_says_so_after_the_last_attempt() {
    let f = fixture().await;
    for _ in 0..4 {
        f.double.inject(
            "pulls/list",
            Fault::secondary_rate_limit_without_retry_after(),
        );
    }
    let mut opts = options();
    opts.retry.secondary_limit_wait = Duration::from_millis(20);
    let p = promote_result(
        &spec(&f.double.url),
        &result(true),
        Some(&f.token_file),
        &opts,
    )
    .await;
    let reason = failed_reason(&p);
    assert!(reason.contains("failed 4 times"), "{reason}");
    assert!(reason.contains("secondary rate limit"), "{reason}");
    assert!(!reason.contains("permission"), "{reason}");
}

#[tokio::test]
async fn listed_pull_requests_of_other_branches_are_never_rewritten() {
    let f = fixture().await;
    // GitHub does not apply the list's filters: every open pull request comes back.
    f.double.state().ignore_list_filters = true;
    f.double.seed_pr(8, "other", "master");
    f.double.seed_fork_pr(9, "mallory", "staging", "master");
    f.double.seed_pr(10, "staging", "release");
    let p = run(&f, &spec(&f.double.url), &result(true)).await;
    assert_eq!(
        p.outcome,
        PromotionOutcome::Opened {
            number: 11,
            url: "https://github.com/octo/hello/pull/11".into(),
            commit_status: Some(CommitStatus {
                state: "success".into(),
                sha: HEAD_SHA.into(),
                context: "slogate/slo".into(),
                error: None,
            }),
            warnings: Vec::new(),
        }
    );
    f.double.assert_conforming();
    let st = f.double.state();
    for pr in &st.prs[..3] {
        assert_eq!(
            (pr.title.as_str(), pr.body.as_str()),
            ("earlier title", "earlier body"),
            "pull request #{} was rewritten",
            pr.number
        );
    }
    assert!(!st.received.iter().any(|r| r.op == "pulls/update"));
    let marked: Vec<&str> = st
        .statuses
        .iter()
        .map(|(_, b)| b["target_url"].as_str().unwrap())
        .collect();
    assert_eq!(marked, ["https://github.com/octo/hello/pull/11"]);
}

#[tokio::test]
async fn the_matching_pull_request_is_updated_when_the_list_is_unfiltered() {
    let f = fixture().await;
    f.double.state().ignore_list_filters = true;
    f.double.seed_fork_pr(2, "mallory", "staging", "master");
    f.double.seed_pr(5, "staging", "master");
    let p = run(&f, &spec(&f.double.url), &result(true)).await;
    assert!(
        matches!(p.outcome, PromotionOutcome::Updated { number: 5, .. }),
        "{p:?}"
    );
    let st = f.double.state();
    assert_eq!(st.prs[0].body, "earlier body", "the fork's PR is untouched");
    assert_ne!(st.prs[1].body, "earlier body");
}

#[tokio::test]
async fn already_exists_with_a_lagging_list_is_looked_up_again_and_updated() {
    let f = fixture().await;
    // Opened by another run a moment ago: the next three lists do not show it yet.
    f.double.seed_unlisted_pr(3, "staging", "master", 3);
    let p = run(&f, &spec(&f.double.url), &result(true)).await;
    assert!(
        matches!(p.outcome, PromotionOutcome::Updated { number: 3, .. }),
        "{p:?}"
    );
    assert_eq!(
        f.double.ops(),
        [
            "pulls/list",
            "pulls/create",
            "pulls/list",
            "pulls/list",
            "pulls/list",
            "pulls/update",
            "repos/create-commit-status"
        ]
    );
    assert_eq!(f.double.state().prs.len(), 1);
    f.double.assert_conforming();
}

#[tokio::test]
async fn already_exists_that_no_lookup_finds_fails_after_a_few_lookups() {
    let f = fixture().await;
    f.double.seed_unlisted_pr(3, "staging", "master", 1000);
    let p = run(&f, &spec(&f.double.url), &result(true)).await;
    let reason = failed_reason(&p);
    assert!(reason.contains("A pull request already exists"), "{reason}");
    assert!(
        reason.contains("4 lookups after it found no open pull request octo:staging → master"),
        "{reason}"
    );
    let lists = f.double.ops().iter().filter(|o| *o == "pulls/list").count();
    assert_eq!(lists, 5);
}
