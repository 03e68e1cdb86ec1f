//! `slogate assert`: gate a pipeline on an experiment's result.
//!
//! Each condition is true, false, or not yet known while the experiment runs. The command
//! waits (up to `--timeout`) only while some condition is unknown, and stops as soon as the
//! experiment is done: a finished experiment's answer cannot change. A result whose run
//! stopped publishing (killed hard; in a cluster, its Job gone or failed) will never be
//! done: that is an error at once, not a wait until the timeout.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::anyhow;
use slogate_core::result::{ExperimentResult, Stage};
use tokio::time::Instant;

use crate::exit::{CONDITION_FALSE, CmdResult, Failure};
use crate::source::{SourceArgs, load_result, run_notes};

/// Flags of `slogate assert`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub source: SourceArgs,
    /// A condition that must hold; repeat for several: completed, nofailure, slos,
    /// winnerFound, winner=NAME.
    #[arg(short = 'c', long = "condition", value_parser = parse_condition, required = true)]
    pub conditions: Vec<Condition>,
    /// Wait up to this long for a running experiment to decide (e.g. 5m); default: check once.
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Time between two reads while waiting.
    #[arg(long, default_value = "1s", value_parser = parse_duration, hide = true)]
    pub interval: Duration,
}

/// A condition `assert` checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// The experiment completed (it ran to its end).
    Completed,
    /// The experiment did not fail.
    NoFailure,
    /// Every SLO holds: the overall verdict is pass.
    Slos,
    /// A Canary experiment found a winner.
    WinnerFound,
    /// A Canary experiment's winner is this version.
    Winner(String),
}

/// Reads `completed`, `nofailure`, `slos`, `winnerFound` or `winner=NAME`.
fn parse_condition(text: &str) -> Result<Condition, String> {
    Ok(match text {
        "completed" => Condition::Completed,
        "nofailure" => Condition::NoFailure,
        "slos" => Condition::Slos,
        "winnerFound" => Condition::WinnerFound,
        _ => match text.strip_prefix("winner=") {
            Some(name) if !name.trim().is_empty() => Condition::Winner(name.to_owned()),
            _ => {
                return Err(format!(
                    "{} is not a condition: completed, nofailure, slos, winnerFound or winner=NAME",
                    slogate_core::quote::quote(text)
                ));
            }
        },
    })
}

/// What a condition says about the current document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Truth {
    True,
    False,
    /// The experiment is running: the answer can still change.
    Pending,
}

impl Condition {
    fn name(&self) -> String {
        match self {
            Condition::Completed => "completed".to_owned(),
            Condition::NoFailure => "nofailure".to_owned(),
            Condition::Slos => "slos".to_owned(),
            Condition::WinnerFound => "winnerFound".to_owned(),
            Condition::Winner(name) => format!("winner={name}"),
        }
    }

    fn check(&self, r: &ExperimentResult) -> (Truth, String) {
        let failure = r.failure.as_deref().unwrap_or("no reason given");
        if let Condition::WinnerFound | Condition::Winner(_) = self {
            return self.check_winner(r);
        }
        match (self, r.stage) {
            (_, Stage::Waiting) => (
                Truth::Pending,
                "the experiment is waiting for its readiness objects".to_owned(),
            ),
            (_, Stage::Running) => (Truth::Pending, "the experiment is still running".to_owned()),
            // The verdict is final once judged; the run is not over until promotion is.
            (Condition::Slos, Stage::Finishing) => match &r.verdict {
                Some(v) if v.pass => (Truth::True, v.reason.clone()),
                Some(v) => (Truth::False, v.reason.clone()),
                None => (Truth::Pending, "the experiment is finishing".to_owned()),
            },
            (_, Stage::Finishing) => (
                Truth::Pending,
                "the experiment is finishing: promotion is under way".to_owned(),
            ),
            (Condition::Completed, Stage::Completed) | (Condition::NoFailure, Stage::Completed) => {
                (Truth::True, "the experiment completed".to_owned())
            }
            (_, Stage::Failed) => (Truth::False, format!("the experiment failed: {failure}")),
            (Condition::Slos, Stage::Completed) => match &r.verdict {
                Some(v) if v.pass => (Truth::True, v.reason.clone()),
                Some(v) => (Truth::False, v.reason.clone()),
                None => (Truth::False, "the result has no verdict".to_owned()),
            },
            (Condition::WinnerFound | Condition::Winner(_), _) => self.check_winner(r),
        }
    }

    /// The winner is known once the verdict is (stage `Finishing` or `Completed`).
    fn check_winner(&self, r: &ExperimentResult) -> (Truth, String) {
        match r.stage {
            Stage::Waiting | Stage::Running => {
                return (Truth::Pending, "the experiment is still running".to_owned());
            }
            Stage::Failed => {
                let failure = r.failure.as_deref().unwrap_or("no reason given");
                return (Truth::False, format!("the experiment failed: {failure}"));
            }
            Stage::Finishing | Stage::Completed => {}
        }
        let Some(winner) = &r.winner else {
            return (
                Truth::False,
                "the experiment is not a Canary experiment: it has no winner assessment".to_owned(),
            );
        };
        match self {
            Condition::WinnerFound => {
                let truth = if winner.found {
                    Truth::True
                } else {
                    Truth::False
                };
                (truth, winner.reason.clone())
            }
            Condition::Winner(name) => {
                let truth = if winner.name.as_deref() == Some(name.as_str()) {
                    Truth::True
                } else {
                    Truth::False
                };
                (truth, winner.reason.clone())
            }
            _ => unreachable!("only winner conditions are checked here"),
        }
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    slogate_core::spec::parse_duration(text).map_err(|err| err.to_string())
}

/// Runs `slogate assert`: 0 all hold, 1 one is false for good, 2 error or timeout.
pub async fn run(args: Args) -> CmdResult {
    let source = args.source.source();
    let deadline = Instant::now() + args.timeout.unwrap_or(Duration::ZERO);
    loop {
        let result = match load_result(&source).await {
            Ok(result) => result,
            // A file not written yet may appear before the deadline; a document that is
            // not a result will not become one.
            Err(Failure::Runtime(err)) if Instant::now() < deadline => {
                tracing::debug!("waiting for {source}: {err:#}");
                tokio::time::sleep(args.interval).await;
                continue;
            }
            Err(failure) => return Err(failure),
        };
        let notes = run_notes(&source, &result).await;
        let checks: Vec<(Condition, Truth, String)> = args
            .conditions
            .iter()
            .map(|c| {
                let (truth, why) = c.check(&result);
                (c.clone(), truth, why)
            })
            .collect();
        let any_false = checks.iter().any(|c| c.1 == Truth::False);
        let all_true = checks.iter().all(|c| c.1 == Truth::True);
        if any_false || all_true {
            for (condition, truth, why) in &checks {
                let mark = if *truth == Truth::True { "✔" } else { "✘" };
                println!("{mark} {}: {why}", condition.name());
            }
            return if all_true {
                Ok(ExitCode::SUCCESS)
            } else {
                Ok(ExitCode::from(CONDITION_FALSE))
            };
        }
        if !notes.is_empty() {
            return Err(Failure::Runtime(anyhow!(
                "experiment {source} will not finish ({} not decided): {}",
                checks
                    .iter()
                    .filter(|c| c.1 == Truth::Pending)
                    .map(|c| c.0.name())
                    .collect::<Vec<_>>()
                    .join(", "),
                notes.join("; ")
            )));
        }
        if Instant::now() >= deadline {
            let waiting = match args.timeout {
                Some(t) => format!("after {}", humantime::format_duration(t)),
                None => "(use --timeout to wait for it)".to_owned(),
            };
            return Err(Failure::Runtime(anyhow!(
                "experiment {source} is still running {waiting}: {} not decided yet",
                checks
                    .iter()
                    .filter(|c| c.1 == Truth::Pending)
                    .map(|c| c.0.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        tokio::time::sleep(args.interval).await;
    }
}
