//! What the reports say about finish actions: one line per action with its kind, `if`,
//! outcome and detail, and a failed command's last line of output.

mod fixtures;

use slogate_core::actions::{ActionKind, ActionRecord, Condition, ExecRecord, Outcome, OutputTail};
use slogate_report::{Format, render};

fn with_actions() -> slogate_core::result::ExperimentResult {
    let mut r = fixtures::passing();
    let tail = |text: &str| OutputTail {
        text: text.to_owned(),
        bytes: text.len() as u64,
        cut_bytes: 0,
    };
    r.actions = vec![
        ActionRecord {
            kind: ActionKind::Exec,
            condition: Condition::Always,
            at: "actions.finish[0]".into(),
            outcome: Outcome::Done,
            detail: "helm upgrade --install sample-app ./chart → exit 0".into(),
            exec: Some(ExecRecord {
                command: vec!["helm".into(), "upgrade".into()],
                exit_code: Some(0),
                signal: None,
                duration_seconds: 1.5,
                stdout: tail("Release \"sample-app\" has been upgraded.\n"),
                stderr: tail(""),
            }),
            pull_request: None,
            gitops: None,
        },
        ActionRecord {
            kind: ActionKind::Exec,
            condition: Condition::Fail,
            at: "actions.finish[1]".into(),
            outcome: Outcome::Skipped,
            detail: "if: fail, but the verdict is PASS".into(),
            exec: None,
            pull_request: None,
            gitops: None,
        },
        ActionRecord {
            kind: ActionKind::Exec,
            condition: Condition::Winner("candidate".into()),
            at: "actions.finish[2]".into(),
            outcome: Outcome::Failed,
            detail: "kubectl apply -f x.yaml → exit 1".into(),
            exec: Some(ExecRecord {
                command: vec!["kubectl".into()],
                exit_code: Some(1),
                signal: None,
                duration_seconds: 0.2,
                stdout: tail(""),
                stderr: tail("error: the path \"x.yaml\" does not exist\n\n"),
            }),
            pull_request: None,
            gitops: None,
        },
    ];
    r
}

#[test]
fn every_action_reads_as_a_line_in_text_markdown_and_html() {
    let r = with_actions();
    let text = render(&r, Format::Text).unwrap();
    assert!(text.contains("****** Finish actions ******\n✔ exec (actions.finish[0], if always): done: helm upgrade --install sample-app ./chart → exit 0\n"), "{text}");
    assert!(
        text.contains(
            "- exec (actions.finish[1], if fail): skipped: if: fail, but the verdict is PASS\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("✘ exec (actions.finish[2], if winner=candidate): failed: kubectl apply -f x.yaml → exit 1\n    error: the path \"x.yaml\" does not exist\n"),
        "{text}"
    );
    let md = render(&r, Format::Markdown).unwrap();
    assert!(md.contains("**Finish actions**:"), "{md}");
    assert!(
        md.contains("- ✔ exec (actions.finish\\[0\\], if always): done: helm upgrade")
            || md.contains("- ✔ exec (actions.finish[0], if always): done: helm upgrade"),
        "{md}"
    );
    let html = render(&r, Format::Html).unwrap();
    assert!(
        html.contains("<dt>Finish action</dt><dd class=\"bad\">✘ exec (actions.finish[2], if winner&#x3D;candidate): failed"),
        "{html}"
    );
    let json = render(&r, Format::Json).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["actions"][1]["if"], "fail");
    assert_eq!(doc["actions"][1]["outcome"], "skipped");
    assert_eq!(doc["actions"][2]["if"], "winner=candidate");
}

#[test]
fn the_text_report_still_ends_with_a_newline_after_a_skipped_action() {
    let mut r = with_actions();
    r.actions.swap(1, 2);
    let text = render(&r, Format::Text).unwrap();
    assert!(
        text.ends_with(
            "- exec (actions.finish[1], if fail): skipped: if: fail, but the verdict is PASS\n"
        ),
        "{text:?}"
    );
}

#[test]
fn a_document_without_actions_says_nothing_of_them() {
    let text = render(&fixtures::passing(), Format::Text).unwrap();
    assert!(!text.contains("Finish actions"), "{text}");
}

#[test]
fn the_promotion_blocks_pull_request_keeps_its_own_line_only() {
    let mut r = fixtures::passing();
    let before = render(&r, Format::Text).unwrap();
    r.actions = vec![ActionRecord {
        kind: ActionKind::PullRequest,
        condition: Condition::Pass,
        at: "promotion".into(),
        outcome: Outcome::Done,
        detail: "opened pull request #42 https://github.com/acme/iter8/pull/42".into(),
        exec: None,
        pull_request: r.promotion.clone(),
        gitops: None,
    }];
    assert_eq!(render(&r, Format::Text).unwrap(), before);
}
