//! One run under way: the document it publishes, its progress lines, and the evidence it
//! collects from every source at once. [`crate::experiment::run`] and the experiment loop
//! ([`crate::rollout`]) drive it.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use slogate_core::measure::Measurement;
use slogate_core::result::ExperimentResult;
use slogate_core::spec::ExperimentSpec;
use slogate_loadgen::{LoadProgress, Phase};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::parts::{
    ActionOutcome, EvidenceSource, FinishAction, Interrupt, Settings, SourceProgress,
};

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
    pub(crate) async fn act(
        &mut self,
        action: &dyn FinishAction,
        interrupt: &Interrupt,
    ) -> ActionOutcome {
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
    pub(crate) async fn finish(mut self) -> anyhow::Result<ExperimentResult> {
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
