//! The result document: everything a run concluded, read by every sink and report.
//!
//! Serialized as JSON (camelCase) with `apiVersion` [`API_VERSION`]; its JSON Schema is
//! committed at `schemas/result.schema.json`. Numbers are always finite.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::measure::ErrorKind;
use crate::metrics::Protocol;
use crate::rollout::{DeploymentPattern, IterationVerdict, WeightLimits};
use crate::spec::{Role, TestingPattern};

/// The `apiVersion` of the result document this slogate writes. `v1alpha2` added per
/// version its role and variables, comparison rows for relative SLOs, the testing pattern
/// and the winner; every field of `v1alpha1` kept its meaning.
pub const API_VERSION: &str = "slogate.dev/v1alpha2";
/// The `apiVersion` of documents written before comparisons: still read.
pub const API_VERSION_V1ALPHA1: &str = "slogate.dev/v1alpha1";
/// The `kind` of the result document.
pub const KIND: &str = "ExperimentResult";

/// The whole result of one experiment run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentResult {
    /// Always [`API_VERSION`].
    pub api_version: String,
    /// Always [`KIND`].
    pub kind: String,
    /// Experiment name.
    pub name: String,
    /// Namespace, when the experiment ran in a cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// When the run started.
    pub start_time: Timestamp,
    /// When the run ended; absent while running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Timestamp>,
    /// Where the run is.
    pub stage: Stage,
    /// How far the load got.
    pub progress: Progress,
    /// Why the run failed (stage `Failed`), e.g. `Interrupted: SIGTERM`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Confidence level of every interval in this document.
    pub confidence: f64,
    /// Per version: metrics and histogram.
    pub versions: Vec<VersionResult>,
    /// Per SLO and version: observed value, interval and verdict.
    pub slos: Vec<SloResult>,
    /// The overall verdict; absent until the run completes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<OverallVerdict>,
    /// What promotion did; absent when no promotion is configured or not yet attempted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion: Option<PromotionOutcome>,
    /// When this document was last published: the run's heartbeat. A document that is not
    /// done and has not been updated for a few publish intervals belongs to a run that is
    /// gone (see [`ExperimentResult::staleness`]). Absent in documents of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
    /// The longest time between two publications while the run is under way, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish_interval_seconds: Option<f64>,
    /// How the SLO intervals and `requestsNeeded` are to be read; absent in documents
    /// written before slogate said so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judgement: Option<Judgement>,
    /// `Canary` when a candidate was compared with a baseline; absent for `Conformance`
    /// (and in `v1alpha1` documents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub testing_pattern: Option<TestingPattern>,
    /// Canary: which version won and why; absent until the verdict is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub winner: Option<Winner>,
    /// The experiment loop's plan: deployment pattern, weight limits and how repeated looks
    /// are accounted for; absent for a run judged once at its end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<StrategyResult>,
    /// Every iteration of the loop judged so far, in order, with the weights it left.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub iterations: Vec<IterationResult>,
    /// When load came from several pods: one row per pod, its requests, achieved rate and
    /// whether its evidence was merged; absent for one pod.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub load_pods: Vec<crate::parallel::LoadPod>,
    /// What each finish action did, in the order they ran (the `promotion` block's pull
    /// request included); absent in documents without finish actions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<crate::actions::ActionRecord>,
}

/// The experiment loop's plan, as run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StrategyResult {
    /// How traffic moved.
    pub deployment_pattern: DeploymentPattern,
    /// The limits of a progressive shift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<WeightLimits>,
    /// Seconds of load per iteration.
    pub interval_seconds: u64,
    /// Iterations planned.
    pub iterations_planned: u32,
    /// The level every look's bounds were computed at (the document's `confidence` holds
    /// for the whole loop).
    pub per_look_confidence: f64,
    /// How the error budget is shared across looks: `bonferroni`, or `single` for one look.
    pub looks_method: String,
}

/// One iteration of the loop: what it concluded and the weights it left.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IterationResult {
    /// 1 for the first iteration.
    pub index: u32,
    /// When it was judged.
    pub at: Timestamp,
    /// Measured requests so far, all versions together.
    pub requests: u64,
    /// Each version's traffic weight after this iteration (empty when none are written).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub weights: BTreeMap<String, u32>,
    /// What the look concluded.
    pub verdict: IterationVerdict,
    /// Whether the weights were rolled back here.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rollback: bool,
    /// One sentence saying why.
    pub reason: String,
}

/// The winner assessment of a Canary experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Winner {
    /// Whether a winner was found: false when an SLO of the candidate is inconclusive
    /// and none is violated (the evidence decides neither way).
    pub found: bool,
    /// The winning version's name, when one was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The winning version's role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// The winning version's variables (what templates see as `winner.variables`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, String>,
    /// One sentence saying why.
    pub reason: String,
}

/// How the SLOs of a document were judged.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Judgement {
    /// What each end of an SLO's `interval` is.
    pub bounds: BoundsKind,
    /// The probability with which `requestsNeeded` requests would decide an inconclusive
    /// SLO, if its true value were the one observed.
    pub decision_probability: f64,
}

/// What the ends of an SLO's interval are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BoundsKind {
    /// Each end is a one-sided bound at the document's `confidence`: the true value is below
    /// the upper end, and above the lower end, each with that probability.
    OneSided,
}

/// Lifecycle stage of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stage {
    /// Waiting for the readiness objects; no load is sent yet.
    Waiting,
    /// Load is being sent.
    Running,
    /// Every SLO was judged (the verdict is known and final); finish actions such as the
    /// pull request are under way.
    Finishing,
    /// The run finished and every SLO was judged.
    Completed,
    /// The run could not finish (see `failure`).
    Failed,
}

/// How far the load got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Measured requests finished so far, all versions together.
    pub requests_done: u64,
    /// Requests planned in all, when the run is bounded by a count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_planned: Option<u64>,
    /// Seconds of load so far.
    pub elapsed_seconds: f64,
    /// Seconds planned, when the run is bounded by time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_planned_seconds: Option<f64>,
    /// Measured requests finished so far per version (versions are loaded at the same
    /// time); absent in older documents.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub versions: BTreeMap<String, u64>,
}

/// Metrics of one version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionResult {
    /// Version name from the spec.
    pub name: String,
    /// URL that was loaded; empty (and absent in the document) for a version judged only
    /// on custom metrics.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
    /// `baseline` or `candidate`; absent in `v1alpha1` documents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// The version's variables from the spec.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, String>,
    /// What the version was loaded with; absent for HTTP.
    #[serde(default, skip_serializing_if = "Protocol::is_http")]
    pub protocol: Protocol,
    /// Metric values by Iter8-compatible name (`http/latency-p95` …, `grpc/latency-p95` …
    /// for gRPC), latencies in ms.
    pub metrics: BTreeMap<String, f64>,
    /// The latency histogram (`http/latency`), for reports.
    pub histogram: Vec<HistogramBucket>,
    /// Responses per status code (as a string key: `"200"`; for gRPC the code's name, e.g.
    /// `"OK"`, `"DEADLINE_EXCEEDED"`).
    pub status_counts: BTreeMap<String, u64>,
    /// Errors per kind.
    pub error_kinds: BTreeMap<ErrorKind, u64>,
    /// Achieved request rate, requests per second.
    pub achieved_qps: f64,
    /// Target rate in the open model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_qps: Option<f64>,
    /// Open model: the uncorrected service time (from each request's actual send), beside
    /// the corrected latency of `metrics` and `histogram` (from its scheduled send).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_time: Option<ServiceTime>,
    /// Requests sent a second time on a new connection after the server closed their idle
    /// kept-alive connection (a keep-alive timeout race); absent when none was.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub resends: u64,
    /// The most connections open at once, when the open model opened more than it started with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_connections: Option<u32>,
    /// Open model: set when the load generator could not keep to the planned rate; every
    /// latency SLO of the version is then inconclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saturation: Option<SaturationResult>,
    /// Custom metrics (the spec's `metrics:`): the queries sent and what came back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom_metrics: Vec<crate::custom::CustomMetricResult>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The uncorrected service time of one version: latency from the actual send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceTime {
    /// Latency metrics by name (`http/latency-mean`, `http/latency-p95` …), in ms.
    pub metrics: BTreeMap<String, f64>,
    /// Its histogram, as [`VersionResult::histogram`].
    pub histogram: Vec<HistogramBucket>,
}

/// The load generator fell behind the planned rate for want of connections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SaturationResult {
    /// Connections the planned rate needs at the measured mean service time.
    pub connections_needed: u64,
    /// Connections the run could open (`load.maxConnections`).
    pub max_connections: u32,
    /// Measured requests that waited inside the load generator for a free connection.
    pub late_requests: u64,
    /// The sentence reports show.
    pub reason: String,
}

/// One bucket of a latency histogram, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistogramBucket {
    /// Lower bound (inclusive), ms.
    pub lower_ms: f64,
    /// Upper bound (exclusive), ms.
    pub upper_ms: f64,
    /// Requests whose latency fell in the bucket.
    pub count: u64,
}

/// The judgement of one SLO for one version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SloResult {
    /// Version judged.
    pub version: String,
    /// Metric name.
    pub metric: String,
    /// Upper limit, when the SLO has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upper_limit: Option<f64>,
    /// Lower limit, when the SLO has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lower_limit: Option<f64>,
    /// Observed value; absent when it could not be computed (e.g. no successful request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<f64>,
    /// Confidence interval of the true value at the document's confidence level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Interval>,
    /// The verdict.
    pub verdict: SloVerdict,
    /// For an inconclusive SLO: about how many requests would decide it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_needed: Option<u64>,
    /// The interval method, e.g. `wilson`, `order-statistic`, `bootstrap-t`.
    pub method: String,
    /// One sentence saying why the verdict is what it is.
    pub reason: String,
    /// A relative SLO: what was compared. `observed`, `interval` and the limits are then
    /// of the contrast (a ratio, or a difference in the metric's unit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Comparison>,
}

/// What a relative SLO compared: the candidate (`version`) against the baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Comparison {
    /// The baseline's name.
    pub versus: String,
    /// `ratio` (candidate / baseline) or `difference` (candidate − baseline).
    pub contrast: ContrastKind,
    /// `maxIncrease` as written (`10%`, `5`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_increase: Option<String>,
    /// `maxDecrease` as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_decrease: Option<String>,
    /// The candidate's observed value of the metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<f64>,
    /// The baseline's observed value of the metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<f64>,
}

/// How a relative SLO's values are contrasted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ContrastKind {
    /// candidate / baseline.
    Ratio,
    /// candidate − baseline, in the metric's unit.
    Difference,
}

/// A closed interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Lower end.
    pub lower: f64,
    /// Upper end.
    pub upper: f64,
}

/// Verdict of one SLO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SloVerdict {
    /// The whole interval is within the limit.
    Satisfied,
    /// The whole interval is outside the limit.
    Violated,
    /// The interval straddles the limit: more requests are needed.
    Inconclusive,
    /// The metrics provider gave nothing usable for this look (a failed query, an empty
    /// result, NaN): neither satisfied nor violated.
    NoData,
}

/// The overall verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OverallVerdict {
    /// True only if every SLO passed under the inconclusive policy.
    pub pass: bool,
    /// One sentence saying why.
    pub reason: String,
}

/// What promotion did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "outcome"
)]
pub enum PromotionOutcome {
    /// A new pull request was opened.
    Opened {
        /// PR number.
        number: u64,
        /// PR web URL.
        url: String,
        /// The commit status set on the PR's head commit; absent when the spec asks for none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        commit_status: Option<CommitStatus>,
        /// Steps after the pull request that failed without undoing it (labels, reviewers,
        /// commit status), in words.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        warnings: Vec<String>,
    },
    /// An open pull request head→base already existed; its body was updated.
    Updated {
        /// PR number.
        number: u64,
        /// PR web URL.
        url: String,
        /// The commit status set on the PR's head commit; absent when the spec asks for none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        commit_status: Option<CommitStatus>,
        /// Steps after the pull request that failed without undoing it (labels, reviewers,
        /// commit status), in words.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        warnings: Vec<String>,
    },
    /// No request was made to GitHub, and why (e.g. the verdict failed).
    Skipped {
        /// Why.
        reason: String,
    },
    /// Dry run: the pull request that would be opened.
    DryRun {
        /// Rendered title.
        title: String,
        /// Rendered body.
        body: String,
    },
    /// Promotion was attempted and failed, and why. The SLO verdict stands.
    Failed {
        /// Why (never contains the token).
        reason: String,
    },
    /// The run was stopped (e.g. SIGTERM) while promotion was under way; a pull request
    /// may or may not have been opened. The SLO verdict stands.
    Interrupted {
        /// Why, e.g. `Interrupted: SIGTERM`.
        reason: String,
    },
    /// The head branch no longer points at the commit that was tested: nothing was
    /// promoted. The newer commit needs an experiment of its own.
    Superseded {
        /// Why, in words.
        reason: String,
        /// The commit that was tested (the spec's `headSha`).
        tested: String,
        /// Where the head branch points now; absent when the branch is gone.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        head: Option<String>,
    },
}

impl PromotionOutcome {
    /// The commit status of an opened or updated pull request, if one was attempted.
    pub fn commit_status(&self) -> Option<&CommitStatus> {
        match self {
            Self::Opened { commit_status, .. } | Self::Updated { commit_status, .. } => {
                commit_status.as_ref()
            }
            _ => None,
        }
    }

    /// The warnings of an opened or updated pull request; empty for every other outcome.
    pub fn warnings(&self) -> &[String] {
        match self {
            Self::Opened { warnings, .. } | Self::Updated { warnings, .. } => warnings,
            _ => &[],
        }
    }
}

/// A commit status promotion set (or tried to set) on the pull request's head commit, so
/// the verdict shows in GitHub's checks list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitStatus {
    /// The state sent: `success` when the verdict passed, else `failure`.
    pub state: String,
    /// The head commit's SHA.
    pub sha: String,
    /// The status context, `slogate/slo`.
    pub context: String,
    /// Why GitHub did not accept it; absent when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The document's state as a run goes (the document is built from the spec and the
/// evidence in [`crate::document`]): [`ExperimentResult::set_progress`] while loading, then
/// [`ExperimentResult::fail`], or the stages of the finish actions.
impl ExperimentResult {
    /// Records how far the load got: measured requests of all versions so far, and the
    /// measured time so far.
    pub fn set_progress(&mut self, requests_done: u64, elapsed: Duration) {
        self.progress.requests_done = requests_done;
        self.progress.elapsed_seconds = finite_or_zero(elapsed.as_secs_f64());
    }

    /// Ends the run as `Failed` with a one-line reason (e.g. `Interrupted: SIGTERM`). What was
    /// measured so far stays in the document; no verdict is given.
    pub fn fail(&mut self, reason: impl Into<String>, end: Timestamp) {
        self.stage = Stage::Failed;
        self.failure = Some(reason.into());
        self.verdict = None;
        self.end_time = Some(end);
    }

    /// Moves a judged run (stage `Completed`, verdict known) to `Finishing`: its finish
    /// actions (promotion) start. The end time is cleared until they have ended.
    pub fn begin_finishing(&mut self) {
        if self.stage == Stage::Completed {
            self.stage = Stage::Finishing;
            self.end_time = None;
        }
    }

    /// Ends the finish actions: stage `Completed` at `end`.
    pub fn end_finishing(&mut self, end: Timestamp) {
        if self.stage == Stage::Finishing {
            self.stage = Stage::Completed;
            self.end_time = Some(end);
        }
    }

    /// Whether the run has ended (stage `Completed` or `Failed`).
    pub fn is_done(&self) -> bool {
        matches!(self.stage, Stage::Completed | Stage::Failed)
    }

    /// Records that the document is published at `now`, and how often the run publishes.
    pub fn touch(&mut self, now: Timestamp, publish_interval: Duration) {
        self.updated_at = Some(now);
        self.publish_interval_seconds = Some(finite_or_zero(publish_interval.as_secs_f64()));
    }

    /// How long a run that is not done may go without publishing before its document is
    /// stale: [`STALE_AFTER_INTERVALS`] publish intervals, plus [`STALE_SLACK`] for clock
    /// differences between the machine that runs and the one that reads.
    pub fn stale_after(&self) -> Option<Duration> {
        let interval = self
            .publish_interval_seconds
            .filter(|s| s.is_finite() && *s > 0.0)?;
        Some(Duration::from_secs_f64(interval * f64::from(STALE_AFTER_INTERVALS)) + STALE_SLACK)
    }

    /// For a run that is not done: how long ago it last published, when that is longer than
    /// [`ExperimentResult::stale_after`] (the run was killed, or its pod is gone). `None`
    /// for a done run, a fresh one, or a document without a heartbeat.
    pub fn staleness(&self, now: Timestamp) -> Option<Duration> {
        if self.is_done() {
            return None;
        }
        let updated = self.updated_at?;
        let limit = self.stale_after()?;
        let age = Duration::try_from(now.duration_since(updated)).unwrap_or(Duration::ZERO);
        (age > limit).then_some(age)
    }

    /// The document as pretty JSON, the form every sink writes.
    pub fn to_json(&self) -> String {
        // Serializing plain data with string keys and finite numbers cannot fail.
        serde_json::to_string_pretty(self).expect("result document serializes")
    }
}

/// What the verdict engine concluded from the evidence: the plain data
/// [`ExperimentResult::complete`] records.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    /// Per SLO and version.
    pub slos: Vec<SloResult>,
    /// The overall verdict.
    pub verdict: OverallVerdict,
    /// Canary only: the winner assessment.
    pub winner: Option<Winner>,
}

/// Publish intervals a run may miss before its document is stale.
pub const STALE_AFTER_INTERVALS: u32 = 3;
/// Added to the staleness limit for clock differences between machines.
pub const STALE_SLACK: Duration = Duration::from_secs(5);

pub(crate) fn finite_or_zero(v: f64) -> f64 {
    if v.is_finite() { v } else { 0.0 }
}
