//! What the reports say about promotion and about the document's own state: warnings of a
//! promotion, a promotion still under way, an interrupted one, and a run that stopped
//! publishing.

mod fixtures;

use std::time::Duration;

use slogate_core::result::{PromotionOutcome, Stage};
use slogate_report::{Context, Format, render, render_in};

const REFUSED: &str = "requesting reviewers failed: GitHub answered 422 Unprocessable Entity to POST /repos/acme/iter8/pulls/42/requested_reviewers: Reviews may only be requested from collaborators";

#[test]
fn promotion_warnings_show_in_text_markdown_and_html() {
    let mut r = fixtures::passing();
    if let Some(PromotionOutcome::Opened { warnings, .. }) = &mut r.promotion {
        warnings.push(REFUSED.to_owned());
    }
    let text = render(&r, Format::Text).unwrap();
    assert!(text.contains(&format!("  ! {REFUSED}")), "{text}");
    let md = render(&r, Format::Markdown).unwrap();
    assert!(md.contains("**Promotion warnings**"), "{md}");
    assert!(
        md.contains("Reviews may only be requested from collaborators"),
        "{md}"
    );
    let html = render(&r, Format::Html).unwrap();
    assert!(
        html.contains("<dt>Promotion warning</dt><dd class=\"bad\">requesting reviewers failed"),
        "{html}"
    );
    // Without warnings the reports say nothing of them.
    let plain = render(&fixtures::passing(), Format::Text).unwrap();
    assert!(!plain.contains("  ! "), "{plain}");
}

#[test]
fn a_run_whose_promotion_is_under_way_never_reads_as_none_configured() {
    let mut r = fixtures::passing();
    r.stage = Stage::Finishing;
    r.end_time = None;
    r.promotion = None;
    let text = render(&r, Format::Text).unwrap();
    assert!(
        text.contains("Stage:                 Finishing (promotion under way)"),
        "{text}"
    );
    assert!(
        text.contains("Promotion: in progress: the pull request is being opened or updated"),
        "{text}"
    );
    assert!(!text.contains("none configured"), "{text}");
    let html = render(&r, Format::Html).unwrap();
    assert!(html.contains("in progress"), "{html}");
    assert!(!html.contains("none configured"));
}

#[test]
fn interrupted_promotion_says_so() {
    let mut r = fixtures::passing();
    r.promotion = Some(PromotionOutcome::Interrupted {
        reason: "Interrupted: SIGTERM".to_owned(),
    });
    for format in [Format::Text, Format::Markdown, Format::Html] {
        let out = render(&r, format).unwrap();
        assert!(
            out.contains("INTERRUPTED before it ended (Interrupted: SIGTERM)"),
            "{format}: {out}"
        );
    }
}

#[test]
fn a_running_result_that_stopped_updating_is_flagged_stale() {
    let mut r = fixtures::running();
    let updated: jiff::Timestamp = "2026-11-23T10:00:00Z".parse().unwrap();
    r.touch(updated, Duration::from_secs(10));
    let later = |secs: i64| Context {
        now: Some(updated + jiff::SignedDuration::from_secs(secs)),
        notes: vec![],
    };
    let fresh = render_in(&r, Format::Text, &later(20)).unwrap();
    assert!(!fresh.contains("stale"), "{fresh}");
    let stale = render_in(&r, Format::Text, &later(125)).unwrap();
    assert!(
        stale.contains("Warning:               stale: the result has not been updated for 2m 5s, though its run publishes every 10s"),
        "{stale}"
    );
    for format in [Format::Markdown, Format::Html] {
        let out = render_in(&r, format, &later(125)).unwrap();
        assert!(
            out.contains("stale: the result has not been updated"),
            "{out}"
        );
    }
    let job = Context {
        notes: vec!["the Job my-exp-3 that ran the experiment no longer exists".to_owned()],
        ..later(20)
    };
    let out = render_in(&r, Format::Text, &job).unwrap();
    assert!(
        out.contains(
            "Warning:               the Job my-exp-3 that ran the experiment no longer exists"
        ),
        "{out}"
    );
}
