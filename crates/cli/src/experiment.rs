//! The one way an experiment runs, used by `slogate run`, `slogate demo` and the in-cluster
//! Job: load every version → metrics → verdict → promotion, publishing the evolving result
//! document to [`Sink`]s all along.
//!
//! The spec must already be validated. The document is published when the run starts
//! (`Running`), after each version, at least every [`Settings::publish_every`] while load is
//! sent or promotion is under way, when the verdict is known (`Finishing` while a pull request
//! is opened, else `Completed`) and after promotion (`Completed`); or as `Failed` with a
//! reason when something stops the load, a SIGTERM included. A SIGTERM during promotion
//! ends it at once as `interrupted`; the verdict stands. Every publication carries
//! `updatedAt` and the publish interval, so a reader can tell a run that was killed hard.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use jiff::Timestamp;
use slogate_core::measure::Measurement;
use slogate_core::result::{ExperimentResult, PromotionOutcome};
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
    ///
    /// The handlers are installed before this returns, so a signal that comes at once is
    /// not lost to the default action (which would end the process with no final document).
    pub fn on_signals() -> Self {
        let interrupt = Self::new();
        let trigger = interrupt.clone();
        let signals = Signals::install();
        tokio::spawn(async move {
            let name = signals.wait().await;
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

/// SIGTERM and SIGINT handlers, installed.
struct Signals {
    term: Option<tokio::signal::unix::Signal>,
    int: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn install() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        Self {
            term: signal(SignalKind::terminate()).ok(),
            int: signal(SignalKind::interrupt()).ok(),
        }
    }

    /// Waits for SIGTERM or SIGINT and names the one that came.
    async fn wait(mut self) -> &'static str {
        async fn recv(signal: &mut Option<tokio::signal::unix::Signal>) {
            match signal {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        }
        tokio::select! {
            _ = recv(&mut self.term) => "SIGTERM",
            _ = recv(&mut self.int) => "SIGINT",
        }
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
    // Building the plans may download the body from `payloadURL`: a signal stops that too,
    // and the run is then published as interrupted.
    let (plans, plan_failure) = tokio::select! {
        planned = plan_versions(spec) => planned?,
        _ = interrupt.triggered() => {
            (Vec::new(), Some(interrupt.reason().unwrap_or("Interrupted").to_owned()))
        }
    };
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

    let judged = slogate_core::verdict::judge_experiment(spec, &measurements);
    run.result.complete(spec, &measurements, judged, Timestamp::now());
    if let Some(verdict) = &run.result.verdict {
        let word = if verdict.pass { "PASS" } else { "FAIL" };
        eprintln!("slogate: {}: {word}: {}", spec.name, verdict.reason);
    }
    if spec.promotion.is_some() {
        // The verdict is final, but the run is not over until the pull request is: a
        // reader must not see `Completed` and "no promotion" while it is being opened.
        run.result.begin_finishing();
        run.publish().await;
        let outcome = run.promote(interrupt).await;
        run.result.promotion = Some(outcome);
        run.result.end_finishing(Timestamp::now());
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
    async fn publish(&mut self) {
        self.result
            .touch(Timestamp::now(), self.settings.publish_every);
        for sink in &self.settings.sinks {
            if let Err(err) = sink.publish(&self.result).await {
                eprintln!(
                    "slogate: warning: cannot publish the result to {}: {err:#}",
                    sink.describe()
                );
            }
        }
    }

    /// Promotes the judged result, publishing at least every publish interval while GitHub
    /// is slow (a rate limit can make it wait minutes), and stops at once when the run is
    /// interrupted: Kubernetes gives a pod 30 s after SIGTERM by default.
    async fn promote(&mut self, interrupt: &Interrupt) -> PromotionOutcome {
        let settings = self.settings;
        let token_file = settings.token_file.clone().or_else(|| {
            self.spec
                .promotion
                .as_ref()
                .and_then(|p| p.token_file.clone())
        });
        let judged = self.result.clone();
        let promote =
            crate::promote::promote(self.spec, &judged, token_file.as_deref(), settings.dry_run);
        tokio::pin!(promote);
        let mut publish_tick = tokio::time::interval(settings.publish_every);
        publish_tick.reset();
        loop {
            tokio::select! {
                biased;
                _ = interrupt.triggered() => {
                    // Dropping the promotion cancels the request in flight.
                    let reason = interrupt.reason().unwrap_or("Interrupted").to_owned();
                    eprintln!("slogate: promotion interrupted ({reason}); the SLO verdict stands");
                    return PromotionOutcome::Interrupted { reason };
                }
                outcome = &mut promote => return outcome,
                _ = publish_tick.tick() => self.publish().await,
            }
        }
    }

    /// The last publication: every sink must take it.
    async fn finish(mut self) -> anyhow::Result<ExperimentResult> {
        self.result
            .touch(Timestamp::now(), self.settings.publish_every);
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
