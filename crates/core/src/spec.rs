//! The experiment spec: what to load, which SLOs to judge, where the result goes and how to
//! promote. Read from YAML (or JSON), validated before any I/O.
//!
//! Durations are strings such as `30s`, `1m30s` or `250ms`.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A whole experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExperimentSpec {
    /// Experiment name; also the result ConfigMap name in a cluster.
    pub name: String,
    /// Namespace the experiment belongs to (informational locally, the ConfigMap's in a cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The versions to load; the first is the one SLOs apply to unless an SLO names another.
    pub versions: Vec<VersionSpec>,
    /// Load settings shared by every version.
    #[serde(default)]
    pub load: LoadSpec,
    /// Service-level objectives to judge.
    #[serde(default)]
    pub slos: Vec<SloSpec>,
    /// Confidence level of every interval, in (0, 1). Default 0.95.
    #[serde(default = "default_confidence")]
    pub confidence: f64,
    /// What an inconclusive SLO does to the overall verdict.
    #[serde(default)]
    pub inconclusive: InconclusivePolicy,
    /// Where the result document goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ResultSink>,
    /// Pull-request promotion; absent means no promotion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion: Option<PromotionSpec>,
}

/// The default confidence level, 0.95.
pub fn default_confidence() -> f64 {
    0.95
}

/// One version of the service under test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VersionSpec {
    /// Short name shown in reports (e.g. `candidate`).
    pub name: String,
    /// The URL every request goes to.
    pub url: String,
    /// Extra headers for this version only, added after the load headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<Header>,
}

/// One HTTP header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Header name.
    pub name: String,
    /// Header value.
    pub value: String,
}

/// Load settings: the load engine's options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoadSpec {
    /// Number of concurrent connections (exactly this many). Default 8.
    #[serde(default = "default_connections")]
    pub connections: u32,
    /// Total requests per second across connections; absent = closed model (as fast as possible).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qps: Option<f64>,
    /// Stop after this many measured requests. Exclusive with `duration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_requests: Option<u64>,
    /// Stop after this long. Exclusive with `numRequests`. If neither is set, 100 requests.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "opt_duration"
    )]
    pub duration: Option<Duration>,
    /// Requests to send and discard before measuring. Exclusive with `warmup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup_requests: Option<u64>,
    /// Time to send and discard before measuring. Exclusive with `warmupRequests`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "opt_duration"
    )]
    pub warmup: Option<Duration>,
    /// HTTP method. Default GET, or POST when a body is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Headers sent with every request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<Header>,
    /// Request body given inline. Exclusive with `bodyFile` and `payloadUrl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Request body read from a file. Exclusive with `body` and `payloadUrl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_file: Option<PathBuf>,
    /// Request body downloaded once from this URL before the run. Exclusive with the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_url: Option<String>,
    /// Content-Type of the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Per-request timeout. Default 10s.
    #[serde(default = "default_timeout", with = "duration")]
    pub timeout: Duration,
    /// Use HTTP/2 (ALPN on https, prior-knowledge h2c on http).
    #[serde(default)]
    pub http2: bool,
    /// Status codes that count as errors. Default `[{from: 400, to: 599}]`.
    #[serde(default = "default_error_ranges")]
    pub error_ranges: Vec<StatusRange>,
}

impl Default for LoadSpec {
    fn default() -> Self {
        Self {
            connections: default_connections(),
            qps: None,
            num_requests: None,
            duration: None,
            warmup_requests: None,
            warmup: None,
            method: None,
            headers: Vec::new(),
            body: None,
            body_file: None,
            payload_url: None,
            content_type: None,
            timeout: default_timeout(),
            http2: false,
            error_ranges: default_error_ranges(),
        }
    }
}

/// Requests sent when neither `numRequests` nor `duration` is set.
pub const DEFAULT_NUM_REQUESTS: u64 = 100;

/// The default number of connections, 8.
pub fn default_connections() -> u32 {
    8
}

/// The default per-request timeout, 10 s.
pub fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

/// The default error ranges: every status from 400 to 599.
pub fn default_error_ranges() -> Vec<StatusRange> {
    vec![StatusRange { from: 400, to: 599 }]
}

/// An inclusive range of HTTP status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusRange {
    /// Lowest status in the range.
    pub from: u16,
    /// Highest status in the range.
    pub to: u16,
}

impl StatusRange {
    /// Whether `status` lies in this range.
    pub fn contains(&self, status: u16) -> bool {
        (self.from..=self.to).contains(&status)
    }
}

/// One SLO: an upper and/or lower limit on a metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SloSpec {
    /// Metric name, e.g. `http/latency-p95` (see the metric names in the README).
    pub metric: String,
    /// The metric must be at most this (upper limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upper_limit: Option<f64>,
    /// The metric must be at least this (lower limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lower_limit: Option<f64>,
    /// Version the SLO applies to; default: every version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// What an inconclusive SLO means for the overall verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum InconclusivePolicy {
    /// Inconclusive counts as a failure (the default: no evidence, no promotion).
    #[default]
    Fail,
    /// Inconclusive counts as a pass when the observed value itself is within the limit.
    Pass,
}

/// Where the result document is written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResultSink {
    /// Name of the result ConfigMap in a cluster. Default: the experiment name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<String>,
    /// Write the result document to this file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
}

/// When to open the pull request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PromoteWhen {
    /// Only when the overall verdict is pass (the default).
    #[default]
    Pass,
    /// Always, whatever the verdict (the PR body says it failed).
    Always,
}

/// Pull-request promotion settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PromotionSpec {
    /// Repository owner (user or organisation).
    pub owner: String,
    /// Repository name.
    pub repo: String,
    /// Branch the PR merges into (e.g. `master`).
    pub base: String,
    /// Branch the PR comes from (e.g. `staging`).
    pub head: String,
    /// File holding the token (the mounted Secret's key `token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// GitHub API base URL. Default `https://api.github.com`; GitHub Enterprise works too.
    #[serde(default = "default_api_url")]
    pub api_url: String,
    /// When to promote.
    #[serde(default)]
    pub when: PromoteWhen,
    /// Labels to add to the PR.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// GitHub logins asked to review the PR.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reviewers: Vec<String>,
    /// Handlebars template of the PR title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Handlebars template of the PR body; default: the markdown report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Set a commit status `slogate/slo` on the head commit. Default true.
    #[serde(default = "default_true")]
    pub commit_status: bool,
}

/// The default GitHub API URL.
pub fn default_api_url() -> String {
    "https://api.github.com".to_owned()
}

fn default_true() -> bool {
    true
}

/// Serde helpers for durations written as `30s`, `1m`, `250ms`.
pub mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes a duration in humantime form.
    pub fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*value))
    }

    /// Reads a duration in humantime form.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

/// Serde helpers for optional durations written as `30s`, `1m`, `250ms`.
pub mod opt_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes an optional duration in humantime form.
    pub fn serialize<S: Serializer>(value: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => super::duration::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    /// Reads an optional duration in humantime form.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        text.map(|t| humantime::parse_duration(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}
