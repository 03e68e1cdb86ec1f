//! The `gitops` promotion against the GitHub double: its GraphQL endpoint validates every
//! document and its variables against GitHub's published schema and keeps a real git object
//! model, so the branch's history shows what a user would see on GitHub.

mod support;

use std::time::Duration;

use serde_json::json;
use slogate_core::actions::{GitopsSpec, Outcome};
use slogate_core::result::{ExperimentResult, OverallVerdict, PromotionOutcome, Stage};
use slogate_core::spec::{ExperimentSpec, PromotionSpec};
use slogate_github::gitops::{GitopsPromotion, Message, RenderedFile, promote_gitops};
use slogate_github::{Options, RetryPolicy, Token, promote_result};
use support::GitHubDouble;

const TOKEN: &str = "ghp_GitopsTokenForTheDouble0123456789ab";
const OWNER: &str = "octo";
const REPO: &str = "hello";

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        budget: Duration::from_secs(20),
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_secs(5),
        ..RetryPolicy::default()
    }
}

fn result(pass: bool) -> ExperimentResult {
    let exp = ExperimentSpec::from_yaml(
        "name: my-exp\nnamespace: staging\nversions: [{name: candidate, url: 'http://127.0.0.1:1/'}]\n",
    )
    .unwrap();
    let mut r = ExperimentResult::running(&exp, jiff::Timestamp::UNIX_EPOCH);
    r.stage = Stage::Finishing;
    r.verdict = Some(OverallVerdict {
        pass,
        reason: "every SLO is satisfied at 95 % confidence.".into(),
    });
    r
}

fn spec(double: &GitHubDouble, head_sha: Option<&str>) -> GitopsSpec {
    serde_json::from_value(json!({
        "owner": OWNER,
        "repo": REPO,
        "branch": "staging",
        "base": "master",
        "headSha": head_sha,
        "apiUrl": double.url,
        "files": [{"path": "prod/values.yaml", "template": "unused here"}],
    }))
    .unwrap()
}

fn files() -> Vec<RenderedFile> {
    vec![
        RenderedFile {
            path: "prod/values.yaml".into(),
            contents: b"image: hello:1.1\nstable: true\n".to_vec(),
        },
        RenderedFile {
            path: "prod/manifests/deployment.yaml".into(),
            contents: b"kind: Deployment\nimage: hello:1.1\n".to_vec(),
        },
    ]
}

/// `master` with a README; `staging` with the staging values and the old prod values.
/// Returns staging's tip: the commit that was deployed and tested.
fn seed(double: &GitHubDouble) -> String {
    double.seed_branch(OWNER, REPO, "master", &[("README.md", "env\n")]);
    double.seed_branch(
        OWNER,
        REPO,
        "staging",
        &[
            ("README.md", "env\n"),
            ("staging/values.yaml", "image: hello:1.1\n"),
            ("prod/values.yaml", "image: hello:1.0\nstable: true\n"),
        ],
    )
}

async fn promote(spec: &GitopsSpec) -> GitopsPromotion {
    let message = Message::parse("promote candidate: hello:1.1\n\nevery SLO is satisfied");
    promote_gitops(
        spec,
        &files(),
        &message,
        &result(true),
        &Token::new(TOKEN).unwrap(),
        &policy(),
    )
    .await
}

fn statuses_on(double: &GitHubDouble) -> Vec<String> {
    double
        .state()
        .statuses
        .iter()
        .map(|(sha, _)| sha.clone())
        .collect()
}

fn assert_clean(double: &GitHubDouble) {
    assert_eq!(double.graphql_refused(), Vec::<String>::new());
    double.assert_conforming();
    let text = format!("{:?}", double.graphql_ops());
    assert!(
        !text.contains(TOKEN),
        "the token went into a GraphQL document"
    );
}

#[tokio::test]
async fn one_commit_holds_every_rendered_file_then_the_pull_request_opens() {
    let double = GitHubDouble::start(OWNER, REPO, TOKEN).await;
    let tested = seed(&double);

    let done = promote(&spec(&double, Some(&tested))).await;

    assert_eq!(done.outcome, Outcome::Done, "{}", done.detail);
    let tip = double.branch_tip(OWNER, REPO, "staging").unwrap();
    assert_eq!(done.record.commit.as_deref(), Some(tip.as_str()));
    assert_eq!(done.record.parent.as_deref(), Some(tested.as_str()));
    let log = double.branch_log(OWNER, REPO, "staging");
    assert_eq!(
        log.len(),
        2,
        "one commit on top of the tested one: {log:#?}"
    );
    assert_eq!(log[0].parents, vec![tested.clone()]);
    assert_eq!(log[0].headline, "promote candidate: hello:1.1");
    let mut paths = log[0].paths.clone();
    paths.sort();
    assert_eq!(
        paths,
        ["prod/manifests/deployment.yaml", "prod/values.yaml"],
        "both files, in one commit"
    );
    let at = double.files_at(OWNER, REPO, "staging");
    assert_eq!(at["prod/values.yaml"], "image: hello:1.1\nstable: true\n");
    assert_eq!(
        at["prod/manifests/deployment.yaml"],
        "kind: Deployment\nimage: hello:1.1\n"
    );
    assert_eq!(
        at["staging/values.yaml"], "image: hello:1.1\n",
        "untouched files stay"
    );
    assert_eq!((double.commit_calls(), double.commit_successes()), (1, 1));
    assert!(
        matches!(
            done.pull_request,
            Some(PromotionOutcome::Opened { number: 1, .. })
        ),
        "{:?}",
        done.pull_request
    );
    let pr = double.state().prs[0].clone();
    assert_eq!((pr.head.as_str(), pr.base.as_str()), ("staging", "master"));
    // The tested commit and the commit made from it, nothing else.
    assert_eq!(statuses_on(&double), vec![tested, tip.clone()]);
    assert!(
        done.detail.contains(&format!("as {tip}")),
        "{}",
        done.detail
    );
    assert_eq!(done.record.attempts, 1);
    assert!(done.record.files.iter().all(|f| f.changed));
    assert_clean(&double);
}

#[tokio::test]
async fn a_write_between_read_and_commit_is_retried_onto_the_new_head_and_both_changes_stay() {
    let double = GitHubDouble::start(OWNER, REPO, TOKEN).await;
    let tested = seed(&double);
    // CI pushes the next staging image while slogate is about to commit.
    double.move_branch_before_next_commit(
        OWNER,
        REPO,
        "staging",
        &[("staging/values.yaml", "image: hello:1.2\n")],
    );

    let done = promote(&spec(&double, Some(&tested))).await;

    assert_eq!(done.outcome, Outcome::Done, "{}", done.detail);
    assert_eq!(
        (double.commit_calls(), double.commit_successes()),
        (2, 1),
        "the first commit is refused (STALE_DATA), the second lands"
    );
    let log = double.branch_log(OWNER, REPO, "staging");
    assert_eq!(log.len(), 3, "{log:#?}");
    let ci = &log[1];
    assert_eq!(ci.parents, vec![tested.clone()]);
    assert_eq!(
        log[0].parents,
        vec![ci.oid.clone()],
        "slogate's commit sits on CI's"
    );
    assert_eq!(done.record.moved_by_others, vec![ci.oid.clone()]);
    assert_eq!(done.record.parent.as_deref(), Some(ci.oid.as_str()));
    assert_eq!(done.record.attempts, 2);
    let at = double.files_at(OWNER, REPO, "staging");
    assert_eq!(
        at["staging/values.yaml"], "image: hello:1.2\n",
        "CI's change"
    );
    assert_eq!(
        at["prod/values.yaml"], "image: hello:1.1\nstable: true\n",
        "slogate's change"
    );
    // Both commits were sent with the head read just before: the second with CI's.
    let expected: Vec<String> = double
        .graphql_ops()
        .iter()
        .filter(|op| op.name.as_deref() == Some("SlogateCommit"))
        .map(|op| {
            op.variables["input"]["expectedHeadOid"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(expected, vec![tested.clone(), ci.oid.clone()]);
    // Untested changes came between: the verdict stays on the tested commit only.
    assert_eq!(statuses_on(&double), vec![tested]);
    assert!(done.detail.contains("1 retry"), "{}", done.detail);
    assert_clean(&double);
}

#[tokio::test]
async fn a_render_that_changes_nothing_makes_no_commit_and_says_so() {
    let double = GitHubDouble::start(OWNER, REPO, TOKEN).await;
    let tested = seed(&double);
    let first = promote(&spec(&double, Some(&tested))).await;
    assert_eq!(first.outcome, Outcome::Done, "{}", first.detail);
    let tip = double.branch_tip(OWNER, REPO, "staging").unwrap();

    // Run again, as a re-run of the Job would: the branch already holds the render.
    let again = promote(&spec(&double, Some(&tip))).await;

    assert_eq!(again.outcome, Outcome::Skipped, "{}", again.detail);
    assert!(
        again
            .detail
            .starts_with("no commit: staging already has every rendered file")
    );
    assert_eq!(double.branch_tip(OWNER, REPO, "staging"), Some(tip));
    assert_eq!(double.commit_calls(), 1, "no second createCommitOnBranch");
    assert!(again.record.commit.is_none());
    assert!(again.record.files.iter().all(|f| !f.changed));
    assert!(
        matches!(
            again.pull_request,
            Some(PromotionOutcome::Updated { number: 1, .. })
        ),
        "the pull request is still brought up to date: {:?}",
        again.pull_request
    );
    assert_clean(&double);
}

#[tokio::test]
async fn a_head_that_moved_past_the_tested_commit_is_superseded_and_nothing_is_written() {
    let double = GitHubDouble::start(OWNER, REPO, TOKEN).await;
    let tested = seed(&double);
    let newer = double.commit_files(
        OWNER,
        REPO,
        "staging",
        "deploy hello:1.3",
        &[("staging/values.yaml", "image: hello:1.3\n")],
    );

    let done = promote(&spec(&double, Some(&tested))).await;

    assert_eq!(done.outcome, Outcome::Superseded, "{}", done.detail);
    assert!(
        done.detail.contains(&tested) && done.detail.contains(&newer),
        "{}",
        done.detail
    );
    assert_eq!(double.commit_calls(), 0);
    assert_eq!(double.branch_tip(OWNER, REPO, "staging"), Some(newer));
    assert!(done.pull_request.is_none());
    assert!(double.state().prs.is_empty());
    assert!(statuses_on(&double).is_empty());
    assert_clean(&double);
}

#[tokio::test]
async fn a_missing_branch_is_created_from_base_and_committed_to() {
    let double = GitHubDouble::start(OWNER, REPO, TOKEN).await;
    let master = double.seed_branch(OWNER, REPO, "master", &[("README.md", "env\n")]);

    let done = promote(&spec(&double, None)).await;

    assert_eq!(done.outcome, Outcome::Done, "{}", done.detail);
    let log = double.branch_log(OWNER, REPO, "staging");
    assert_eq!(log.len(), 2, "{log:#?}");
    assert_eq!(log[0].parents, vec![master.clone()]);
    assert_eq!(double.branch_tip(OWNER, REPO, "master"), Some(master));
    assert!(
        double
            .graphql_ops()
            .iter()
            .any(|op| op.name.as_deref() == Some("SlogateCreateRef"))
    );
    assert_clean(&double);
}

#[tokio::test]
async fn a_branch_that_keeps_moving_fails_after_max_attempts_and_commits_nothing() {
    let double = GitHubDouble::start(OWNER, REPO, TOKEN).await;
    let tested = seed(&double);
    double.move_branch_before_next_commit(
        OWNER,
        REPO,
        "staging",
        &[("staging/values.yaml", "image: hello:1.2\n")],
    );
    let mut spec = spec(&double, Some(&tested));
    spec.max_attempts = 1;

    let done = promote(&spec).await;

    assert_eq!(done.outcome, Outcome::Failed, "{}", done.detail);
    assert!(
        done.detail.contains("1 commits onto staging were refused"),
        "{}",
        done.detail
    );
    assert_eq!(double.commit_successes(), 0);
    assert!(double.state().prs.is_empty());
    assert_clean(&double);
}

/// The pull-request promotion's `headSha`: promoted only while `head` still points at it, and
/// the commit status goes on it.
#[tokio::test]
async fn a_pull_request_is_promoted_only_while_head_is_the_tested_commit() {
    let double = GitHubDouble::start(OWNER, REPO, TOKEN).await;
    let tested = seed(&double);
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let pr_spec = PromotionSpec {
        api_url: double.url.clone(),
        head_sha: Some(tested.clone()),
        ..PromotionSpec::new(OWNER, REPO, "master", "staging")
    };
    let options = Options {
        dry_run: false,
        retry: policy(),
    };

    let opened = promote_result(&pr_spec, &result(true), Some(&token_file), &options).await;
    assert!(
        matches!(opened.outcome, PromotionOutcome::Opened { .. }),
        "{:?}",
        opened.outcome
    );
    assert_eq!(
        opened.commit_status().map(|s| s.sha.clone()),
        Some(tested.clone())
    );

    let newer = double.commit_files(
        OWNER,
        REPO,
        "staging",
        "deploy hello:1.3",
        &[("staging/values.yaml", "image: hello:1.3\n")],
    );
    let before = double.ops().len();
    let moved = promote_result(&pr_spec, &result(true), Some(&token_file), &options).await;
    match &moved.outcome {
        PromotionOutcome::Superseded {
            tested: t,
            head,
            reason,
        } => {
            assert_eq!(t, &tested);
            assert_eq!(head.as_deref(), Some(newer.as_str()));
            assert!(reason.contains("nothing was promoted"), "{reason}");
        }
        other => panic!("expected superseded, got {other:?}"),
    }
    let after: Vec<String> = double.ops().split_off(before);
    assert!(
        after.iter().all(|op| !op.contains('/')),
        "only the GraphQL check, no REST call (pull request, status): {after:?}"
    );
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(statuses_on(&double), vec![tested]);
    assert_clean(&double);
}
