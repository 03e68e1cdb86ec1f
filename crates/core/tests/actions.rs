//! The spec's `actions.finish`: what a user writes, what is refused (every bad field at
//! once), and which actions run for which verdict.

use std::time::Duration;

use slogate_core::actions::{Action, Condition};
use slogate_core::result::{ExperimentResult, OverallVerdict, Stage, Winner};
use slogate_core::spec::ExperimentSpec;

const VERSIONS: &str = "name: exp
versions:
  - {name: current, role: baseline, url: 'http://127.0.0.1:1/', variables: {promote: baseline}}
  - {name: candidate, url: 'http://127.0.0.1:2/', variables: {promote: candidate}}
strategy: {testingPattern: Canary}
";

fn spec(actions: &str) -> Result<ExperimentSpec, Vec<String>> {
    ExperimentSpec::from_yaml(&format!("{VERSIONS}{actions}"))
        .map_err(|e| e.problems().iter().map(ToString::to_string).collect())
}

#[test]
fn finish_actions_read_in_order_after_the_promotion_block() {
    let spec = spec(
        "promotion: {owner: o, repo: r, base: master, head: staging, when: always}
actions:
  finish:
    - exec: {cmd: helm, args: [upgrade, '--values={{promote}}-values.yaml']}
    - if: winner=current
      exec: {cmd: /bin/echo, timeout: 30s, env: {RELEASE: '{{name}}'}}
    - if: fail
      pullRequest: {owner: o, repo: r, base: master, head: baseline}
",
    )
    .unwrap();
    let planned = spec.finish_actions();
    let shown: Vec<(String, String, bool)> = planned
        .iter()
        .map(|p| (p.at.clone(), p.condition.to_string(), p.shorthand))
        .collect();
    assert_eq!(
        shown,
        [
            ("promotion".to_owned(), "always".to_owned(), true),
            ("actions.finish[0]".to_owned(), "pass".to_owned(), false),
            (
                "actions.finish[1]".to_owned(),
                "winner=current".to_owned(),
                false
            ),
            ("actions.finish[2]".to_owned(), "fail".to_owned(), false),
        ]
    );
    let Action::Exec(exec) = planned[1].action else {
        panic!("{:?}", planned[1].action)
    };
    assert_eq!(
        exec.timeout,
        Duration::from_secs(300),
        "the default timeout"
    );
    let Action::Exec(exec) = planned[2].action else {
        panic!()
    };
    assert_eq!(exec.timeout, Duration::from_secs(30));
    assert!(matches!(planned[3].action, Action::PullRequest(pr) if pr.head == "baseline"));
}

#[test]
fn every_bad_action_field_is_named_at_once() {
    let problems = spec(
        "actions:
  finish:
    - exec: {cmd: helm}
    - exec: {cmd: '  ', timeout: 0s}
    - if: sometimes
      exec: {cmd: helm}
    - gitlab: {project: x}
    - exec: {cmd: helm}
      pullRequest: {owner: o, repo: r, base: master, head: staging}
    - if: winner=nobody
      pullRequest: {owner: '', repo: r, base: main, head: main, when: always}
    - {}
",
    )
    .unwrap_err();
    let has = |path: &str, words: &str| {
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with(&format!("{path}: ")) && p.contains(words)),
            "no problem at {path} saying {words:?}: {problems:#?}"
        )
    };
    has("actions.finish[1].exec.cmd", "empty");
    has("actions.finish[1].exec.timeout", "longer than 0s");
    has("actions.finish[2].if", "\"sometimes\" is not a condition");
    has("actions.finish[3].gitlab", "unknown field");
    has("actions.finish[4]", "names two actions");
    has("actions.finish[5].if", "no version is named \"nobody\"");
    has("actions.finish[5].pullRequest.owner", "must not be empty");
    has("actions.finish[5].pullRequest.head", "also the base branch");
    has("actions.finish[5].pullRequest.when", "if: always");
    has("actions.finish[6]", "names no action");
    // The unknown kind is also an entry that names none of the known ones.
    has("actions.finish[3]", "give one of pullRequest, exec");
    assert_eq!(problems.len(), 11, "{problems:#?}");
}

#[test]
fn a_gitops_action_reads_with_its_defaults() {
    let spec = spec(
        "actions:
  finish:
    - if: winner=candidate
      gitops:
        owner: me
        repo: env
        branch: staging
        base: master
        headSha: 0123456789abcdef0123456789abcdef01234567
        files:
          - {path: prod/values.yaml, template: 'image: {{image}}'}
          - {path: prod/all.yaml, command: {cmd: helm, args: [template, app, ./chart]}}
",
    )
    .unwrap();
    let planned = spec.finish_actions();
    let Action::Gitops(g) = planned[0].action else {
        panic!("{:?}", planned[0].action)
    };
    assert_eq!(g.max_attempts, 4, "the first commit and 3 retries");
    assert_eq!(g.api_url, "https://api.github.com");
    assert!(g.commit_status);
    let pr = g.pull_request().expect("a base gives a pull request");
    assert_eq!(
        (pr.head.as_str(), pr.base.as_str(), pr.commit_status),
        ("staging", "master", false),
        "the pull request is branch → base; the action sets the statuses itself"
    );
    assert_eq!(
        g.files[1].command.as_ref().unwrap().timeout,
        Duration::from_secs(300)
    );
}

#[test]
fn every_bad_gitops_field_is_named_at_once() {
    let problems = spec(
        "actions:
  finish:
    - gitops:
        owner: ''
        repo: env
        branch: main
        base: main
        headSha: abc123
        maxAttempts: 0
        apiUrl: ftp://x
        files:
          - {path: /etc/passwd, template: x}
          - {path: a/../b.yaml, template: x}
          - {path: ok.yaml}
          - {path: ok.yaml, template: x, command: {cmd: helm}}
          - {path: c.yaml, command: {cmd: '', timeout: 0s}}
    - gitops: {owner: o, repo: r, branch: b, files: []}
      exec: {cmd: helm}
    - promotion: {}
      pullRequest: {owner: o, repo: r, base: master, head: staging, headSha: HEAD}
",
    )
    .unwrap_err();
    let has = |path: &str, words: &str| {
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with(&format!("{path}: ")) && p.contains(words)),
            "no problem at {path} saying {words:?}: {problems:#?}"
        )
    };
    let g = "actions.finish[0].gitops";
    has(&format!("{g}.owner"), "must not be empty");
    has(&format!("{g}.base"), "also the branch committed to");
    has(&format!("{g}.headSha"), "not a full commit id");
    has(&format!("{g}.maxAttempts"), "outside 1..=10");
    has(&format!("{g}.apiUrl"), "");
    has(&format!("{g}.files[0].path"), "absolute");
    has(&format!("{g}.files[1].path"), "`..`");
    has(&format!("{g}.files[2]"), "give template or command");
    has(&format!("{g}.files[3].path"), "written by an earlier file");
    has(&format!("{g}.files[3]"), "both template and command");
    has(&format!("{g}.files[4].command.cmd"), "empty");
    has(&format!("{g}.files[4].command.timeout"), "longer than 0s");
    has("actions.finish[1]", "names two actions (exec and gitops)");
    has("actions.finish[1].gitops.files", "at least one file");
    has("actions.finish[2].promotion", "unknown field");
    has(
        "actions.finish[2].pullRequest.headSha",
        "not a full commit id",
    );
}

fn judged(pass: bool, winner: Option<&str>) -> ExperimentResult {
    let spec = spec("").unwrap();
    let mut r = ExperimentResult::running(&spec, jiff::Timestamp::UNIX_EPOCH);
    r.stage = Stage::Finishing;
    r.verdict = Some(OverallVerdict {
        pass,
        reason: "why".into(),
    });
    r.winner = Some(Winner {
        found: winner.is_some(),
        name: winner.map(str::to_owned),
        role: None,
        variables: Default::default(),
        reason: "why".into(),
    });
    r
}

#[test]
fn a_condition_that_does_not_hold_says_why() {
    let holds = |c: &str, r: &ExperimentResult| c.parse::<Condition>().unwrap().holds(r);
    let pass = judged(true, Some("candidate"));
    let fail = judged(false, Some("current"));
    let none = judged(false, None);
    assert_eq!(holds("pass", &pass), Ok(()));
    assert_eq!(
        holds("pass", &fail),
        Err("if: pass, but the verdict is FAIL".to_owned())
    );
    assert_eq!(holds("fail", &fail), Ok(()));
    assert_eq!(
        holds("fail", &pass),
        Err("if: fail, but the verdict is PASS".to_owned())
    );
    assert_eq!(holds("always", &fail), Ok(()));
    assert_eq!(holds("winner=candidate", &pass), Ok(()));
    assert_eq!(
        holds("winner=candidate", &fail),
        Err("if: winner=candidate, but the winner is current".to_owned())
    );
    assert_eq!(
        holds("winner=candidate", &none),
        Err("if: winner=candidate, but no winner was found".to_owned())
    );
}
