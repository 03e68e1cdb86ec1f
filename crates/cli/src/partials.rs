//! Load from several pods of an Indexed Job (`parallelism.pods` > 1).
//!
//! Every pod sends its share of the load ([`slogate_core::spec::LoadSettings::for_pod`]) on
//! one timetable agreed through the API: each pod publishes a `ready` partial; index 0 waits
//! for the others (at most `parallelism.reportTimeout`), then writes the start time and the
//! indices taking part into its own partial; every pod starts its load at that time, so the
//! open model's schedule stays one schedule. At the end each pod publishes its evidence.
//!
//! Index 0 ([`PartialsSource`], an [`EvidenceSource`]) runs its own share, waits for the
//! others' partials and merges them exactly; it alone judges, writes the result and promotes.
//! The other indices ([`run_load_pod`]) only load and publish, then exit.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::anyhow;
use jiff::Timestamp;
use slogate_core::parallel::{LoadPod, OnMissing, ParallelismSpec, PodReport, PodState};
use slogate_core::spec::ExperimentSpec;
use slogate_k8s::partials::PartialStore;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::exit::{CmdResult, Failure};
use crate::load_source::LoadSource;
use crate::parts::{
    EvidenceFuture, EvidenceSource, Interrupt, LoadPodSlot, PartFuture, PartialExchange,
    ReportFuture, SourceProgress,
};

/// How long after index 0 decides the start the load begins: time for every pod to read it.
pub const START_MARGIN: Duration = Duration::from_secs(2);
/// How often a pod looks at the other partials while it waits.
pub const POLL_EVERY: Duration = Duration::from_millis(250);
/// How late past the start a pod may still begin its share.
const LATE_SLACK: Duration = Duration::from_secs(1);

/// The partial ConfigMaps of the Job, as a [`PartialExchange`].
pub struct KubePartials(pub PartialStore);

impl PartialExchange for KubePartials {
    fn describe(&self) -> String {
        format!("ConfigMaps {}", self.0.describe())
    }

    fn publish<'a>(&'a self, report: &'a PodReport) -> PartFuture<'a> {
        Box::pin(async move {
            self.0
                .write(report)
                .await
                .map_err(|err| format!("{:#}", anyhow!(err)))
        })
    }

    fn read(&self, index: u32) -> ReportFuture<'_> {
        Box::pin(async move {
            self.0
                .read(index)
                .await
                .map_err(|err| format!("{:#}", anyhow!(err)))
        })
    }
}

/// What index 0 learnt about the load pods, for the result document.
#[derive(Debug, Clone, Default)]
pub struct PodsOutcome {
    /// A row per pod index.
    pub pods: Vec<LoadPod>,
    /// Set when the SLOs were judged on fewer pods than planned: the sentence the verdict
    /// carries.
    pub judged_on: Option<String>,
}

/// Shared between [`PartialsSource`] and the run that records its outcome.
pub type SharedOutcome = Arc<Mutex<Option<PodsOutcome>>>;

/// Index 0's evidence: its own share of the load, then every other pod's partial, merged.
pub struct PartialsSource {
    own: LoadSource,
    slot: LoadPodSlot,
    parallelism: ParallelismSpec,
    versions: Vec<String>,
    outcome: SharedOutcome,
}

impl PartialsSource {
    /// Index 0's source over its own share `own`; the outcome goes into `outcome`.
    pub fn new(
        spec: &ExperimentSpec,
        own: LoadSource,
        slot: LoadPodSlot,
        outcome: SharedOutcome,
    ) -> Self {
        Self {
            own,
            slot,
            parallelism: spec.parallelism.unwrap_or_default(),
            versions: spec.versions.iter().map(|v| v.name.clone()).collect(),
            outcome,
        }
    }

    /// Waits until `done` holds for every index in `waiting`, reading each one's partial,
    /// at most `timeout`. Returns the last report read of each (none for those never seen).
    async fn watch(
        &self,
        waiting: &BTreeSet<u32>,
        timeout: Duration,
        stop: &CancellationToken,
        done: impl Fn(&PodReport) -> bool,
    ) -> Result<BTreeMap<u32, PodReport>, String> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut seen: BTreeMap<u32, PodReport> = BTreeMap::new();
        loop {
            for &index in waiting {
                if seen.get(&index).is_some_and(&done) {
                    continue;
                }
                match self.slot.exchange.read(index).await {
                    Ok(Some(report)) if report.index == index => {
                        seen.insert(index, report);
                    }
                    Ok(_) => {}
                    Err(err) => {
                        tracing::warn!(index, %err, "cannot read a load pod's partial");
                    }
                }
            }
            let all = waiting.iter().all(|i| seen.get(i).is_some_and(&done));
            if all || tokio::time::Instant::now() >= deadline {
                return Ok(seen);
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL_EVERY) => {}
                _ = stop.cancelled() => return Ok(seen),
            }
        }
    }

    async fn run(
        &mut self,
        progress: watch::Sender<SourceProgress>,
        stop: CancellationToken,
    ) -> Result<Vec<(String, slogate_core::measure::Measurement)>, String> {
        let pods = self.parallelism.pods;
        let timeout = self.parallelism.report_timeout;
        let exchange = self.slot.exchange.clone();
        let mut me = PodReport::ready(0, self.slot.pod.clone(), self.slot.uid.clone());
        exchange.publish(&me).await.map_err(|err| {
            format!(
                "cannot publish load pod 0's partial to {}: {err}",
                exchange.describe()
            )
        })?;
        let others: BTreeSet<u32> = (1..pods).collect();
        eprintln!(
            "slogate: load pod 0 of {pods}: waiting up to {}s for the others to be ready",
            timeout.as_secs()
        );
        let seen = self.watch(&others, timeout, &stop, |_| true).await?;
        if stop.is_cancelled() {
            return Ok(Vec::new());
        }
        let mut absent: BTreeMap<u32, String> = BTreeMap::new();
        let mut reports: BTreeMap<u32, PodReport> = BTreeMap::new();
        let mut participants = vec![0];
        for &index in &others {
            match seen.get(&index) {
                Some(r) if r.state == PodState::Ready => participants.push(index),
                Some(r) if r.state == PodState::Failed => {
                    reports.insert(index, r.clone());
                }
                Some(r) => {
                    // Done before any start was agreed: a leftover, not this run's load.
                    absent.insert(
                        index,
                        format!("its partial said {:?} before the start", r.state),
                    );
                }
                None => {
                    absent.insert(
                        index,
                        format!(
                            "not ready within {}s (parallelism.reportTimeout) before the start",
                            timeout.as_secs()
                        ),
                    );
                }
            }
        }
        let start = Timestamp::now() + START_MARGIN;
        me.start_at = Some(start);
        me.participants = participants.clone();
        exchange.publish(&me).await.map_err(|err| {
            format!(
                "cannot publish the start time to {}: {err}",
                exchange.describe()
            )
        })?;
        eprintln!("slogate: load pod 0 of {pods}: pods {participants:?} start at {start}");
        sleep_until(start, &stop).await;
        if stop.is_cancelled() {
            return Ok(Vec::new());
        }
        let own = self.own.collect(progress, stop.clone()).await?;
        if stop.is_cancelled() {
            // Interrupted: what this pod measured shows how far the run got.
            return Ok(own);
        }
        let me = me.done(&own);
        if let Err(err) = exchange.publish(&me).await {
            eprintln!("slogate: warning: cannot publish load pod 0's evidence: {err}");
        }
        reports.insert(0, me);
        let running: BTreeSet<u32> = participants.iter().copied().filter(|i| *i != 0).collect();
        let finals = self
            .watch(&running, timeout, &stop, |r| {
                matches!(r.state, PodState::Done | PodState::Failed)
            })
            .await?;
        for &index in &running {
            match finals.get(&index) {
                Some(r) if matches!(r.state, PodState::Done | PodState::Failed) => {
                    reports.insert(index, r.clone());
                }
                _ => {
                    absent.insert(
                        index,
                        format!(
                            "no evidence within {}s (parallelism.reportTimeout) after the load ended",
                            timeout.as_secs()
                        ),
                    );
                }
            }
        }
        let merged = slogate_core::parallel::merge_reports(pods, &self.versions, &reports, &absent)
            .map_err(|err| format!("cannot merge the load pods' evidence: {err}"))?;
        let mut outcome = PodsOutcome {
            pods: merged.pods.clone(),
            judged_on: None,
        };
        let result = if merged.missing.is_empty() {
            Ok(merged.measurements.clone())
        } else {
            let reason = merged.missing_reason();
            match self.parallelism.on_missing {
                OnMissing::Fail => Err(reason),
                OnMissing::JudgeWhatArrived => {
                    eprintln!("slogate: {reason}; judging what arrived");
                    outcome.judged_on = Some(merged.judged_on());
                    Ok(merged.measurements.clone())
                }
            }
        };
        *self.outcome.lock().expect("outcome lock") = Some(outcome);
        result
    }
}

impl EvidenceSource for PartialsSource {
    fn describe(&self) -> String {
        format!(
            "load pod 0 of {} and the others' partials in {}",
            self.parallelism.pods,
            self.slot.exchange.describe()
        )
    }

    fn next_iteration(&mut self, interval: Duration, first: bool) {
        // Validation refuses the loop with several pods; the own share follows anyway.
        self.own.next_iteration(interval, first);
    }

    fn collect(
        &mut self,
        progress: watch::Sender<SourceProgress>,
        stop: CancellationToken,
    ) -> EvidenceFuture<'_> {
        Box::pin(self.run(progress, stop))
    }
}

/// Sleeps until `at` (or returns at once when it is past, or when `stop` is cancelled).
async fn sleep_until(at: Timestamp, stop: &CancellationToken) {
    let wait = Duration::try_from(at.duration_since(Timestamp::now())).unwrap_or_default();
    tokio::select! {
        _ = tokio::time::sleep(wait) => {}
        _ = stop.cancelled() => {}
    }
}

/// A load pod of index 1 or more: publishes `ready`, waits for index 0's start time, sends
/// its share of the load from then, publishes its evidence and exits 0. It never judges,
/// never writes the result and never promotes. A failure is published as its partial's
/// `failed` state, and the pod exits 2.
pub async fn run_load_pod(
    spec: &ExperimentSpec,
    slot: LoadPodSlot,
    interrupt: &Interrupt,
) -> CmdResult {
    let pods = spec.load_pods();
    let index = slot.index;
    let exchange = slot.exchange.clone();
    let me = PodReport::ready(index, slot.pod.clone(), slot.uid.clone());
    let fail = |reason: String| {
        let report = me.clone().failed(reason.clone());
        let exchange = exchange.clone();
        async move {
            if let Err(err) = exchange.publish(&report).await {
                eprintln!("slogate: warning: cannot publish the failure: {err}");
            }
            Err(Failure::Runtime(anyhow!(
                "load pod {index} of {pods}: {reason}"
            )))
        }
    };
    let mut load = match LoadSource::plan_pod(spec, pods, index).await? {
        Ok(load) => load,
        Err(reason) => return fail(reason).await,
    };
    exchange.publish(&me).await.map_err(|err| {
        Failure::Runtime(anyhow!("cannot publish load pod {index}'s partial: {err}"))
    })?;
    // Index 0 may first wait for readiness objects, then up to reportTimeout for the others.
    let parallelism = spec.parallelism.unwrap_or_default();
    let patience = spec
        .readiness
        .as_ref()
        .map_or(Duration::ZERO, |r| r.timeout)
        + parallelism.report_timeout
        + Duration::from_secs(30);
    eprintln!(
        "slogate: load pod {index} of {pods}: ready; waiting up to {}s for index 0's start time",
        patience.as_secs()
    );
    let deadline = tokio::time::Instant::now() + patience;
    let start = loop {
        match exchange.read(0).await {
            Ok(Some(r)) if r.start_at.is_some() => break r,
            Ok(_) => {}
            Err(err) => tracing::warn!(%err, "cannot read load pod 0's partial"),
        }
        if tokio::time::Instant::now() >= deadline {
            return fail(format!(
                "index 0 published no start time within {}s",
                patience.as_secs()
            ))
            .await;
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL_EVERY) => {}
            _ = interrupt.triggered() => {
                return fail(interrupt.reason().unwrap_or("Interrupted").to_owned()).await;
            }
        }
    };
    let at = start.start_at.expect("checked above");
    if !start.participants.contains(&index) {
        return fail(format!(
            "not ready before the start at {at}: index 0 started without this pod"
        ))
        .await;
    }
    if Timestamp::now() > at + LATE_SLACK {
        return fail(format!(
            "came late: the load started at {at} (a retried pod cannot join the timetable)"
        ))
        .await;
    }
    let stop = CancellationToken::new();
    sleep_until(at, &stop).await;
    let (progress, _rx) = watch::channel(SourceProgress::new());
    let collect = load.collect(progress, stop.clone());
    tokio::pin!(collect);
    let measured = tokio::select! {
        measured = &mut collect => measured,
        _ = interrupt.triggered() => {
            stop.cancel();
            let _ = collect.await;
            return fail(interrupt.reason().unwrap_or("Interrupted").to_owned()).await;
        }
    };
    let measured = match measured {
        Ok(m) => m,
        Err(reason) => return fail(reason).await,
    };
    let report = me.clone().done(&measured);
    let row = report.row();
    exchange.publish(&report).await.map_err(|err| {
        Failure::Runtime(anyhow!("cannot publish load pod {index}'s evidence: {err}"))
    })?;
    eprintln!(
        "slogate: load pod {index} of {pods}: done, {} requests at {:.1}/s published to {}",
        row.requests,
        row.achieved_rate,
        exchange.describe()
    );
    Ok(ExitCode::SUCCESS)
}
