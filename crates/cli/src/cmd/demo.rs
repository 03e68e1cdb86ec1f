//! `slogate demo`: the embedded default. A whole experiment against the sample hello service
//! started in this process: no cluster, no token, no network beyond loopback.

use std::process::ExitCode;

use anyhow::anyhow;
use slogate_core::result::{ExperimentResult, SloVerdict, Stage};
use slogate_core::spec::{
    Change, ExperimentSpec, LoadSpec, PromotionSpec, Role, SloSpec, StrategySpec, TestingPattern,
    VERSUS_BASELINE, VersionSpec,
};
use slogate_hello::{Behavior, HelloServer};
use slogate_report::Format;

use crate::exit::{CmdResult, Failure};
use crate::experiment::{self, FileSink, Interrupt, Settings};

/// Which candidate the demo judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Candidate {
    /// Fast and error-free: every SLO holds and the pull request is shown.
    Stable,
    /// Makes no errors but its tail is slow (one request in ten takes 170 ms): the p95 SLO
    /// fails on the service's own time, with slogate keeping to the planned rate.
    Slow,
    /// Fast, but one request in twenty answers 503: the error-rate SLO fails.
    Flaky,
}

/// Flags of `slogate demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The candidate version to judge.
    #[arg(long, value_enum, default_value = "stable")]
    pub candidate: Candidate,
    /// Measured requests to send.
    #[arg(short = 'n', long, default_value_t = 4000, value_parser = clap::value_parser!(u64).range(1..))]
    pub requests: u64,
    /// Total requests per second (open model, latency corrected for coordinated omission).
    #[arg(short = 'q', long, default_value_t = 400.0, value_parser = parse_qps)]
    pub qps: f64,
    /// Also write the result document here.
    #[arg(long, value_name = "FILE")]
    pub result_file: Option<std::path::PathBuf>,
    /// Compare the candidate with a baseline (a second, stable hello service) in a Canary
    /// experiment: both loaded at the same time, each with half the rate, and a winner.
    #[arg(long)]
    pub baseline: bool,
}

fn parse_qps(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(q) if q.is_finite() && q > 0.0 => Ok(q),
        Ok(_) => Err("must be a number above 0".to_owned()),
        Err(err) => Err(err.to_string()),
    }
}

/// The experiment the demo runs: the seed tutorial's three SLOs on one candidate.
fn demo_spec(url: String, baseline_url: Option<String>, args: &Args) -> ExperimentSpec {
    let slo = |metric: &str, limit: f64| SloSpec {
        metric: metric.to_owned(),
        upper_limit: Some(limit),
        lower_limit: None,
        version: None,
        versus: None,
        max_increase: None,
        max_decrease: None,
    };
    let mut spec = ExperimentSpec {
        name: "hello-demo".to_owned(),
        namespace: None,
        versions: vec![VersionSpec {
            name: "candidate".to_owned(),
            url,
            headers: Vec::new(),
            role: Default::default(),
            variables: Default::default(),
            weight_obj_ref: None,
            grpc: None,
        }],
        load: LoadSpec {
            connections: 8,
            qps: Some(args.qps),
            num_requests: Some(args.requests),
            warmup_requests: Some(100),
            ..LoadSpec::default()
        },
        metrics: Vec::new(),
        slos: vec![
            slo("http/error-rate", 0.0),
            slo("http/latency-mean", 50.0),
            slo("http/latency-p95", 100.0),
        ],
        confidence: slogate_core::spec::default_confidence(),
        inconclusive: Default::default(),
        result: None,
        promotion: Some(PromotionSpec::new("example", "hello", "master", "staging")),
        strategy: None,
        duration: None,
        readiness: None,
        parallelism: None,
        actions: None,
    };
    if let Some(baseline_url) = baseline_url {
        spec.versions[0].variables = [("promote".to_owned(), "candidate".to_owned())].into();
        spec.versions.insert(
            0,
            VersionSpec {
                name: "current".to_owned(),
                url: baseline_url,
                headers: Vec::new(),
                role: Role::Baseline,
                variables: [("promote".to_owned(), "baseline".to_owned())].into(),
                weight_obj_ref: None,
                grpc: None,
            },
        );
        spec.strategy = Some(StrategySpec {
            testing_pattern: TestingPattern::Canary,
            ..StrategySpec::default()
        });
        let relative = |metric: &str, change: Change| SloSpec {
            versus: Some(VERSUS_BASELINE.to_owned()),
            max_increase: Some(change),
            ..SloSpec::absolute(metric, None, None)
        };
        spec.slos
            .push(relative("http/latency-p95", Change::Percent(10.0)));
        spec.slos
            .push(relative("http/error-rate", Change::Amount(0.01)));
    }
    spec
}

/// Why the demo's candidate failed, in words: the service's own time against each limit it
/// broke, and whether slogate kept to the planned rate, so a reader sees who was slow.
fn why(result: &ExperimentResult) -> Vec<String> {
    let mut lines = Vec::new();
    for v in &result.versions {
        let failed: Vec<_> = result
            .slos
            .iter()
            .filter(|s| s.version == v.name && s.verdict != SloVerdict::Satisfied)
            .collect();
        if failed.is_empty() {
            continue;
        }
        if let Some(saturation) = &v.saturation {
            lines.push(format!(
                "Why: {} was not judged on latency: {}; rerun with fewer requests per second.",
                v.name, saturation.reason
            ));
            continue;
        }
        let pace = match (v.target_qps, v.peak_connections) {
            (Some(target), Some(peak)) => format!(
                "slogate kept to the planned {target:.0} req/s ({:.0} achieved) with up to {peak} connections, so the time is the service's own",
                v.achieved_qps
            ),
            _ => format!("slogate sent {:.0} req/s", v.achieved_qps),
        };
        for slo in failed {
            let own = v
                .service_time
                .as_ref()
                .and_then(|s| s.metrics.get(&slo.metric))
                .filter(|_| slo.metric.starts_with("http/latency") && slo.comparison.is_none());
            // Only a violated limit is the service's doing; an undecided one says why it is.
            let line = match (slo.verdict, own, slo.upper_limit) {
                (SloVerdict::Inconclusive, _, _) => {
                    format!(
                        "Why: {} is undecided on {}: {}",
                        v.name, slo.metric, slo.reason
                    )
                }
                (SloVerdict::Violated, Some(ms), Some(limit)) => format!(
                    "Why: {} fails {} <= {limit}: the service itself takes {ms:.1} ms there (time from each request's send to its answer); {pace}.",
                    v.name, slo.metric
                ),
                _ => format!("Why: {} fails {}: {}", v.name, slo.metric, slo.reason),
            };
            lines.push(line);
        }
    }
    lines
}

/// Runs `slogate demo`: exit 0 when the experiment ran, whatever its verdict.
pub async fn run(args: Args) -> CmdResult {
    let behavior = match args.candidate {
        Candidate::Stable => Behavior::stable(),
        Candidate::Slow => Behavior::slow_candidate(),
        Candidate::Flaky => Behavior::flaky_candidate(),
    };
    let server = HelloServer::start(behavior)
        .await
        .map_err(|err| Failure::Runtime(anyhow!("cannot start the hello service: {err}")))?;
    let baseline = match args.baseline {
        true => Some(
            HelloServer::start(Behavior::stable())
                .await
                .map_err(|err| {
                    Failure::Runtime(anyhow!("cannot start the baseline hello service: {err}"))
                })?,
        ),
        false => None,
    };
    let spec = demo_spec(server.url(), baseline.as_ref().map(HelloServer::url), &args);
    spec.validate()
        .map_err(|err| Failure::Runtime(anyhow!("the demo's own spec is invalid: {err}")))?;
    eprintln!(
        "slogate demo: hello service ({:?} candidate) on {}; sending {} requests at {} req/s",
        args.candidate,
        server.url(),
        args.requests,
        args.qps
    );
    if let Some(b) = &baseline {
        eprintln!(
            "slogate demo: baseline hello service (stable) on {}, loaded at the same time; each version gets half the rate and {} requests",
            b.url(),
            args.requests
        );
    }

    let mut settings = Settings {
        dry_run: true,
        ..Settings::default()
    };
    if let Some(path) = &args.result_file {
        settings.sinks.push(Box::new(FileSink::new(path)));
    }
    let result = experiment::run(&spec, &settings, &Interrupt::on_signals()).await?;
    server.shutdown().await;
    if let Some(b) = baseline {
        b.shutdown().await;
    }

    let report = slogate_report::render(&result, Format::Text)
        .map_err(|err| Failure::Runtime(anyhow!("cannot render the report: {err}")))?;
    // The pull request it would open was printed on stderr by the promotion step.
    println!("{report}");
    for line in why(&result) {
        println!("{line}");
    }
    match result.stage {
        Stage::Completed => Ok(ExitCode::SUCCESS),
        _ => Err(Failure::Runtime(anyhow!(
            "the demo experiment did not complete: {}",
            result.failure.as_deref().unwrap_or("no reason given")
        ))),
    }
}
