//! The load engine as an [`EvidenceSource`]: every version of the spec loaded at the same
//! time, each with its share of the load (and, on an Indexed Job, of this pod's share).

use std::time::Duration;

use anyhow::anyhow;
use slogate_core::spec::ExperimentSpec;
use slogate_loadgen::{LoadError, LoadPlan, LoadProgress, RunOptions};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::exit::Failure;
use crate::parts::{EvidenceFuture, EvidenceSource, SourceProgress};

/// The load engine as an evidence source: every version loaded at the same time, in one
/// load run, each with its share of the connections and of the rate.
pub struct LoadSource {
    /// The plans as the spec gives them.
    planned: Vec<LoadPlan>,
    /// What the next collection runs.
    plans: Vec<LoadPlan>,
}

impl LoadSource {
    /// Whether it loads any version at all.
    pub fn is_empty(&self) -> bool {
        self.planned.is_empty()
    }

    /// Builds every version's plan from its share of load pod `index`'s share (of `pods`;
    /// 1 and 0 for a run of one pod) of the spec's load (the body read or
    /// downloaded once per version). Input the engine cannot use is [`Failure::Invalid`]; a
    /// failure of the environment (a payload download, TLS setup) comes back as the reason
    /// the run fails, once the run has been published.
    pub async fn plan_pod(
        spec: &ExperimentSpec,
        pods: u32,
        index: u32,
    ) -> Result<Result<Self, String>, Failure> {
        let load = spec.load.settings().map_err(|problems| {
            let lines: Vec<String> = problems
                .iter()
                .map(|p| format!("load.{}: {}", p.path, p.reason))
                .collect();
            Failure::Invalid(anyhow!("{}", lines.join("\n")))
        })?;
        let load = load.for_pod(pods, index);
        // A version without url is judged on the spec's metrics only: it gets no load.
        let loaded: Vec<(usize, &slogate_core::spec::VersionSpec)> = spec
            .versions
            .iter()
            .enumerate()
            .filter(|(_, v)| !v.url.is_empty())
            .collect();
        let parts = loaded.len() as u32;
        let mut plans = Vec::with_capacity(loaded.len());
        for (share_index, (i, version)) in loaded.into_iter().enumerate() {
            let share = load.share(parts, share_index as u32);
            match LoadPlan::new(version, &share).await {
                Ok(plan) => plans.push(plan),
                Err(LoadError::BodyFile { path, source }) => {
                    return Err(Failure::Invalid(anyhow!(
                        "load.bodyFile: cannot read {}: {source}",
                        path.display()
                    )));
                }
                Err(LoadError::Grpc(err)) => {
                    let field = err.field();
                    return Err(Failure::Invalid(
                        anyhow::Error::new(err).context(format!("versions[{i}].grpc.{field}")),
                    ));
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
