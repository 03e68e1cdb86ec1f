//! The one way an experiment runs, used by `slogate run`, `slogate demo` and the in-cluster
//! Job: load every version → metrics → verdict → promotion, publishing the evolving result
//! document to [`Sink`]s all along.
//!
//! The spec must already be validated. The document is published when the run starts
//! (`Running`), after each version, at least every [`Settings::publish_every`] while load is
//! sent, when the verdict is known (`Completed`) and after promotion; or as `Failed` with a
//! reason when something stops the run, a SIGTERM included.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use jiff::Timestamp;
use slogate_core::measure::Measurement;
use slogate_core::result::ExperimentResult;
use slogate_core::spec::{ExperimentSpec, VersionSpec};
use slogate_loadgen::{LoadError, LoadPlan, LoadProgress, Phase, RunOptions};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::exit::Failure;

/// What [`Sink::publish`] returns.
pub type PublishFuture<'a> = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send + 'a>>;

/// A place the result document is published to: a file, a ConfigMap …
///
/// Publishing replaces the previous document. A sink that fails while the run is under way
/// is reported and retried at the next publication; a failure of the final publication
/// fails the command.
pub trait Sink: Send + Sync {
    /// Where it publishes, for messages (e.g. `file result.json`).
    fn describe(&self) -> String;
    /// Writes the whole document.
    fn publish<'a>(&'a self, result: &'a ExperimentResult) -> PublishFuture<'a>;
}

/// Writes the document to a file atomically: a reader sees the old or the new document,
/// never half of one.
#[derive(Debug, Clone)]
pub struct FileSink {
    path: PathBuf,
}

impl FileSink {
    /// A sink writing to `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }
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
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .with_context(|| format!("{} is not a file path", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        file_name.to_string_lossy(),
        std::process::id()
    ));
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

/// Stops a run from outside (a signal, a test) and remembers why.
#[derive(Debug, Clone, Default)]
pub struct Interrupt {
    token: CancellationToken,
    reason: Arc<OnceLock<String>>,
}

impl Interrupt {
    /// An interrupt nothing triggers yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// An interrupt triggered by SIGTERM or SIGINT, with reason `Interrupted: SIGTERM` or
    /// `Interrupted: SIGINT`. Kubernetes stops a pod with SIGTERM: the run then stops the
    /// load and publishes a final `Failed` document before the pod goes away.
    pub fn on_signals() -> Self {
        let interrupt = Self::new();
        let trigger = interrupt.clone();
        tokio::spawn(async move {
            let name = wait_for_signal().await;
            trigger.trigger(format!("Interrupted: {name}"));
        });
        interrupt
    }

    /// Stops the run with `reason` (the first reason wins).
    pub fn trigger(&self, reason: impl Into<String>) {
        let _ = self.reason.set(reason.into());
        self.token.cancel();
    }

    /// Why the run was stopped, once it was.
    pub fn reason(&self) -> Option<&str> {
        self.reason.get().map(String::as_str)
    }

    /// Completes when the interrupt is triggered.
    pub async fn triggered(&self) {
        self.token.cancelled().await;
    }
}

/// Waits for SIGTERM or SIGINT and names the one that came.
async fn wait_for_signal() -> &'static str {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => "SIGTERM",
        _ = tokio::signal::ctrl_c() => "SIGINT",
    }
}

/// How a run publishes, reports and promotes.
pub struct Settings {
    /// Where the document goes.
    pub sinks: Vec<Box<dyn Sink>>,
    /// Longest time between two publications while load is sent.
    pub publish_every: Duration,
    /// Longest time between two progress lines on stderr; `None` prints none.
    pub progress_every: Option<Duration>,
    /// Token file for promotion, overriding `promotion.tokenFile` of the spec.
    pub token_file: Option<PathBuf>,
    /// Promotion renders the pull request but sends nothing.
    pub dry_run: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            sinks: Vec::new(),
            publish_every: Duration::from_secs(10),
            progress_every: Some(Duration::from_secs(5)),
            token_file: None,
            dry_run: false,
        }
    }
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
    let (plans, plan_failure) = plan_versions(spec).await?;
    let mut run = Run {
        spec,
        settings,
        result: ExperimentResult::running(spec, Timestamp::now()),
    };
    run.publish().await;
    if let Some(reason) = plan_failure {
        run.result.fail(reason, Timestamp::now());
        return Ok(run.finish().await?);
    }

    let mut measurements: Vec<Measurement> = Vec::with_capacity(spec.versions.len());
    for (version, plan) in spec.versions.iter().zip(plans) {
        match run
            .load_version(version, plan, &measurements, interrupt)
            .await
        {
            Ok(m) => {
                run.result.record_version(spec, version, &m);
                measurements.push(m);
            }
            Err(reason) => {
                run.result.fail(reason, Timestamp::now());
                return Ok(run.finish().await?);
            }
        }
        run.publish().await;
    }

    run.result.complete(spec, &measurements, Timestamp::now());
    if let Some(verdict) = &run.result.verdict {
        let word = if verdict.pass { "PASS" } else { "FAIL" };
        eprintln!("slogate: {}: {word}: {}", spec.name, verdict.reason);
    }
    if spec.promotion.is_some() {
        run.publish().await;
        let token_file = settings
            .token_file
            .clone()
            .or_else(|| spec.promotion.as_ref().and_then(|p| p.token_file.clone()));
        let outcome =
            crate::promote::promote(spec, &run.result, token_file.as_deref(), settings.dry_run)
                .await;
        run.result.promotion = Some(outcome);
    }
    Ok(run.finish().await?)
}

/// Builds every version's load plan (the body read or downloaded once). Input the engine
/// cannot use is [`Failure::Invalid`]; a failure of the environment (a payload download, TLS
/// setup) comes back as the reason the run fails, once the run has been published.
async fn plan_versions(spec: &ExperimentSpec) -> Result<(Vec<LoadPlan>, Option<String>), Failure> {
    let load = spec.load.settings().map_err(|problems| {
        let lines: Vec<String> = problems
            .iter()
            .map(|p| format!("load.{}: {}", p.path, p.reason))
            .collect();
        Failure::Invalid(anyhow!("{}", lines.join("\n")))
    })?;
    let mut plans = Vec::with_capacity(spec.versions.len());
    for (i, version) in spec.versions.iter().enumerate() {
        match LoadPlan::new(version, &load).await {
            Ok(plan) => plans.push(plan),
            Err(LoadError::BodyFile { path, source }) => {
                return Err(Failure::Invalid(anyhow!(
                    "load.bodyFile: cannot read {}: {source}",
                    path.display()
                )));
            }
            Err(LoadError::Invalid { field, reason }) => {
                let path = if field == "url" {
                    format!("versions[{i}].url")
                } else {
                    format!("load.{field}")
                };
                return Err(Failure::Invalid(anyhow!("{path}: {reason}")));
            }
            Err(other) => {
                let reason = format!("version {}: {:#}", version.name, anyhow!(other));
                return Ok((plans, Some(reason)));
            }
        }
    }
    Ok((plans, None))
}

/// One run under way.
struct Run<'a> {
    spec: &'a ExperimentSpec,
    settings: &'a Settings,
    result: ExperimentResult,
}

impl Run<'_> {
    /// Publishes to every sink; a failure is reported and the run goes on.
    async fn publish(&self) {
        for sink in &self.settings.sinks {
            if let Err(err) = sink.publish(&self.result).await {
                eprintln!(
                    "slogate: warning: cannot publish the result to {}: {err:#}",
                    sink.describe()
                );
            }
        }
    }

    /// The last publication: every sink must take it.
    async fn finish(self) -> anyhow::Result<ExperimentResult> {
        let mut failed = Vec::new();
        for sink in &self.settings.sinks {
            if let Err(err) = sink.publish(&self.result).await {
                failed.push(format!("{}: {err:#}", sink.describe()));
            }
        }
        if failed.is_empty() {
            Ok(self.result)
        } else {
            anyhow::bail!("cannot publish the final result to {}", failed.join("; "))
        }
    }

    /// Loads one version; `Err` is the reason the run fails.
    async fn load_version(
        &mut self,
        version: &VersionSpec,
        plan: LoadPlan,
        done: &[Measurement],
        interrupt: &Interrupt,
    ) -> Result<Measurement, String> {
        if let Some(reason) = interrupt.reason() {
            return Err(reason.to_owned());
        }
        let requests_before: u64 = done.iter().map(|m| m.requests).sum();
        let elapsed_before: Duration = done.iter().map(|m| m.elapsed).sum();
        let (progress_tx, mut progress_rx) = watch::channel(LoadProgress::default());
        let stop = CancellationToken::new();
        let options = RunOptions {
            progress: Some(progress_tx),
            stop: stop.clone(),
            ..RunOptions::default()
        };
        let load = slogate_loadgen::run(plan, options);
        tokio::pin!(load);

        let mut publish_tick = tokio::time::interval(self.settings.publish_every);
        publish_tick.reset();
        let progress_every = self.settings.progress_every;
        let mut print_tick =
            tokio::time::interval(progress_every.unwrap_or(Duration::from_secs(3600)));
        print_tick.reset();
        let mut stopping = false;
        let measured = loop {
            tokio::select! {
                outcome = &mut load => break outcome,
                _ = interrupt.triggered(), if !stopping => {
                    // The engine returns what it measured so far once stopped.
                    stopping = true;
                    stop.cancel();
                }
                changed = progress_rx.changed() => {
                    if changed.is_ok() {
                        let p = progress_rx.borrow_and_update().clone();
                        self.result.set_progress(requests_before + p.requests, elapsed_before + p.elapsed);
                    }
                }
                _ = publish_tick.tick() => self.publish().await,
                _ = print_tick.tick(), if progress_every.is_some() => {
                    print_progress(&version.name, &progress_rx.borrow(), self.spec);
                }
            }
        };
        let m = measured.map_err(|err| format!("version {}: {err}", version.name))?;
        if let Some(reason) = interrupt.reason() {
            // Keep what was measured of this version: it shows how far the run got.
            self.result.record_version(self.spec, version, &m);
            self.result
                .set_progress(requests_before + m.requests, elapsed_before + m.elapsed);
            return Err(reason.to_owned());
        }
        self.result
            .set_progress(requests_before + m.requests, elapsed_before + m.elapsed);
        Ok(m)
    }
}

/// One progress line on stderr, so stdout stays the document.
fn print_progress(version: &str, p: &LoadProgress, spec: &ExperimentSpec) {
    let phase = match p.phase {
        Phase::Warmup => "warming up",
        Phase::Measure => "measuring",
    };
    let planned = match (spec.load.num_requests, spec.load.duration) {
        (Some(n), _) => format!("/{n}"),
        (None, None) => format!("/{}", slogate_core::spec::DEFAULT_NUM_REQUESTS),
        (None, Some(_)) => String::new(),
    };
    eprintln!(
        "slogate: {version}: {phase}: {}{planned} requests, {} errors, {:.1}s",
        p.requests,
        p.errors,
        p.elapsed.as_secs_f64()
    );
}
