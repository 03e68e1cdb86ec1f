//! The one way an experiment runs, used by `slogate run`, `slogate demo` and the in-cluster
//! Job: a driver over evidence sources → verdict → finish actions, publishing the evolving
//! result document to [`Sink`]s all along.
//!
//! The driver holds lists of small parts: [`EvidenceSource`]s (the load engine of
//! [`crate::load_source`], which loads every version at the same time, each with its share
//! of the load; on an Indexed Job, index 0's [`crate::partials::PartialsSource`] adds the
//! other pods' partials), [`Sink`]s (file, ConfigMap) and [`FinishAction`]s (the pull
//! request, a command, a gitops commit: the spec's `promotion` and `actions.finish`, each run when its `if`
//! holds and recorded in the result's `actions`). A new kind of evidence, sink or
//! action is a new type; the run itself stays as it is.
//!
//! The spec must already be validated. The document is published when the run starts
//! (`Running`), at least every [`Settings::publish_every`] while load is
//! sent or an action is under way, when the verdict is known (`Finishing` while the finish
//! actions run, every one listed as pending; else `Completed`), as each action starts and ends,
//! and after the last (`Completed`); or as `Failed` with a reason when something stops the
//! load, a SIGTERM included. A SIGTERM during an action ends it at once as `interrupted` (a
//! command is killed); the verdict stands. Every publication carries
//! `updatedAt` and the publish interval, so a reader can tell a run that was killed hard.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};
use jiff::Timestamp;
use slogate_core::actions::{self, Action, PlannedAction};
use slogate_core::result::{ExperimentResult, PromotionOutcome};
use slogate_core::spec::{ExperimentSpec, PromoteWhen, PromotionSpec};

use crate::driver::Driver;
use crate::exit::Failure;
use crate::load_source::LoadSource;
pub use crate::parts::{
    ActionFuture, ActionOutcome, EvidenceSource, FinishAction, Interrupt, PublishFuture, Settings,
    Sink,
};

/// Writes the document to a file atomically: a reader sees the old or the new document,
/// never half of one.
#[derive(Debug, Clone)]
pub struct FileSink {
    path: PathBuf,
}

impl FileSink {
    /// A sink writing to `path`. Temporary files that earlier runs killed in the middle of
    /// a write left next to it are removed.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let sink = Self { path: path.into() };
        for stray in stray_temp_files(&sink.path) {
            match std::fs::remove_file(&stray) {
                Ok(()) => {
                    tracing::info!(file = %stray.display(), "removed a temporary file of an earlier run")
                }
                Err(err) => {
                    tracing::debug!(file = %stray.display(), %err, "cannot remove a temporary file")
                }
            }
        }
        sink
    }
}

/// The temporary file [`write_atomically`] writes before renaming it over `path`.
fn temp_path(path: &Path, pid: u32) -> anyhow::Result<PathBuf> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .with_context(|| format!("{} is not a file path", path.display()))?;
    Ok(dir.join(format!(".{}.{pid}.tmp", file_name.to_string_lossy())))
}

/// Temporary files of `path` left by processes that no longer run (killed between the
/// write and the rename).
fn stray_temp_files(path: &Path) -> Vec<PathBuf> {
    let (Ok(own), Some(name)) = (temp_path(path, 0), path.file_name()) else {
        return Vec::new();
    };
    let dir = own.parent().map(Path::to_path_buf).unwrap_or_default();
    let prefix = format!(".{}.", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let file = entry.file_name().into_string().ok()?;
            let pid: u32 = file
                .strip_prefix(&prefix)?
                .strip_suffix(".tmp")?
                .parse()
                .ok()?;
            let gone = pid != std::process::id() && !process_runs(pid);
            gone.then(|| entry.path())
        })
        .collect()
}

/// Whether a process with this id runs on this machine (Linux: it has a `/proc` entry;
/// elsewhere every other process counts as gone).
fn process_runs(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

impl Sink for FileSink {
    fn describe(&self) -> String {
        format!("file {}", self.path.display())
    }

    fn publish<'a>(&'a self, result: &'a ExperimentResult) -> PublishFuture<'a> {
        Box::pin(async move { write_atomically(&self.path, result.to_json().as_bytes()).await })
    }
}

/// Writes `bytes` to a temporary file next to `path`, then renames it over `path`.
pub async fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = temp_path(path, std::process::id())?;
    let write = async {
        let mut file = tokio::fs::File::create(&tmp).await?;
        tokio::io::AsyncWriteExt::write_all(&mut file, bytes).await?;
        tokio::io::AsyncWriteExt::write_all(&mut file, b"\n").await?;
        file.sync_all().await?;
        tokio::fs::rename(&tmp, path).await
    };
    if let Err(err) = write.await {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(err).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}

/// Pull-request promotion as a finish action (the spec's `promotion`, or a `pullRequest`
/// entry of `actions.finish`).
pub struct PullRequestAction<'s> {
    planned: PlannedAction<'s>,
    settings: PromotionSpec,
    token_file: Option<PathBuf>,
    dry_run: bool,
}

impl<'s> PullRequestAction<'s> {
    /// The action `planned` describes, sending with the token in `token_file`.
    pub fn new(
        planned: PlannedAction<'s>,
        settings: &PromotionSpec,
        token_file: Option<PathBuf>,
        dry_run: bool,
    ) -> Self {
        let mut settings = settings.clone();
        // The `if` was checked before the action runs; the promotion's own gate then only
        // refuses a run without a verdict. The `promotion` block keeps its `when`, so its
        // skip reasons read as before.
        if !planned.shorthand {
            settings.when = PromoteWhen::Always;
        }
        Self {
            planned,
            settings,
            token_file,
            dry_run,
        }
    }
}

impl FinishAction for PullRequestAction<'_> {
    fn describe(&self) -> String {
        format!("pull request ({})", self.planned.at)
    }

    fn run<'a>(&'a self, judged: &'a ExperimentResult) -> ActionFuture<'a> {
        Box::pin(async move {
            let outcome = crate::promote::promote(
                &self.settings,
                judged,
                self.token_file.as_deref(),
                self.dry_run,
            )
            .await;
            ActionOutcome(actions::pull_request_record(&self.planned, outcome))
        })
    }

    fn interrupted(&self, reason: String) -> ActionOutcome {
        ActionOutcome(actions::pull_request_record(
            &self.planned,
            PromotionOutcome::Interrupted { reason },
        ))
    }
}

/// Whether `planned` runs for the judged result: `Err` is why it is skipped. The
/// `promotion` block decides with its own `when`, as it always did.
fn gate(planned: &PlannedAction<'_>, judged: &ExperimentResult) -> Result<(), String> {
    match planned.action {
        Action::PullRequest(_) if planned.shorthand => Ok(()),
        _ => planned.condition.holds(judged),
    }
}

/// The finish actions of `spec`, in order, ready to run.
fn finish_actions<'s>(
    spec: &'s ExperimentSpec,
    settings: &Settings,
) -> Vec<(PlannedAction<'s>, Box<dyn FinishAction + 's>)> {
    let token_file = |pr: &PromotionSpec| settings.token_file.clone().or(pr.token_file.clone());
    let gitops_token = |g: &slogate_core::actions::GitopsSpec| {
        settings.token_file.clone().or(g.token_file.clone())
    };
    // Whatever a command prints, the tokens the pull requests use never reach the result.
    let secrets = crate::exec::Secrets::of(
        spec.finish_actions()
            .iter()
            .filter_map(|planned| match planned.action {
                Action::PullRequest(pr) => token_file(pr),
                Action::Gitops(g) => gitops_token(g),
                Action::Exec(_) => None,
            })
            // `--token-file` counts even when no pull request uses it.
            .chain(settings.token_file.clone()),
    );
    spec.finish_actions()
        .into_iter()
        .map(|planned| {
            let action: Box<dyn FinishAction + 's> = match planned.action {
                Action::PullRequest(pr) => Box::new(PullRequestAction::new(
                    planned.clone(),
                    pr,
                    token_file(pr),
                    settings.dry_run,
                )),
                Action::Exec(exec) => Box::new(crate::exec::ExecAction::new(
                    planned.clone(),
                    exec,
                    secrets.clone(),
                )),
                Action::Gitops(gitops) => Box::new(crate::gitops::GitopsAction::new(
                    planned.clone(),
                    gitops,
                    gitops_token(gitops),
                    secrets.clone(),
                    settings.dry_run,
                )),
            };
            (planned, action)
        })
        .collect()
}

/// Runs a validated experiment to its end and returns the final document (stage
/// `Completed`, or `Failed` with a reason).
///
/// Every version's load plan is built first: a body file that cannot be read or a setting
/// the engine refuses is invalid input ([`Failure::Invalid`]) and nothing is published.
/// Otherwise it errors only when the final document could not be published to some sink.
pub async fn run(
    spec: &ExperimentSpec,
    settings: &Settings,
    interrupt: &Interrupt,
) -> Result<ExperimentResult, Failure> {
    // Building the plans may download the body from `payloadURL`: a signal stops that too,
    // and the run is then published as interrupted.
    let pods = spec.load_pods();
    let slot = match (&settings.load_pod, pods) {
        (_, 1) => None,
        (Some(slot), _) => Some(slot.clone()),
        (None, _) => {
            return Err(Failure::Invalid(anyhow!(
                "parallelism.pods: {pods} load pods run as the slo-pr chart's Indexed Job, in a cluster; here there is no Job to share the load with (set parallelism.pods to 1)"
            )));
        }
    };
    let planned = tokio::select! {
        planned = LoadSource::plan_pod(spec, pods, 0) => planned?,
        _ = interrupt.triggered() => {
            Err(interrupt.reason().unwrap_or("Interrupted").to_owned())
        }
    };
    let actions = finish_actions(spec, settings);
    let mut driver = Driver {
        spec,
        settings,
        result: ExperimentResult::running(spec, Timestamp::now()),
    };
    if let Err(reason) = driver.wait_ready(interrupt).await {
        driver.result.fail(reason, Timestamp::now());
        return Ok(driver.finish().await?);
    }
    driver.publish().await;
    let pods_outcome = crate::partials::SharedOutcome::default();
    let mut sources: Vec<Box<dyn EvidenceSource>> = match (planned, slot) {
        (Ok(load), None) if load.is_empty() => Vec::new(),
        (Ok(load), None) => vec![Box::new(load)],
        (Ok(load), Some(slot)) => vec![Box::new(crate::partials::PartialsSource::new(
            spec,
            load,
            slot,
            pods_outcome.clone(),
        ))],
        (Err(reason), _) => {
            driver.result.fail(reason, Timestamp::now());
            return Ok(driver.finish().await?);
        }
    };
    if !spec.metrics.is_empty() {
        match crate::prometheus_source::PrometheusSource::new(spec) {
            Ok(source) => sources.push(Box::new(source)),
            Err(reason) => {
                driver.result.fail(reason, Timestamp::now());
                return Ok(driver.finish().await?);
            }
        }
    }
    driver
        .event(
            false,
            "Started",
            &format!("experiment {} started", spec.name),
        )
        .await;

    let evidence = match crate::rollout::LoopPlan::of(spec) {
        Some(plan) => driver.iterate(&mut sources, &plan, interrupt).await,
        None => driver.collect(&mut sources, interrupt).await.map(|m| {
            let judged = slogate_core::verdict::judge_experiment(spec, &m);
            (m, judged)
        }),
    };
    let pods_outcome = pods_outcome.lock().expect("outcome lock").take();
    let judged_on = pods_outcome.as_ref().and_then(|o| o.judged_on.clone());
    if let Some(outcome) = pods_outcome {
        driver.result.load_pods = outcome.pods;
    }
    let (measurements, judged) = match evidence {
        Ok(e) => e,
        Err(reason) => {
            driver
                .event(true, "Failed", &format!("experiment failed: {reason}"))
                .await;
            driver.result.fail(reason, Timestamp::now());
            return Ok(driver.finish().await?);
        }
    };
    driver
        .result
        .complete(spec, &measurements, judged, Timestamp::now());
    if let (Some(note), Some(verdict)) = (judged_on, driver.result.verdict.as_mut()) {
        verdict.reason = format!("{} ({note})", verdict.reason);
    }
    if let Some(verdict) = &driver.result.verdict {
        let word = if verdict.pass { "Passed" } else { "FailedSLOs" };
        driver
            .event(!verdict.pass, word, &verdict.reason.clone())
            .await;
    }
    if let Some(verdict) = &driver.result.verdict {
        let word = if verdict.pass { "PASS" } else { "FAIL" };
        eprintln!("slogate: {}: {word}: {}", spec.name, verdict.reason);
    }
    if let Some(winner) = &driver.result.winner {
        eprintln!("slogate: {}: winner: {}", spec.name, winner.reason);
    }
    if !actions.is_empty() {
        // The verdict is final, but the run is not over until its actions are: a reader
        // must not see `Completed` and "no promotion" while a pull request is being opened.
        driver.result.begin_finishing();
        // Every action is listed from the start, so a reader sees what is still to come.
        driver.result.actions = actions
            .iter()
            .map(|(planned, _)| actions::unfinished(planned, actions::Outcome::Pending))
            .collect();
        driver.publish().await;
        for (index, (planned, action)) in actions.iter().enumerate() {
            let outcome = match gate(planned, &driver.result) {
                Ok(()) => {
                    ActionOutcome(actions::unfinished(planned, actions::Outcome::Running))
                        .record(&mut driver.result, index);
                    driver.publish().await;
                    driver.act(action.as_ref(), interrupt).await
                }
                Err(reason) => {
                    eprintln!("slogate: {} skipped: {reason}", action.describe());
                    ActionOutcome(actions::skipped(planned, reason))
                }
            };
            outcome.record(&mut driver.result, index);
            driver.publish().await;
        }
        driver.result.end_finishing(Timestamp::now());
    }
    Ok(driver.finish().await?)
}
