//! `slogate demo`: the embedded default runs a real experiment over loopback and says why
//! each candidate passes or fails.

mod common;

use std::process::Output;

use common::{slogate, text};

fn demo(args: &[&str]) -> Output {
    slogate(&[&["demo"], args].concat())
}

/// The line of the SLO table for `metric`.
fn slo_row<'a>(report: &'a str, metric: &str) -> &'a str {
    let slos = report
        .split("****** SLOs ******")
        .nth(1)
        .expect("an SLO section");
    slos.lines()
        .find(|line| line.starts_with(metric))
        .unwrap_or_else(|| panic!("no SLO row for {metric} in:\n{report}"))
}

#[test]
fn stable_candidate_passes_and_shows_the_pull_request() {
    let out = demo(&["-n", "1500", "-q", "500"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("Requests:              1,500 of 1,500"),
        "{stdout}"
    );
    for metric in ["http/error-rate", "http/latency-mean", "http/latency-p95"] {
        assert!(slo_row(&stdout, metric).contains("✔ satisfied"), "{stdout}");
    }
    assert!(stdout.contains("✔ PASS"), "{stdout}");
    assert!(
        stderr.contains("dry run: the pull request example:staging → master"),
        "{stderr}"
    );
    assert!(stderr.contains("# Promote staging to master"), "{stderr}");
}

#[test]
fn slow_candidate_fails_because_the_service_is_slow_not_the_load_generator() {
    // At the demo's 400 req/s a 35 ms mean service time needs about 14 connections busy; with
    // its 8 it used to queue requests inside slogate (a mean of seconds) and blame the service.
    let out = demo(&["--candidate", "slow", "-n", "2000"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        slo_row(&stdout, "http/latency-p95").contains("✘ violated"),
        "{stdout}"
    );
    assert!(!stdout.contains("saturated"), "{stdout}");
    assert!(
        stdout.contains("Why: candidate fails http/latency-p95 <= 100: the service itself takes"),
        "{stdout}"
    );
    assert!(stdout.contains("kept to the planned 400 req/s"), "{stdout}");
}

#[test]
fn slow_candidate_fails_on_its_tail_latency() {
    let out = demo(&["--candidate", "slow", "-n", "1000", "-q", "200"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        slo_row(&stdout, "http/latency-p95").contains("✘ violated"),
        "{stdout}"
    );
    assert!(
        slo_row(&stdout, "http/error-rate").contains("✔ satisfied"),
        "{stdout}"
    );
    assert!(stdout.contains("✘ FAIL"), "{stdout}");
    assert!(stderr.contains("promotion skipped"), "{stderr}");
}

#[test]
fn flaky_candidate_fails_on_its_errors() {
    let out = demo(&["--candidate", "flaky", "-n", "1000", "-q", "500"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        slo_row(&stdout, "http/error-rate").contains("✘ violated"),
        "{stdout}"
    );
    assert!(stdout.contains("status 503"), "{stdout}");
    assert!(stdout.contains("✘ FAIL"), "{stdout}");
}

#[test]
fn bad_rate_is_invalid_input_naming_the_flag() {
    let out = demo(&["-q", "0"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("--qps"), "{stderr}");
}

#[test]
fn an_undecided_slo_is_not_blamed_on_the_service() {
    // 30 requests of the stable service are too few, for their spread, to judge the mean on.
    let out = demo(&["-n", "30", "-q", "200"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let why: Vec<&str> = stdout.lines().filter(|l| l.starts_with("Why:")).collect();
    for metric in ["http/latency-mean", "http/latency-p95"] {
        if !slo_row(&stdout, metric).contains("? inconclusive") {
            continue;
        }
        let line = why
            .iter()
            .find(|l| l.contains(metric))
            .unwrap_or_else(|| panic!("no Why line for {metric}:\n{stdout}"));
        assert!(line.contains("is undecided on"), "{line}");
        assert!(!line.contains("the service itself takes"), "{line}");
    }
}

#[test]
fn demo_with_a_baseline_compares_the_slow_candidate_and_names_the_baseline_winner() {
    let out = demo(&["--baseline", "--candidate", "slow", "-n", "1000"]);
    let report = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(report.contains("****** Comparison ******"), "{report}");
    assert!(
        report.contains(
            "****** Winner ******\n✔ current: current wins: candidate violates http/latency-p95"
        ),
        "{report}"
    );
    assert!(report.contains("Variables: promote=baseline"), "{report}");
    assert!(
        text(&out.stderr).contains("baseline hello service (stable)"),
        "{}",
        text(&out.stderr)
    );
}
