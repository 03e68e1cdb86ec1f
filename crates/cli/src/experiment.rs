//! The one way an experiment runs, used by `slogate run`, `slogate demo` and the in-cluster
//! Job: a driver over evidence sources → verdict → finish actions, publishing the evolving
//! result document to [`Sink`]s all along.
//!
//! The driver holds lists of small parts: [`EvidenceSource`]s (the load engine, which loads
//! every version at the same time, each with its share of the load), [`Sink`]s (file,
//! ConfigMap) and [`FinishAction`]s (the pull request). A new kind of evidence, sink or
//! action is a new type; the run itself stays as it is.
//!
//! The spec must already be validated. The document is published when the run starts
//! (`Running`), at least every [`Settings::publish_every`] while load is
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

use std::collections::BTreeMap;

use anyhow::{Context as _, anyhow};
use jiff::Timestamp;
use slogate_core::measure::Measurement;
use slogate_core::result::{ExperimentResult, PromotionOutcome};
use slogate_core::spec::ExperimentSpec;
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
    /// Where the loop writes traffic weights (a cluster's dynamic API); `None` writes none.
    pub weights: Option<Box<dyn crate::rollout::WeightWriter>>,
    /// What waits for the spec's `readiness` objects; `None` refuses a spec that has some.
    pub readiness: Option<Box<dyn crate::rollout::ReadinessGate>>,
    /// Where the run's story goes (Events on the Job); `None` tells it nowhere but stderr.
    pub events: Option<Box<dyn crate::rollout::EventSink>>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            sinks: Vec::new(),
            publish_every: Duration::from_secs(10),
            progress_every: Some(Duration::from_secs(5)),
            token_file: None,
            dry_run: false,
            weights: None,
            readiness: None,
            events: None,
        }
    }
}

/// What [`EvidenceSource::collect`] returns: per version name, what was measured, or the
/// reason the run fails.
pub type EvidenceFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<(String, Measurement)>, String>> + Send + 'a>>;

/// Progress of a source, per version name.
pub type SourceProgress = BTreeMap<String, LoadProgress>;

/// Where evidence comes from: the load engine today, Prometheus or other pods later.
///
/// A source runs until it is done or `stop` is cancelled, publishing its progress per version
/// on `progress`, and returns a [`Measurement`] per version it measured (what it measured so
/// far, when stopped). The driver merges the measurements of every source per version.
pub trait EvidenceSource: Send {
    /// What it is, for messages.
    fn describe(&self) -> String;
    /// Collects the evidence.
    fn collect(
        &mut self,
        progress: watch::Sender<SourceProgress>,
        stop: CancellationToken,
    ) -> EvidenceFuture<'_>;
    /// Readies the source for one iteration of the experiment loop: the next
    /// [`EvidenceSource::collect`] gathers `interval` of evidence (`first` for the first
    /// iteration) and returns only that; the driver adds the iterations up.
    fn next_iteration(&mut self, interval: Duration, first: bool);
}

/// What [`FinishAction::run`] returns.
pub type ActionFuture<'a> = Pin<Box<dyn Future<Output = ActionOutcome> + Send + 'a>>;

/// What a finish action did, recorded into the result document.
#[derive(Debug, Clone)]
pub enum ActionOutcome {
    /// The pull request's outcome.
    PullRequest(PromotionOutcome),
}

impl ActionOutcome {
    fn record(self, result: &mut ExperimentResult) {
        match self {
            ActionOutcome::PullRequest(outcome) => result.promotion = Some(outcome),
        }
    }
}

/// Something done once the verdict is final: the pull request today; a gitops commit or a
/// command later. Actions run in order; the run is `Finishing` while they do.
pub trait FinishAction: Send + Sync {
    /// What it is, for messages.
    fn describe(&self) -> String;
    /// Does it, given the judged document. Never fails: a failure is an outcome.
    fn run<'a>(&'a self, judged: &'a ExperimentResult) -> ActionFuture<'a>;
    /// The outcome when the run is interrupted while the action is under way.
    fn interrupted(&self, reason: String) -> ActionOutcome;
}

/// The load engine as an evidence source: every version loaded at the same time, in one
/// load run, each with its share of the connections and of the rate.
pub struct LoadSource {
    /// The plans as the spec gives them.
    planned: Vec<LoadPlan>,
    /// What the next collection runs.
    plans: Vec<LoadPlan>,
}

impl LoadSource {
    /// Builds every version's plan from its share of the spec's load (the body read or
    /// downloaded once per version). Input the engine cannot use is [`Failure::Invalid`]; a
    /// failure of the environment (a payload download, TLS setup) comes back as the reason
    /// the run fails, once the run has been published.
    pub async fn plan(spec: &ExperimentSpec) -> Result<Result<Self, String>, Failure> {
        let load = spec.load.settings().map_err(|problems| {
            let lines: Vec<String> = problems
                .iter()
                .map(|p| format!("load.{}: {}", p.path, p.reason))
                .collect();
            Failure::Invalid(anyhow!("{}", lines.join("\n")))
        })?;
        let parts = spec.versions.len() as u32;
        let mut plans = Vec::with_capacity(spec.versions.len());
        for (i, version) in spec.versions.iter().enumerate() {
            let share = load.share(parts, i as u32);
            match LoadPlan::new(version, &share).await {
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
                    return Ok(Err(format!(
                        "version {}: {:#}",
                        version.name,
                        anyhow!(other)
                    )));
                }
            }
        }
        Ok(Ok(Self {
            planned: plans.clone(),
            plans,
        }))
    }
}

impl EvidenceSource for LoadSource {
    fn describe(&self) -> String {
        format!("load of {} versions at once", self.plans.len())
    }

    fn next_iteration(&mut self, interval: Duration, first: bool) {
        self.plans = self
            .planned
            .iter()
            .map(|p| p.for_iteration(interval, first))
            .collect();
    }

    fn collect(
        &mut self,
        progress: watch::Sender<SourceProgress>,
        stop: CancellationToken,
    ) -> EvidenceFuture<'_> {
        let plans = std::mem::take(&mut self.plans);
        Box::pin(async move {
            let names: Vec<String> = plans.iter().map(|p| p.version().to_owned()).collect();
            let mut runs = Vec::with_capacity(plans.len());
            let mut forwarders = Vec::new();
            for plan in plans {
                let (tx, mut rx) = watch::channel(LoadProgress::default());
                let name = plan.version().to_owned();
                let all = progress.clone();
                // Each run's progress joins the source's map of every version.
                forwarders.push(tokio::spawn(async move {
                    while rx.changed().await.is_ok() {
                        let p = rx.borrow_and_update().clone();
                        all.send_modify(|map| {
                            map.insert(name.clone(), p);
                        });
                    }
                }));
                let options = RunOptions {
                    progress: Some(tx),
                    stop: stop.clone(),
                    ..RunOptions::default()
                };
                runs.push((plan, options));
            }
            let outcomes = slogate_loadgen::run_together(runs).await;
            for f in forwarders {
                let _ = f.await;
            }
            names
                .into_iter()
                .zip(outcomes)
                .map(|(name, outcome)| {
                    outcome
                        .map(|m| (name.clone(), m))
                        .map_err(|err| format!("version {name}: {err}"))
                })
                .collect()
        })
    }
}

/// Pull-request promotion as a finish action (the spec's `promotion`).
pub struct PullRequestAction<'s> {
    spec: &'s ExperimentSpec,
    token_file: Option<PathBuf>,
    dry_run: bool,
}

impl FinishAction for PullRequestAction<'_> {
    fn describe(&self) -> String {
        "pull request".to_owned()
    }

    fn run<'a>(&'a self, judged: &'a ExperimentResult) -> ActionFuture<'a> {
        Box::pin(async move {
            ActionOutcome::PullRequest(
                crate::promote::promote(
                    self.spec,
                    judged,
                    self.token_file.as_deref(),
                    self.dry_run,
                )
                .await,
            )
        })
    }

    fn interrupted(&self, reason: String) -> ActionOutcome {
        ActionOutcome::PullRequest(PromotionOutcome::Interrupted { reason })
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
    let planned = tokio::select! {
        planned = LoadSource::plan(spec) => planned?,
        _ = interrupt.triggered() => {
            Err(interrupt.reason().unwrap_or("Interrupted").to_owned())
        }
    };
    let mut actions: Vec<Box<dyn FinishAction + '_>> = Vec::new();
    if spec.promotion.is_some() {
        let token_file = settings
            .token_file
            .clone()
            .or_else(|| spec.promotion.as_ref().and_then(|p| p.token_file.clone()));
        actions.push(Box::new(PullRequestAction {
            spec,
            token_file,
            dry_run: settings.dry_run,
        }));
    }
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
    let mut sources: Vec<Box<dyn EvidenceSource>> = match planned {
        Ok(load) => vec![Box::new(load)],
        Err(reason) => {
            driver.result.fail(reason, Timestamp::now());
            return Ok(driver.finish().await?);
        }
    };
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
        driver.publish().await;
        for action in &actions {
            let outcome = driver.act(action.as_ref(), interrupt).await;
            outcome.record(&mut driver.result);
        }
        driver.result.end_finishing(Timestamp::now());
    }
    Ok(driver.finish().await?)
}

/// One run under way.
pub(crate) struct Driver<'a> {
    pub(crate) spec: &'a ExperimentSpec,
    pub(crate) settings: &'a Settings,
    pub(crate) result: ExperimentResult,
}

impl Driver<'_> {
    /// Publishes to every sink; a failure is reported and the run goes on.
    pub(crate) async fn publish(&mut self) {
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

    /// Runs one finish action, publishing at least every publish interval while it is slow
    /// (a GitHub rate limit can make it wait minutes), and stops it at once when the run is
    /// interrupted: Kubernetes gives a pod 30 s after SIGTERM by default.
    async fn act(&mut self, action: &dyn FinishAction, interrupt: &Interrupt) -> ActionOutcome {
        let judged = self.result.clone();
        let work = action.run(&judged);
        tokio::pin!(work);
        let mut publish_tick = tokio::time::interval(self.settings.publish_every);
        publish_tick.reset();
        loop {
            tokio::select! {
                biased;
                _ = interrupt.triggered() => {
                    // Dropping the action cancels the request in flight.
                    let reason = interrupt.reason().unwrap_or("Interrupted").to_owned();
                    eprintln!("slogate: {} interrupted ({reason}); the SLO verdict stands", action.describe());
                    return action.interrupted(reason);
                }
                outcome = &mut work => return outcome,
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

    /// Runs every source at once until all are done, following their progress, and merges
    /// their evidence per version, in the order of the spec's versions. `Err` is the reason
    /// the run fails; what was measured when it was interrupted stays in the document.
    pub(crate) async fn collect(
        &mut self,
        sources: &mut [Box<dyn EvidenceSource>],
        interrupt: &Interrupt,
    ) -> Result<Vec<Measurement>, String> {
        if let Some(reason) = interrupt.reason() {
            return Err(reason.to_owned());
        }
        let stop = CancellationToken::new();
        let mut receivers = Vec::new();
        let mut work = Vec::new();
        for source in sources.iter_mut() {
            tracing::info!(source = %source.describe(), "collecting evidence");
            let (tx, rx) = watch::channel(SourceProgress::new());
            receivers.push(rx);
            work.push(source.collect(tx, stop.clone()));
        }
        let all = futures::future::join_all(work);
        tokio::pin!(all);

        let mut publish_tick = tokio::time::interval(self.settings.publish_every);
        publish_tick.reset();
        let progress_every = self.settings.progress_every;
        let mut print_tick =
            tokio::time::interval(progress_every.unwrap_or(Duration::from_secs(3600)));
        print_tick.reset();
        let mut progress_tick = tokio::time::interval(Duration::from_millis(250));
        let mut stopping = false;
        let collected = loop {
            tokio::select! {
                outcome = &mut all => break outcome,
                _ = interrupt.triggered(), if !stopping => {
                    // The sources return what they measured so far once stopped.
                    stopping = true;
                    stop.cancel();
                }
                _ = progress_tick.tick() => {
                    let p = merged_progress(&receivers);
                    self.set_progress(&p);
                }
                _ = publish_tick.tick() => self.publish().await,
                _ = print_tick.tick(), if progress_every.is_some() => {
                    for (version, p) in &merged_progress(&receivers) {
                        print_progress(version, p, self.spec);
                    }
                }
            }
        };
        let mut by_version: BTreeMap<String, Measurement> = BTreeMap::new();
        let mut failure = None;
        for outcome in collected {
            match outcome {
                Ok(list) => {
                    for (name, m) in list {
                        match by_version.get_mut(&name) {
                            Some(sum) => sum
                                .merge(&m)
                                .map_err(|err| format!("version {name}: {err}"))?,
                            None => {
                                by_version.insert(name, m);
                            }
                        }
                    }
                }
                Err(reason) => failure = failure.or(Some(reason)),
            }
        }
        if let Some(reason) = failure {
            return Err(reason);
        }
        let measurements: Vec<Measurement> = self
            .spec
            .versions
            .iter()
            .map(|v| by_version.remove(&v.name).unwrap_or_default())
            .collect();
        let done: u64 = measurements.iter().map(|m| m.requests).sum();
        let elapsed = measurements
            .iter()
            .map(|m| m.elapsed)
            .max()
            .unwrap_or_default();
        self.result.set_progress(done, elapsed);
        if let Some(reason) = interrupt.reason() {
            // Keep what was measured: it shows how far the run got.
            for (version, m) in self.spec.versions.iter().zip(&measurements) {
                self.result.record_version(self.spec, version, m);
            }
            self.result.progress.versions = self
                .spec
                .versions
                .iter()
                .zip(&measurements)
                .map(|(v, m)| (v.name.clone(), m.requests))
                .collect();
            return Err(reason.to_owned());
        }
        Ok(measurements)
    }

    fn set_progress(&mut self, p: &SourceProgress) {
        let done: u64 = p.values().map(|x| x.requests).sum();
        let elapsed = p.values().map(|x| x.elapsed).max().unwrap_or_default();
        self.result.set_progress(done, elapsed);
        self.result.progress.versions = p
            .iter()
            .map(|(name, x)| (name.clone(), x.requests))
            .collect();
    }
}

/// The progress of every source, per version (requests of one version in several sources
/// added up).
fn merged_progress(receivers: &[watch::Receiver<SourceProgress>]) -> SourceProgress {
    let mut all = SourceProgress::new();
    for rx in receivers {
        for (name, p) in rx.borrow().iter() {
            match all.get_mut(name) {
                Some(sum) => {
                    sum.requests += p.requests;
                    sum.errors += p.errors;
                    sum.elapsed = sum.elapsed.max(p.elapsed);
                }
                None => {
                    all.insert(name.clone(), p.clone());
                }
            }
        }
    }
    all
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
