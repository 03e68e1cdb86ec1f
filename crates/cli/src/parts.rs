//! The parts an experiment run is made of, as small traits the driver holds lists of:
//! [`Sink`]s (file, ConfigMap), [`EvidenceSource`]s (the load engine), [`FinishAction`]s
//! (the pull request, a command), and the experiment loop's [`WeightWriter`], [`ReadinessGate`] and
//! [`EventSink`], and the load pods' [`PartialExchange`]; with the [`Settings`] that carry them and the [`Interrupt`] that stops a
//! run. A new kind of part is a new type behind one of these traits.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use slogate_core::actions::{ActionKind, ActionRecord};
use slogate_core::measure::Measurement;
use slogate_core::parallel::PodReport;
use slogate_core::result::ExperimentResult;
use slogate_core::spec::ReadinessSpec;
use slogate_loadgen::LoadProgress;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

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
    pub weights: Option<Box<dyn WeightWriter>>,
    /// What waits for the spec's `readiness` objects; `None` refuses a spec that has some.
    pub readiness: Option<Box<dyn ReadinessGate>>,
    /// Where the run's story goes (Events on the Job); `None` tells it nowhere but stderr.
    pub events: Option<Box<dyn EventSink>>,
    /// This process as index 0 of several load pods (`parallelism.pods` > 1): where the
    /// partials are exchanged; `None` for a run with one pod.
    pub load_pod: Option<LoadPodSlot>,
}

/// Which load pod this process is, and where the pods exchange their partials.
#[derive(Clone)]
pub struct LoadPodSlot {
    /// The completion index (`JOB_COMPLETION_INDEX`).
    pub index: u32,
    /// The pod's name, for the result's `loadPods`.
    pub pod: String,
    /// The pod's uid: a retry has another.
    pub uid: Option<String>,
    /// Where the partials are read and written.
    pub exchange: Arc<dyn PartialExchange>,
}

/// What [`PartialExchange::read`] returns: the report an index published, if any.
pub type ReportFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<PodReport>, String>> + Send + 'a>>;

/// Where the load pods of one experiment publish their partial reports and read each
/// other's (ConfigMaps of the Job in a cluster): one report per index, the last one wins.
pub trait PartialExchange: Send + Sync {
    /// Where, for messages.
    fn describe(&self) -> String;
    /// Publishes this pod's report, replacing its index's previous one.
    fn publish<'a>(&'a self, report: &'a PodReport) -> PartFuture<'a>;
    /// Reads the report of index `index`.
    fn read(&self, index: u32) -> ReportFuture<'_>;
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
            load_pod: None,
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

/// What a finish action did, recorded into the result document's `actions`.
#[derive(Debug, Clone)]
pub struct ActionOutcome(pub ActionRecord);

impl ActionOutcome {
    /// Writes the outcome into the document as the `index`th action, in place of its
    /// pending record. The first pull request's outcome is also the document's `promotion`,
    /// which `describe` and `assert` read as before.
    pub(crate) fn record(self, result: &mut ExperimentResult, index: usize) {
        let record = self.0;
        if record.kind == ActionKind::PullRequest && result.promotion.is_none() {
            result.promotion = record.pull_request.clone();
        }
        match result.actions.get_mut(index) {
            Some(slot) => *slot = record,
            None => result.actions.push(record),
        }
    }
}

/// Something done once the verdict is final: a pull request, a command; a gitops commit
/// later. Actions run in order; the run is `Finishing` while they do.
pub trait FinishAction: Send + Sync {
    /// What it is, for messages.
    fn describe(&self) -> String;
    /// Does it, given the judged document. Never fails: a failure is an outcome.
    fn run<'a>(&'a self, judged: &'a ExperimentResult) -> ActionFuture<'a>;
    /// The outcome when the run is interrupted while the action is under way.
    fn interrupted(&self, reason: String) -> ActionOutcome;
}

/// What the loop's parts return: `Err` is the reason, for the document and the log.
pub type PartFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// Writes every version's traffic weight at once.
pub trait WeightWriter: Send + Sync {
    /// Where it writes, for messages.
    fn describe(&self) -> String;
    /// Sets each version's weight (version name → percent) in one change per object.
    fn write<'a>(&'a self, weights: &'a BTreeMap<String, u32>) -> PartFuture<'a>;
}

/// Waits until the objects the experiment depends on are ready.
pub trait ReadinessGate: Send + Sync {
    /// Waits at most `readiness.timeout`; `Err` says which objects are not ready and why.
    fn wait<'a>(&'a self, readiness: &'a ReadinessSpec) -> PartFuture<'a>;
}

/// Tells the story of the run where people look (Kubernetes Events on the Job).
pub trait EventSink: Send + Sync {
    /// Records one event; never fails the run.
    fn emit<'a>(
        &'a self,
        warning: bool,
        reason: &'a str,
        message: &'a str,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;
}
