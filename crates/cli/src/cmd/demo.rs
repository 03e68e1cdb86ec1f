//! `slogate demo`: the embedded default. A whole experiment against the sample hello service
//! started in this process: no cluster, no token, no network beyond loopback.

use std::process::ExitCode;

use anyhow::anyhow;
use slogate_core::result::Stage;
use slogate_core::spec::{ExperimentSpec, LoadSpec, PromotionSpec, SloSpec, VersionSpec};
use slogate_hello::{Behavior, HelloServer};
use slogate_report::Format;

use crate::exit::{CmdResult, Failure};
use crate::experiment::{self, FileSink, Interrupt, Settings};

/// Which candidate the demo judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Candidate {
    /// Fast and error-free: every SLO holds and the pull request is shown.
    Stable,
    /// Makes no errors but its tail is slow: the p95 SLO fails.
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
}

fn parse_qps(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(q) if q.is_finite() && q > 0.0 => Ok(q),
        Ok(_) => Err("must be a number above 0".to_owned()),
        Err(err) => Err(err.to_string()),
    }
}

/// The experiment the demo runs: the seed tutorial's three SLOs on one candidate.
fn demo_spec(url: String, args: &Args) -> ExperimentSpec {
    let slo = |metric: &str, limit: f64| SloSpec {
        metric: metric.to_owned(),
        upper_limit: Some(limit),
        lower_limit: None,
        version: None,
    };
    ExperimentSpec {
        name: "hello-demo".to_owned(),
        namespace: None,
        versions: vec![VersionSpec {
            name: "candidate".to_owned(),
            url,
            headers: Vec::new(),
        }],
        load: LoadSpec {
            connections: 8,
            qps: Some(args.qps),
            num_requests: Some(args.requests),
            warmup_requests: Some(100),
            ..LoadSpec::default()
        },
        slos: vec![
            slo("http/error-rate", 0.0),
            slo("http/latency-mean", 50.0),
            slo("http/latency-p95", 100.0),
        ],
        confidence: slogate_core::spec::default_confidence(),
        inconclusive: Default::default(),
        result: None,
        promotion: Some(PromotionSpec::new("example", "hello", "master", "staging")),
    }
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
    let spec = demo_spec(server.url(), &args);
    spec.validate()
        .map_err(|err| Failure::Runtime(anyhow!("the demo's own spec is invalid: {err}")))?;
    eprintln!(
        "slogate demo: hello service ({:?} candidate) on {}; sending {} requests at {} req/s",
        args.candidate,
        server.url(),
        args.requests,
        args.qps
    );

    let mut settings = Settings {
        dry_run: true,
        ..Settings::default()
    };
    if let Some(path) = &args.result_file {
        settings.sinks.push(Box::new(FileSink::new(path)));
    }
    let result = experiment::run(&spec, &settings, &Interrupt::on_signals()).await?;
    server.shutdown().await;

    let report = slogate_report::render(&result, Format::Text)
        .map_err(|err| Failure::Runtime(anyhow!("cannot render the report: {err}")))?;
    // The pull request it would open was printed on stderr by the promotion step.
    println!("{report}");
    match result.stage {
        Stage::Completed => Ok(ExitCode::SUCCESS),
        _ => Err(Failure::Runtime(anyhow!(
            "the demo experiment did not complete: {}",
            result.failure.as_deref().unwrap_or("no reason given")
        ))),
    }
}
