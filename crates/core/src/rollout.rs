//! The experiment loop's spec and its pure rules: iterations (`duration`), the deployment
//! pattern and its weight limits (`strategy.deploymentPattern`, `strategy.weights`), where
//! each version's traffic weight is written (`weightObjRef` with a `fieldPath`), and the
//! objects that must be ready before any load (`readiness`).
//!
//! [`DeploymentPattern::step`] is the whole traffic strategy: given the pattern, the limits,
//! the candidate's current weight and the iteration's verdict, the next weight and whether
//! the loop goes on. The driver writes what it returns; nothing here does I/O.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::quote::quote;

/// How traffic moves between the baseline and the candidate during the loop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeploymentPattern {
    /// No traffic change: weights are never written (the default).
    #[default]
    FixedSplit,
    /// After each iteration whose verdict is pass, the candidate's weight rises by at most
    /// `maxCandidateWeightIncrement`, never above `maxCandidateWeight`; the baseline gets
    /// the rest. A failing iteration rolls back to 0.
    Progressive,
    /// The candidate gets no traffic during the loop and all of it (100) at the end when
    /// the experiment passes; a failing iteration keeps it at 0.
    BlueGreen,
}

impl DeploymentPattern {
    /// Whether this pattern writes weights at all.
    pub fn moves_traffic(self) -> bool {
        self != DeploymentPattern::FixedSplit
    }
}

/// The limits of a progressive shift, in percent of the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WeightLimits {
    /// The most traffic the candidate gets during the loop. Default 100.
    #[serde(default = "default_max_weight")]
    pub max_candidate_weight: u32,
    /// The most the candidate's weight rises after one iteration. Default 10.
    #[serde(default = "default_max_increment")]
    pub max_candidate_weight_increment: u32,
}

impl Default for WeightLimits {
    fn default() -> Self {
        Self {
            max_candidate_weight: default_max_weight(),
            max_candidate_weight_increment: default_max_increment(),
        }
    }
}

fn default_max_weight() -> u32 {
    100
}

fn default_max_increment() -> u32 {
    10
}

/// The loop's timing: `iterationsPerLoop` iterations of `intervalSeconds` each. Load runs
/// across all of them; each iteration judges the evidence gathered since the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoopDuration {
    /// Seconds of load per iteration. Default 20.
    #[serde(default = "default_interval")]
    pub interval_seconds: u64,
    /// Iterations in the loop. Default 15.
    #[serde(default = "default_iterations")]
    pub iterations_per_loop: u32,
}

impl Default for LoopDuration {
    fn default() -> Self {
        Self {
            interval_seconds: default_interval(),
            iterations_per_loop: default_iterations(),
        }
    }
}

impl LoopDuration {
    /// One iteration's length.
    pub fn interval(&self) -> Duration {
        Duration::from_secs(self.interval_seconds)
    }

    /// The whole loop's planned length.
    pub fn total(&self) -> Duration {
        Duration::from_secs(
            self.interval_seconds
                .saturating_mul(u64::from(self.iterations_per_loop)),
        )
    }
}

fn default_interval() -> u64 {
    20
}

fn default_iterations() -> u32 {
    15
}

/// Where a version's traffic weight lives: a field of any Kubernetes object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WeightObjRef {
    /// `group/version` of the object.
    pub api_version: String,
    /// Its kind.
    pub kind: String,
    /// Its namespace; absent means the experiment's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
    /// The weight's field, as the tutorials write it: `.spec.http[0].route[1].weight`.
    pub field_path: String,
}

/// One step of a [`FieldPath`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathStep {
    /// A field of a mapping.
    Key(String),
    /// An element of a list.
    Index(usize),
}

/// A parsed `fieldPath` such as `.spec.rules[0].backendRefs[1].weight`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath(pub Vec<PathStep>);

/// Why a `fieldPath` was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} is not a field path like .spec.http[0].route[1].weight: {reason}", quote(.text))]
pub struct FieldPathError {
    /// The path as written.
    pub text: String,
    /// What is wrong with it.
    pub reason: String,
}

impl FieldPath {
    /// Parses `.a.b[0].c` (the leading dot may be left out).
    pub fn parse(text: &str) -> Result<Self, FieldPathError> {
        let fail = |reason: &str| FieldPathError {
            text: text.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = text.strip_prefix('.').unwrap_or(text);
        if rest.is_empty() {
            return Err(fail("it names no field"));
        }
        let mut steps = Vec::new();
        for part in rest.split('.') {
            let (key, mut indices) = match part.find('[') {
                Some(at) => (&part[..at], &part[at..]),
                None => (part, ""),
            };
            if key.is_empty() {
                return Err(fail("a field name is empty"));
            }
            if key.contains(']') {
                return Err(fail("a ']' without its '['"));
            }
            steps.push(PathStep::Key(key.to_owned()));
            while !indices.is_empty() {
                let Some(close) = indices.find(']') else {
                    return Err(fail("a '[' without its ']'"));
                };
                let digits = &indices[1..close];
                let index = digits
                    .parse::<usize>()
                    .map_err(|_| fail("a list index must be a number, e.g. [0]"))?;
                steps.push(PathStep::Index(index));
                indices = &indices[close + 1..];
                if !indices.is_empty() && !indices.starts_with('[') {
                    return Err(fail("a '.' must come between a ']' and the next field"));
                }
            }
        }
        if !matches!(steps.last(), Some(PathStep::Key(_))) {
            return Err(fail("it must end at a field, not a list element"));
        }
        Ok(Self(steps))
    }

    /// The RFC 6901 JSON pointer to the same field (`/spec/rules/0/backendRefs/1/weight`).
    pub fn json_pointer(&self) -> String {
        let mut out = String::new();
        for step in &self.0 {
            out.push('/');
            match step {
                PathStep::Key(k) => out.push_str(&k.replace('~', "~0").replace('/', "~1")),
                PathStep::Index(i) => out.push_str(&i.to_string()),
            }
        }
        out
    }
}

/// One object that must be ready before any load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReadinessObject {
    /// `group/version` of the object (`apps/v1`).
    pub api_version: String,
    /// Its kind (`Deployment`).
    pub kind: String,
    /// Its namespace; absent means the experiment's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
    /// The status condition that must be `True`, as `kubectl wait --for=condition=...`.
    /// Default `Available` for a Deployment, `Ready` for anything else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
}

impl ReadinessObject {
    /// The condition waited for: the one given, or the kind's usual one.
    pub fn condition(&self) -> &str {
        match &self.condition {
            Some(c) => c,
            None if self.kind == "Deployment" => "Available",
            None => "Ready",
        }
    }
}

/// What must be ready before any load, and how long to wait for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReadinessSpec {
    /// The longest wait; past it the experiment fails and sends no load. Default 5m.
    #[serde(
        default = "default_readiness_timeout",
        with = "crate::text_duration::duration"
    )]
    pub timeout: Duration,
    /// The objects, each with its condition.
    #[serde(default)]
    pub objects: Vec<ReadinessObject>,
}

/// The default readiness timeout, 5 minutes.
pub fn default_readiness_timeout() -> Duration {
    Duration::from_secs(300)
}

/// What an iteration's judgement says for the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum IterationVerdict {
    /// Every SLO is satisfied at the per-look level.
    Pass,
    /// Some SLO is violated (or, at the last iteration, not shown satisfied).
    Fail,
    /// Not enough evidence yet either way.
    Inconclusive,
}

/// What the loop does after an iteration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// The candidate's weight from now on, in percent; `None` when the pattern writes none.
    pub candidate_weight: Option<u32>,
    /// Whether the loop ends here.
    pub ends: bool,
    /// Whether this is a rollback.
    pub rollback: bool,
}

impl DeploymentPattern {
    /// The candidate's weight before the first iteration (`None`: not written).
    pub fn initial_weight(self) -> Option<u32> {
        match self {
            DeploymentPattern::FixedSplit => None,
            DeploymentPattern::Progressive | DeploymentPattern::BlueGreen => Some(0),
        }
    }

    /// The step after an iteration: `current` is the candidate's weight during it, `last`
    /// whether it was the last planned one. A failing iteration rolls back (weight 0) and
    /// ends the loop; an inconclusive one holds the weight.
    pub fn step(
        self,
        limits: WeightLimits,
        current: Option<u32>,
        verdict: IterationVerdict,
        last: bool,
    ) -> Step {
        let moves = self.moves_traffic();
        match verdict {
            IterationVerdict::Fail => Step {
                candidate_weight: moves.then_some(0),
                ends: true,
                rollback: moves,
            },
            IterationVerdict::Inconclusive => Step {
                candidate_weight: current,
                ends: last,
                rollback: false,
            },
            IterationVerdict::Pass => {
                let next = match self {
                    DeploymentPattern::FixedSplit => None,
                    DeploymentPattern::Progressive => {
                        let now = current.unwrap_or(0);
                        let cap = limits.max_candidate_weight.max(now);
                        Some(
                            now.saturating_add(limits.max_candidate_weight_increment)
                                .min(cap),
                        )
                    }
                    DeploymentPattern::BlueGreen => Some(if last { 100 } else { 0 }),
                };
                Step {
                    candidate_weight: next,
                    ends: last,
                    rollback: false,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_paths_of_the_tutorials_become_json_pointers() {
        for (path, pointer) in [
            (
                ".spec.http[0].route[1].weight",
                "/spec/http/0/route/1/weight",
            ),
            (
                ".spec.rules[0].backendRefs[1].weight",
                "/spec/rules/0/backendRefs/1/weight",
            ),
            ("spec.traffic[2].percent", "/spec/traffic/2/percent"),
            (".metadata.annotations.a/b", "/metadata/annotations/a~1b"),
        ] {
            assert_eq!(FieldPath::parse(path).unwrap().json_pointer(), pointer);
        }
    }

    #[test]
    fn malformed_field_paths_say_what_is_wrong() {
        for (path, says) in [
            ("", "names no field"),
            (".spec..weight", "empty"),
            (".spec.route[x].weight", "number"),
            (".spec.route[1", "without its ']'"),
            (".spec.route[1]weight", "'.' must come"),
            (".spec.route[1]", "end at a field"),
        ] {
            let err = FieldPath::parse(path).unwrap_err().to_string();
            assert!(err.contains(says), "{path}: {err}");
        }
    }

    const LIMITS: WeightLimits = WeightLimits {
        max_candidate_weight: 75,
        max_candidate_weight_increment: 20,
    };

    #[test]
    fn progressive_climbs_by_the_increment_and_stops_at_the_maximum() {
        let mut w = DeploymentPattern::Progressive.initial_weight();
        let mut seen = vec![w.unwrap()];
        for i in 0..6 {
            let step =
                DeploymentPattern::Progressive.step(LIMITS, w, IterationVerdict::Pass, i == 5);
            w = step.candidate_weight;
            seen.push(w.unwrap());
        }
        assert_eq!(seen, [0, 20, 40, 60, 75, 75, 75]);
    }

    #[test]
    fn a_failing_iteration_rolls_back_and_ends_the_loop() {
        let step =
            DeploymentPattern::Progressive.step(LIMITS, Some(40), IterationVerdict::Fail, false);
        assert_eq!(
            step,
            Step {
                candidate_weight: Some(0),
                ends: true,
                rollback: true
            }
        );
        let hold = DeploymentPattern::Progressive.step(
            LIMITS,
            Some(40),
            IterationVerdict::Inconclusive,
            false,
        );
        assert_eq!(hold.candidate_weight, Some(40));
        assert!(!hold.ends);
    }

    #[test]
    fn blue_green_switches_all_traffic_only_at_a_passing_end() {
        let p = DeploymentPattern::BlueGreen;
        let mid = p.step(LIMITS, Some(0), IterationVerdict::Pass, false);
        assert_eq!(mid.candidate_weight, Some(0));
        let end = p.step(LIMITS, Some(0), IterationVerdict::Pass, true);
        assert_eq!(end.candidate_weight, Some(100));
        let fixed = DeploymentPattern::FixedSplit.step(LIMITS, None, IterationVerdict::Fail, false);
        assert_eq!(fixed.candidate_weight, None);
        assert!(fixed.ends && !fixed.rollback);
    }
}
