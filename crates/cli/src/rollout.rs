//! The experiment loop: readiness before any load, then iterations of load, each judged on
//! the evidence gathered since the start at the per-look level
//! ([`slogate_core::looks::Looks`]), with the traffic weights the deployment pattern decides
//! written after each ([`slogate_core::rollout::DeploymentPattern::step`]).
//!
//! The loop uses the parts [`crate::parts`] names: a [`crate::parts::WeightWriter`] (the
//! Kubernetes dynamic API in a cluster), a [`crate::parts::ReadinessGate`] and a
//! [`crate::parts::EventSink`] (Kubernetes Events on the Job). Without them the loop still
//! runs and judges; it just writes no weights.
//!
//! A SIGTERM (or any stop) in the middle of a progressive or blue-green loop sets the
//! candidate's weight to 0 and the baseline's to 100: the candidate has not been shown good
//! for the traffic it had, and the baseline is what ran before the experiment, so all
//! traffic goes back to the version known to serve it.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use slogate_core::looks::Looks;
use slogate_core::measure::Measurement;
use slogate_core::result::{IterationResult, Judged, StrategyResult, Winner};
use slogate_core::rollout::{DeploymentPattern, IterationVerdict, LoopDuration, WeightLimits};
use slogate_core::spec::{ExperimentSpec, Role};
use slogate_core::verdict::{iteration_verdict, judge_experiment_at};

use crate::driver::Driver;
use crate::parts::{EvidenceSource, Interrupt};

/// The loop as the spec plans it.
#[derive(Debug, Clone, Copy)]
pub struct LoopPlan {
    /// Iterations and their length.
    pub duration: LoopDuration,
    /// How traffic moves.
    pub pattern: DeploymentPattern,
    /// Limits of a progressive shift.
    pub limits: WeightLimits,
    /// How the confidence is shared across the looks.
    pub looks: Looks,
}

impl LoopPlan {
    /// The plan of a spec with a `duration`; `None` for a run judged once at its end.
    pub fn of(spec: &ExperimentSpec) -> Option<Self> {
        let duration = spec.duration?;
        let strategy = spec.strategy.clone().unwrap_or_default();
        Some(Self {
            duration,
            pattern: strategy.deployment_pattern,
            limits: strategy.weights.unwrap_or_default(),
            looks: Looks::new(spec.confidence, duration.iterations_per_loop),
        })
    }

    /// What the document says about the plan.
    pub fn describe(&self) -> StrategyResult {
        StrategyResult {
            deployment_pattern: self.pattern,
            weights: (self.pattern == DeploymentPattern::Progressive).then_some(self.limits),
            interval_seconds: self.duration.interval_seconds,
            iterations_planned: self.duration.iterations_per_loop,
            per_look_confidence: self.looks.per_look(),
            looks_method: self.looks.method().to_owned(),
        }
    }
}

/// Every version's weight when the candidate has `candidate` percent: the baseline the
/// rest.
fn weights_of(spec: &ExperimentSpec, candidate: u32) -> BTreeMap<String, u32> {
    spec.versions
        .iter()
        .map(|v| {
            let w = match v.role {
                Role::Candidate => candidate,
                Role::Baseline => 100 - candidate.min(100),
            };
            (v.name.clone(), w)
        })
        .collect()
}

/// Shown in lines and events: `candidate 40%, current 60%`.
fn weights_text(weights: &BTreeMap<String, u32>) -> String {
    weights
        .iter()
        .map(|(name, w)| format!("{name} {w}%"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Driver<'_> {
    /// Records an event on every event sink.
    pub(crate) async fn event(&self, warning: bool, reason: &str, message: &str) {
        if let Some(events) = &self.settings.events {
            events.emit(warning, reason, message).await;
        }
    }

    /// Readiness before any load: stage `Waiting` until every object is ready. `Err` is the
    /// reason the experiment fails (no load is sent then).
    pub(crate) async fn wait_ready(&mut self, interrupt: &Interrupt) -> Result<(), String> {
        let Some(readiness) = &self.spec.readiness else {
            return Ok(());
        };
        let Some(gate) = &self.settings.readiness else {
            return Err(
                "readiness: the objects to wait for need a cluster, and none is configured"
                    .to_owned(),
            );
        };
        self.result.stage = slogate_core::result::Stage::Waiting;
        self.publish().await;
        let names: Vec<String> = readiness
            .objects
            .iter()
            .map(|o| format!("{}/{}", o.kind, o.name))
            .collect();
        eprintln!(
            "slogate: {}: waiting up to {}s for {} to be ready",
            self.spec.name,
            readiness.timeout.as_secs(),
            names.join(", ")
        );
        let outcome = tokio::select! {
            outcome = gate.wait(readiness) => outcome,
            // Stopped while waiting: the reason is the stop, as anywhere else in the run.
            _ = interrupt.triggered() => {
                return Err(interrupt.reason().unwrap_or("Interrupted").to_owned());
            }
        };
        self.result.stage = slogate_core::result::Stage::Running;
        match outcome {
            Ok(()) => {
                self.event(false, "Ready", &format!("{} ready", names.join(", ")))
                    .await;
                Ok(())
            }
            Err(reason) => {
                let reason = format!("not ready, no load sent: {reason}");
                self.event(true, "NotReady", &reason).await;
                Err(reason)
            }
        }
    }

    /// Writes weights and says so; `Err` is the reason the experiment fails.
    async fn write_weights(
        &self,
        weights: &BTreeMap<String, u32>,
        reason: &str,
    ) -> Result<(), String> {
        let Some(writer) = &self.settings.weights else {
            return Ok(());
        };
        writer.write(weights).await.map_err(|err| {
            format!(
                "cannot write the weights ({}) to {}: {err}",
                weights_text(weights),
                writer.describe()
            )
        })?;
        let line = format!("weights {}: {reason}", weights_text(weights));
        eprintln!("slogate: {}: {line}", self.spec.name);
        self.event(false, "WeightsChanged", &line).await;
        Ok(())
    }

    /// The loop: iterations of load, each judged, the weights moved after each. Returns the
    /// evidence and the last look's judgement; `Err` is the reason the run fails, after
    /// the weights went back to the baseline.
    pub(crate) async fn iterate(
        &mut self,
        sources: &mut [Box<dyn EvidenceSource>],
        plan: &LoopPlan,
        interrupt: &Interrupt,
    ) -> Result<(Vec<Measurement>, Judged), String> {
        let spec = self.spec;
        self.result.strategy = Some(plan.describe());
        let planned = plan.duration.iterations_per_loop;
        eprintln!(
            "slogate: {}: {} iterations of {}s, {:?}; {}",
            spec.name,
            planned,
            plan.duration.interval_seconds,
            plan.pattern,
            plan.looks.describe()
        );
        let mut current = plan.pattern.initial_weight();
        if let Some(w) = current {
            self.write_weights(&weights_of(spec, w), "the loop starts")
                .await?;
        }
        let mut total: Vec<Measurement> = Vec::new();
        let mut index = 0;
        loop {
            index += 1;
            let last = index == planned;
            let collected = self
                .collect_for(sources, plan.duration.interval(), index == 1, interrupt)
                .await;
            let measured = match collected {
                Ok(m) => m,
                Err(reason) => {
                    self.back_to_baseline(current, &reason).await;
                    return Err(reason);
                }
            };
            if total.is_empty() {
                total = measured;
            } else {
                for (sum, m) in total.iter_mut().zip(&measured) {
                    sum.append(m).map_err(|err| err.to_string())?;
                }
            }
            let judged = judge_experiment_at(spec, &total, plan.looks.per_look());
            let verdict = iteration_verdict(&judged, last);
            let step = plan.pattern.step(plan.limits, current, verdict, last);
            let reason = judged.verdict.reason.clone();
            let requests: u64 = total.iter().map(|m| m.requests).sum();
            let weights = step
                .candidate_weight
                .map(|w| weights_of(spec, w))
                .unwrap_or_default();
            eprintln!(
                "slogate: {}: iteration {index}/{planned}: {}: {}{}",
                spec.name,
                verdict_word(verdict),
                reason,
                if weights.is_empty() {
                    String::new()
                } else {
                    format!(" → {}", weights_text(&weights))
                }
            );
            if step.candidate_weight != current
                && let Some(w) = step.candidate_weight
            {
                let why = if step.rollback {
                    format!("rolled back at iteration {index}: {reason}")
                } else {
                    format!("iteration {index} passed")
                };
                if let Err(err) = self.write_weights(&weights_of(spec, w), &why).await {
                    self.back_to_baseline(current, &err).await;
                    return Err(err);
                }
                current = Some(w);
            }
            if step.rollback {
                self.event(true, "RolledBack", &format!("iteration {index}: {reason}"))
                    .await;
            }
            self.result.iterations.push(IterationResult {
                index,
                at: Timestamp::now(),
                requests,
                weights,
                verdict,
                rollback: step.rollback,
                reason: reason.clone(),
            });
            for (version, m) in spec.versions.iter().zip(&total) {
                self.result.record_version(spec, version, m);
            }
            self.result.slos = judged.slos.clone();
            self.publish().await;
            if step.ends {
                let judged = if step.rollback && !last {
                    rolled_back(spec, judged, index)
                } else {
                    judged
                };
                return Ok((total, judged));
            }
        }
    }

    /// After a failure or a stop in the middle of the loop: all traffic back to the
    /// baseline, when the candidate had some.
    async fn back_to_baseline(&self, current: Option<u32>, reason: &str) {
        if current.is_some_and(|w| w > 0) {
            let weights = weights_of(self.spec, 0);
            if let Err(err) = self
                .write_weights(&weights, &format!("stopped: {reason}"))
                .await
            {
                eprintln!("slogate: warning: {err}");
            }
            self.event(true, "RolledBack", &format!("stopped: {reason}"))
                .await;
        }
    }

    /// One iteration's evidence: the sources run for `interval` (warmup only in the first).
    async fn collect_for(
        &mut self,
        sources: &mut [Box<dyn EvidenceSource>],
        interval: Duration,
        first: bool,
        interrupt: &Interrupt,
    ) -> Result<Vec<Measurement>, String> {
        for source in sources.iter_mut() {
            source.next_iteration(interval, first);
        }
        self.collect(sources, interrupt).await
    }
}

/// A rollback before the last look: the loop ends with the baseline as the winner, and the
/// verdict says where and why.
fn rolled_back(spec: &ExperimentSpec, mut judged: Judged, index: u32) -> Judged {
    let reason = format!(
        "Rolled back at iteration {index}: {}",
        judged.verdict.reason
    );
    judged.verdict.pass = false;
    judged.verdict.reason = reason.clone();
    if let Some(baseline) = spec.baseline() {
        judged.winner = Some(Winner {
            found: true,
            name: Some(baseline.name.clone()),
            role: Some(Role::Baseline),
            variables: baseline.variables.clone(),
            reason,
        });
    }
    judged
}

/// One word per look verdict, for the progress lines.
fn verdict_word(v: IterationVerdict) -> &'static str {
    match v {
        IterationVerdict::Pass => "pass",
        IterationVerdict::Fail => "fail",
        IterationVerdict::Inconclusive => "inconclusive",
    }
}
