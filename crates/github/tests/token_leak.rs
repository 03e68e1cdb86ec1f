//! The token never leaves the Authorization header: not in the outcome, the result document,
//! the pull request, an error message or a log line, on success or failure paths.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use slogate_core::result::{ExperimentResult, OverallVerdict, Stage};
use slogate_core::spec::{ExperimentSpec, PromotionSpec};
use slogate_github::{Options, RetryPolicy, promote_result};
use support::{Fault, GitHubDouble};

const TOKEN: &str = "ghp_LEAKCANARY7f3c9a1e5b2d8f4a6c0e9b7d3f1a";

/// A tracing writer into a shared buffer.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn result() -> ExperimentResult {
    let exp = ExperimentSpec::from_yaml(
        "name: leak\nversions: [{name: v, url: 'http://127.0.0.1:1/'}]\n",
    )
    .unwrap();
    let mut r = ExperimentResult::running(&exp, jiff::Timestamp::UNIX_EPOCH);
    r.stage = Stage::Completed;
    r.end_time = Some(jiff::Timestamp::UNIX_EPOCH);
    r.verdict = Some(OverallVerdict {
        pass: true,
        reason: "every SLO is satisfied.".into(),
    });
    r
}

#[tokio::test]
async fn token_appears_nowhere_the_run_produces() {
    let logs = Buffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let double = GitHubDouble::start("octo", "hello", TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let wrong_file = dir.path().join("wrong");
    std::fs::write(&wrong_file, "ghp_wrong000000000000000000000000000000\n").unwrap();

    let spec = PromotionSpec {
        token_file: Some(token_file.clone()),
        api_url: double.url.clone(),
        labels: vec!["slo".into()],
        reviewers: vec!["alice".into()],
        title: Some("{{name}} {{verdict}}".into()),
        ..PromotionSpec::new("octo", "hello", "master", "staging")
    };
    let options = Options {
        dry_run: false,
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
            max_rate_limit_wait: Duration::from_secs(2),
            ..RetryPolicy::default()
        },
    };
    let mut produced = Vec::new();
    let mut record = |p: &slogate_github::Promotion, r: &mut ExperimentResult| {
        r.promotion = Some(p.outcome.clone());
        produced.push(format!("{p:?}"));
        produced.push(r.to_json());
        produced.extend(p.warnings().iter().cloned());
    };
    let mut r = result();

    // Success with every step, then an update, through a rate limit and 5xx retries.
    double.inject("pulls/list", Fault::primary_rate_limit(0));
    double.inject("pulls/create", Fault::bad_gateway());
    let p = promote_result(&spec, &r, None, &options).await;
    record(&p, &mut r);
    let p = promote_result(&spec, &r, None, &options).await;
    record(&p, &mut r);
    // Failure paths: exhausted retries, 422, wrong token (401), a refused connection.
    for _ in 0..3 {
        double.inject("pulls/list", Fault::bad_gateway());
    }
    let p = promote_result(&spec, &r, None, &options).await;
    record(&p, &mut r);
    double.state().prs.clear();
    double.state().no_commits = true;
    let p = promote_result(&spec, &r, None, &options).await;
    record(&p, &mut r);
    let p = promote_result(&spec, &r, Some(&wrong_file), &options).await;
    record(&p, &mut r);
    let mut refused = spec.clone();
    refused.api_url = "http://127.0.0.1:9".into();
    let p = promote_result(&refused, &r, None, &options).await;
    record(&p, &mut r);
    // Dry run.
    let dry = Options {
        dry_run: true,
        ..options.clone()
    };
    let p = promote_result(&spec, &r, None, &dry).await;
    record(&p, &mut r);

    let st = double.state();
    // The token did reach GitHub, in the Authorization header and nowhere else.
    let auth_headers = st
        .received
        .iter()
        .flat_map(|req| req.headers.iter())
        .filter(|(k, v)| v.contains(TOKEN) && k != "authorization")
        .count();
    assert_eq!(
        auth_headers, 0,
        "the token was sent in a header other than Authorization"
    );
    assert!(st.received.iter().any(|req| {
        req.headers
            .iter()
            .any(|(k, v)| k == "authorization" && v == &format!("Bearer {TOKEN}"))
    }));
    for req in &st.received {
        produced.push(req.uri.clone());
        produced.push(req.body.as_ref().map(|b| b.to_string()).unwrap_or_default());
    }
    for pr in &st.prs {
        produced.push(format!("{pr:?}"));
    }
    drop(st);

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("GitHub answered"),
        "TRACE logs were captured: {logs}"
    );
    assert!(logs.contains("retrying"), "the retries were logged");
    produced.push(logs);
    let everything = produced.join("\n");
    assert!(everything.contains("Bad credentials"), "the 401 path ran");
    assert!(
        everything.contains("No commits between"),
        "the 422 path ran"
    );
    for secret in [TOKEN, "LEAKCANARY", "ghp_wrong0000"] {
        assert!(
            !everything.contains(secret),
            "{secret} leaked into:\n{everything}"
        );
    }
}
