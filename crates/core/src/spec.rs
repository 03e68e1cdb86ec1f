//! The experiment spec: what to load, which SLOs to judge, where the result goes and how to
//! promote. Read from YAML (or JSON), validated before any I/O.
//!
//! Durations are strings such as `30s`, `1m30s` or `250ms`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::custom::{MetricAuth, MetricKind, MetricSpec, Provider};
pub use crate::metrics::Protocol;
pub use crate::parallel::{OnMissing, ParallelismSpec};
pub use crate::rollout::{
    DeploymentPattern, LoopDuration, ReadinessObject, ReadinessSpec, WeightLimits, WeightObjRef,
};

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
    /// Custom metrics from a provider (Prometheus) that SLOs may name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<MetricSpec>,
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
    /// How versions are compared and how traffic moves; absent means `Conformance` with
    /// `FixedSplit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<StrategySpec>,
    /// The experiment loop: iterations of load, each judged on the evidence so far; absent
    /// means one judgement at the end of `load`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<LoopDuration>,
    /// Objects that must be ready before any load is sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<ReadinessSpec>,
    /// Load from several pods of an Indexed Job, their evidence merged exactly; absent
    /// means one pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<ParallelismSpec>,
    /// What runs once the verdict is final (see [`crate::actions`]); absent means only the
    /// `promotion` block, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<crate::actions::ActionsSpec>,
}

/// How the experiment compares its versions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StrategySpec {
    /// Conformance (each version against the SLOs) or Canary (a candidate against the
    /// baseline, with a winner).
    #[serde(default)]
    pub testing_pattern: TestingPattern,
    /// How traffic moves from the baseline to the candidate during the loop.
    #[serde(default)]
    pub deployment_pattern: DeploymentPattern,
    /// Limits of a progressive shift; absent means the defaults (100, 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<WeightLimits>,
}

/// What the experiment decides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TestingPattern {
    /// Every version is judged against the SLOs; no winner (today's behaviour).
    #[default]
    Conformance,
    /// A baseline and one candidate, loaded at the same time: the candidate wins when it
    /// satisfies every SLO, absolute and relative; otherwise the baseline does.
    Canary,
}

/// A version's part in a comparison.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    /// The version under test (the default).
    #[default]
    Candidate,
    /// The version relative SLOs compare against (what runs in production); at most one.
    Baseline,
}

impl Role {
    fn is_candidate(&self) -> bool {
        *self == Role::Candidate
    }
}

/// How much a relative SLO lets the candidate's metric move from the baseline's: a
/// percentage of the baseline's value (`"10%"`) or an amount in the metric's unit (`5`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Change {
    /// A share of the baseline's value: `"10%"` is `Percent(10.0)`.
    Percent(f64),
    /// An amount in the metric's unit (ms for latencies, a fraction for the error rate).
    Amount(f64),
}

impl Change {
    /// How the change is written in a spec: `10%` or `5`.
    pub fn text(&self) -> String {
        match self {
            Change::Percent(p) => format!("{}%", crate::quote::number(*p)),
            Change::Amount(a) => crate::quote::number(*a),
        }
    }
}

impl Serialize for Change {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Change::Percent(_) => s.serialize_str(&self.text()),
            Change::Amount(a) => s.serialize_f64(*a),
        }
    }
}

/// What serde's messages say a change field expects.
const CHANGE_EXPECTED: &str =
    "a number in the metric's unit (e.g. 5) or a percentage of the baseline's value (e.g. \"10%\")";

impl<'de> Deserialize<'de> for Change {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ChangeVisitor;
        impl serde::de::Visitor<'_> for ChangeVisitor {
            type Value = Change;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(CHANGE_EXPECTED)
            }

            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Change, E> {
                Ok(Change::Amount(v))
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Change, E> {
                Ok(Change::Amount(v as f64))
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Change, E> {
                Ok(Change::Amount(v as f64))
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Change, E> {
                let t = text.trim();
                let (digits, percent) = match t.strip_suffix('%') {
                    Some(d) => (d.trim(), true),
                    None => (t, false),
                };
                let plain = !digits.is_empty()
                    && digits
                        .chars()
                        .all(|c| c.is_ascii_digit() || c == '.' || c == '-');
                match digits.parse::<f64>() {
                    Ok(v) if plain && percent => Ok(Change::Percent(v)),
                    Ok(v) if plain => Ok(Change::Amount(v)),
                    _ => Err(E::custom(format!(
                        "{} is not {CHANGE_EXPECTED}",
                        crate::quote::quote(text)
                    ))),
                }
            }
        }
        d.deserialize_any(ChangeVisitor)
    }
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
    /// The URL every request goes to; empty for a version that gets no built-in load and
    /// is judged only on the spec's `metrics`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
    /// Extra headers for this version only, added after the load headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<Header>,
    /// `baseline` or `candidate` (the default); at most one baseline.
    #[serde(default, skip_serializing_if = "Role::is_candidate")]
    pub role: Role,
    /// Free-form values templates and finish actions see (`{{winner.variables.promote}}`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, String>,
    /// Where this version's traffic weight is written during a progressive or blue-green
    /// loop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_obj_ref: Option<WeightObjRef>,
    /// The gRPC call to make, for a `grpc://` or `grpcs://` URL (gRPC unary calls over
    /// HTTP/2 instead of HTTP requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<GrpcSpec>,
}

impl VersionSpec {
    /// A version named `name` loaded at `url`, with nothing else set.
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            url: url.into(),
            headers: Vec::new(),
            role: Role::default(),
            variables: BTreeMap::new(),
            weight_obj_ref: None,
            grpc: None,
        }
    }

    /// The rules of a gRPC version's `url` and `grpc` section, with paths relative to the
    /// version (`url`, `grpc.call` …); empty for an HTTP version. A spec's validation
    /// applies them too.
    pub fn grpc_problems(&self) -> Vec<FieldError> {
        let mut p = Problems::default();
        if let Some(grpc) = &self.grpc {
            validate::grpc_url("url", &self.url, &mut p);
            validate::grpc_call("grpc", grpc, &mut p);
        }
        p.0
    }

    /// What the version is loaded with: gRPC when it has a `grpc` section.
    pub fn protocol(&self) -> Protocol {
        if self.grpc.is_some() {
            Protocol::Grpc
        } else {
            Protocol::Http
        }
    }
}

/// One unary gRPC call, sent again and again: the method, the request message as JSON
/// (protobuf's JSON mapping), and metadata. The message is built through the `.proto` file's
/// descriptor when the load is planned; no generated code is needed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcSpec {
    /// The `.proto` file that declares the service.
    pub proto: PathBuf,
    /// Directories `import`s are looked up in; default: the proto file's directory.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub import_paths: Vec<PathBuf>,
    /// The method, `package.Service/Method` (e.g. `slogate.hello.v1.Greeter/SayHello`).
    pub call: String,
    /// The request message in protobuf's JSON mapping; default `{}` (every field default).
    #[serde(default = "empty_object", skip_serializing_if = "is_empty_object")]
    pub data: serde_json::Value,
    /// Metadata sent with every call (lowercase keys; a `-bin` key's value is base64).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

fn is_empty_object(value: &serde_json::Value) -> bool {
    value.as_object().is_some_and(serde_json::Map::is_empty)
}

impl GrpcSpec {
    /// The service's full name and the method's, from `call` (`pkg.Service/Method`), once it
    /// has been validated.
    pub fn service_and_method(&self) -> Option<(&str, &str)> {
        let (service, method) = self.call.trim_start_matches('/').split_once('/')?;
        (!service.is_empty() && !method.is_empty() && !method.contains('/'))
            .then_some((service, method))
    }
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

/// Load settings as written in the spec's `load:` section; [`LoadSpec::settings`] checks
/// them into the [`LoadSettings`] the load engine takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoadSpec {
    /// Connections opened at the start. The closed model keeps exactly this many; the open
    /// model opens more, up to `maxConnections`, when every one is busy at a request's due
    /// time. Default 8.
    #[serde(default = "default_connections")]
    pub connections: u32,
    /// Open model: the most connections the run may open to keep to the planned rate.
    /// Default the larger of 64 and `connections`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
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
    /// HTTP/2: requests each connection keeps in flight at once, each on its own stream.
    /// Default 1; more needs `http2`.
    #[serde(default = "default_streams")]
    pub streams: u32,
    /// Status codes that count as errors. Default `[{from: 400, to: 599}]`.
    #[serde(default = "default_error_ranges")]
    pub error_ranges: Vec<StatusRange>,
}

impl Default for LoadSpec {
    fn default() -> Self {
        Self {
            connections: default_connections(),
            max_connections: None,
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
            streams: default_streams(),
            error_ranges: default_error_ranges(),
        }
    }
}

/// The default number of HTTP/2 streams each connection keeps in flight, 1.
pub fn default_streams() -> u32 {
    1
}

/// Requests sent when neither `numRequests` nor `duration` is set.
pub const DEFAULT_NUM_REQUESTS: u64 = 100;

/// The default number of connections, 8.
pub fn default_connections() -> u32 {
    8
}

/// Open model: the fewest connections `maxConnections` defaults to.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 64;

/// HTTP status codes are three digits, 100 to 599 (RFC 9110, section 15).
pub const STATUS_CODES: std::ops::RangeInclusive<u16> = 100..=599;

/// When the measured part of a load run ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StopAfter {
    /// After this many measured requests.
    Requests(u64),
    /// After this much time.
    Duration(Duration),
}

/// What is sent and discarded before measuring begins.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Warmup {
    /// Nothing: measure from the first request.
    #[default]
    None,
    /// This many requests.
    Requests(u64),
    /// Requests sent during this long.
    Duration(Duration),
}

/// Where the request body comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum BodySource {
    /// No body.
    #[default]
    None,
    /// The `body` given inline.
    Inline(String),
    /// The file named by `bodyFile`, read once before the run.
    File(PathBuf),
    /// The `payloadUrl`, downloaded once before the run.
    Download(String),
}

/// Load settings checked once, by [`LoadSpec::settings`]: every number in range, exclusive
/// settings resolved, defaults applied. The load engine takes nothing else.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadSettings {
    connections: u32,
    max_connections: u32,
    qps: Option<f64>,
    stop_after: StopAfter,
    warmup: Warmup,
    method: Option<String>,
    headers: Vec<Header>,
    body: BodySource,
    content_type: Option<String>,
    timeout: Duration,
    http2: bool,
    streams: u32,
    error_ranges: Vec<StatusRange>,
}

impl LoadSettings {
    /// Connections opened at the start (at least 1).
    pub fn connections(&self) -> u32 {
        self.connections
    }

    /// Open model: the most connections the run may open (at least `connections`).
    pub fn max_connections(&self) -> u32 {
        self.max_connections
    }

    /// Target total rate in requests per second (finite, above 0); `None` for the closed model.
    pub fn qps(&self) -> Option<f64> {
        self.qps
    }

    /// When the measured part ends.
    pub fn stop_after(&self) -> StopAfter {
        self.stop_after
    }

    /// What is discarded before measuring.
    pub fn warmup(&self) -> Warmup {
        self.warmup
    }

    /// The HTTP method (an RFC 9110 token), when one was given.
    pub fn method(&self) -> Option<&str> {
        self.method.as_deref()
    }

    /// Headers sent with every request (valid names, one-line printable values).
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }

    /// Where the body comes from.
    pub fn body(&self) -> &BodySource {
        &self.body
    }

    /// Content-Type of the body, when one was given.
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// Per-request timeout (above 0).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether to speak HTTP/2.
    pub fn http2(&self) -> bool {
        self.http2
    }

    /// Requests each connection keeps in flight, each on its own HTTP/2 stream (at least 1;
    /// above 1 only with [`LoadSettings::http2`]).
    pub fn streams(&self) -> u32 {
        self.streams
    }

    /// Status ranges that count as errors, each within 100..=599 and ordered.
    pub fn error_ranges(&self) -> &[StatusRange] {
        &self.error_ranges
    }

    /// The same settings for one iteration of the experiment loop: measuring for `interval`,
    /// with the warmup only when `first` (load runs on across iterations, so only the first
    /// starts cold).
    pub fn for_iteration(&self, interval: Duration, first: bool) -> LoadSettings {
        LoadSettings {
            stop_after: StopAfter::Duration(interval),
            warmup: if first { self.warmup } else { Warmup::None },
            ..self.clone()
        }
    }

    /// Load pod `index`'s share when `pods` pods of an Indexed Job send the load together:
    /// the connections, the most connections, the rate and a `numRequests` (and
    /// `warmupRequests`) divided among them, the first pods taking what does not divide
    /// evenly, so the pods' settings add up exactly to these. A `duration` is the same time
    /// window for all. Validation ([`ExperimentSpec::validate`]) makes sure every pod gets at
    /// least one connection per version and one request.
    pub fn for_pod(&self, pods: u32, index: u32) -> LoadSettings {
        let pods = pods.max(1);
        let split = |total: u32| total / pods + u32::from(index < total % pods);
        let split64 = |total: u64| {
            total / u64::from(pods) + u64::from(u64::from(index) < total % u64::from(pods))
        };
        let connections = split(self.connections).max(1);
        LoadSettings {
            connections,
            max_connections: split(self.max_connections).max(connections),
            qps: self.qps.map(|q| q / f64::from(pods)),
            stop_after: match self.stop_after {
                StopAfter::Requests(n) => StopAfter::Requests(split64(n)),
                d @ StopAfter::Duration(_) => d,
            },
            warmup: match self.warmup {
                Warmup::Requests(n) if split64(n) > 0 => Warmup::Requests(split64(n)),
                Warmup::Requests(_) => Warmup::None,
                other => other,
            },
            ..self.clone()
        }
    }

    /// Version `index`'s share when `parts` versions are loaded at the same time: the
    /// connections, the most connections and the rate divided among them (the first
    /// versions take what does not divide evenly; every version gets at least one
    /// connection). The stop rule and warmup are each version's own: `numRequests` is per
    /// version, and a `duration` is the same time window for all.
    pub fn share(&self, parts: u32, index: u32) -> LoadSettings {
        let parts = parts.max(1);
        let split = |total: u32| (total / parts + u32::from(index < total % parts)).max(1);
        let connections = split(self.connections);
        LoadSettings {
            connections,
            max_connections: split(self.max_connections).max(connections),
            qps: self.qps.map(|q| q / f64::from(parts)),
            ..self.clone()
        }
    }
}

impl LoadSpec {
    /// Checks every load rule at once into [`LoadSettings`]; each problem's path is relative
    /// to the `load` section (`qps`, `errorRanges[0].from`).
    pub fn settings(&self) -> Result<LoadSettings, Vec<FieldError>> {
        let mut p = Problems::default();
        validate::load_rules(self, &mut p);
        if !p.0.is_empty() {
            return Err(p.0);
        }
        let stop_after = match (self.num_requests, self.duration) {
            (Some(n), _) => StopAfter::Requests(n),
            (None, Some(d)) => StopAfter::Duration(d),
            (None, None) => StopAfter::Requests(DEFAULT_NUM_REQUESTS),
        };
        let warmup = match (self.warmup_requests, self.warmup) {
            (Some(n), _) if n > 0 => Warmup::Requests(n),
            (None, Some(d)) if !d.is_zero() => Warmup::Duration(d),
            _ => Warmup::None,
        };
        let body = match (&self.body, &self.body_file, &self.payload_url) {
            (Some(text), _, _) => BodySource::Inline(text.clone()),
            (_, Some(path), _) => BodySource::File(path.clone()),
            (_, _, Some(url)) => BodySource::Download(url.clone()),
            _ => BodySource::None,
        };
        Ok(LoadSettings {
            connections: self.connections,
            max_connections: self
                .max_connections
                .unwrap_or(DEFAULT_MAX_CONNECTIONS.max(self.connections)),
            qps: self.qps,
            stop_after,
            warmup,
            method: self.method.clone(),
            headers: self.headers.clone(),
            body,
            content_type: self.content_type.clone(),
            timeout: self.timeout,
            http2: self.http2,
            streams: self.streams,
            error_ranges: self.error_ranges.clone(),
        })
    }
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
    /// Version the SLO applies to; default: every version (a relative SLO: every
    /// candidate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// A relative SLO compares against this: only `baseline` (the version whose role is
    /// baseline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versus: Option<String>,
    /// Relative SLO: the candidate's value may exceed the baseline's by at most this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_increase: Option<Change>,
    /// Relative SLO: the candidate's value may fall below the baseline's by at most this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_decrease: Option<Change>,
}

/// What `versus` names in a relative SLO.
pub const VERSUS_BASELINE: &str = "baseline";

impl SloSpec {
    /// An absolute SLO on `metric` with these limits, for every version.
    pub fn absolute(metric: &str, upper_limit: Option<f64>, lower_limit: Option<f64>) -> Self {
        Self {
            metric: metric.to_owned(),
            upper_limit,
            lower_limit,
            version: None,
            versus: None,
            max_increase: None,
            max_decrease: None,
        }
    }

    /// Whether it compares a candidate with the baseline (`versus` is set).
    pub fn is_relative(&self) -> bool {
        self.versus.is_some()
    }
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
    /// The commit of `head` that was deployed and tested (the chart's `headSHA`). Before
    /// promoting, `head` must still point at it: if it moved on, the action is
    /// `superseded` and nothing is promoted. The commit status goes on this commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_sha: Option<String>,
}

impl PromotionSpec {
    /// Promotion of `head` into `base` in `owner/repo` with every other setting at the
    /// default a spec file gets when it leaves the field out.
    pub fn new(
        owner: impl Into<String>,
        repo: impl Into<String>,
        base: impl Into<String>,
        head: impl Into<String>,
    ) -> Self {
        Self {
            owner: owner.into(),
            repo: repo.into(),
            base: base.into(),
            head: head.into(),
            token_file: None,
            api_url: default_api_url(),
            when: PromoteWhen::default(),
            labels: Vec::new(),
            reviewers: Vec::new(),
            title: None,
            body: None,
            commit_status: default_true(),
            head_sha: None,
        }
    }
}

/// The default GitHub API URL.
pub fn default_api_url() -> String {
    "https://api.github.com".to_owned()
}

fn default_true() -> bool {
    true
}

pub use crate::text_duration::{DurationError, duration, opt_duration, parse_duration};

pub use crate::shape::FieldError;

/// Why a spec was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The text is not well-formed YAML.
    #[error("the spec is not valid YAML: {0}")]
    Yaml(#[source] Box<serde_saphyr::Error>),
    /// The document does not fit the spec's shape or rules; every problem is listed.
    #[error("invalid experiment spec ({} problem{}):\n{}",
        .0.len(),
        if .0.len() == 1 { "" } else { "s" },
        .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<FieldError>),
}

impl SpecError {
    /// The field problems, empty for a YAML syntax error.
    pub fn problems(&self) -> &[FieldError] {
        match self {
            SpecError::Yaml(_) => &[],
            SpecError::Invalid(problems) => problems,
        }
    }
}

impl ExperimentSpec {
    /// Reads a spec from YAML (JSON is YAML too) and validates it.
    ///
    /// Every problem is reported at once, each with its path: fields of the wrong type,
    /// unknown and missing fields, and then the rules of [`ExperimentSpec::validate`] for
    /// every field that has the right type.
    pub fn from_yaml(text: &str) -> Result<Self, SpecError> {
        // YAML → generic tree → typed spec: the second step collects every shape problem.
        let tree: serde_json::Value =
            serde_saphyr::from_str(text).map_err(|e| SpecError::Yaml(Box::new(e)))?;
        if !tree.is_object() {
            return Err(SpecError::Invalid(vec![FieldError {
                path: String::new(),
                reason: if tree.is_null() {
                    "the spec is empty: it needs at least name and versions".to_owned()
                } else {
                    "the spec must be a mapping of fields (name: ..., versions: ...)".to_owned()
                },
            }]));
        }
        let (mut spec, mut problems) = crate::shape::read::<ExperimentSpec>(tree);
        // gRPC runs on HTTP/2: a gRPC experiment's load settings say so whatever `http2` says.
        if let Some(spec) = &mut spec
            && spec.versions.iter().any(|v| v.grpc.is_some())
        {
            spec.load.http2 = true;
        }
        let shape_problems = problems.len();
        if let Some(spec) = &spec {
            let mut v = Problems::default();
            validate::experiment(spec, &mut v);
            // A field with a shape problem holds a stand-in: its rule violations are not
            // the user's.
            let (shape, _) = problems.split_at(shape_problems);
            let kept: Vec<FieldError> =
                v.0.into_iter()
                    .filter(|rule| !shape.iter().any(|s| covers(&s.path, &rule.path)))
                    .collect();
            problems.extend(kept);
        }
        match spec {
            Some(spec) if problems.is_empty() => Ok(spec),
            _ => Err(SpecError::Invalid(problems)),
        }
    }

    /// Checks every rule at once and reports every problem with its field path.
    pub fn validate(&self) -> Result<(), SpecError> {
        let mut v = Problems::default();
        validate::experiment(self, &mut v);
        if v.0.is_empty() {
            Ok(())
        } else {
            Err(SpecError::Invalid(v.0))
        }
    }

    /// The measured requests the run plans in all loaded versions together, when bounded by
    /// count; `None` when no version gets load.
    pub fn planned_requests(&self) -> Option<u64> {
        let loaded = self.loaded_versions().count() as u64;
        match (self.load.num_requests, self.load.duration) {
            (_, _) if loaded == 0 => None,
            (Some(n), _) => Some(n.saturating_mul(loaded)),
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_NUM_REQUESTS.saturating_mul(loaded)),
        }
    }

    /// The measured seconds the run plans, when bounded by time: every version is loaded
    /// in the same time window.
    pub fn planned_seconds(&self) -> Option<f64> {
        self.load.duration.map(|d| d.as_secs_f64())
    }

    /// The versions an SLO applies to: the one it names, or every version (a relative
    /// SLO: every candidate).
    pub fn slo_versions<'a>(&'a self, slo: &'a SloSpec) -> impl Iterator<Item = &'a VersionSpec> {
        self.versions.iter().filter(move |v| {
            slo.version.as_deref().is_none_or(|name| name == v.name)
                && !(slo.is_relative() && v.role == Role::Baseline)
        })
    }

    /// The custom metric named `name`, if the spec's `metrics` has one.
    pub fn metric(&self, name: &str) -> Option<&MetricSpec> {
        self.metrics.iter().find(|m| m.name == name)
    }

    /// The versions that get built-in load (those with a `url`).
    pub fn loaded_versions(&self) -> impl Iterator<Item = &VersionSpec> {
        self.versions.iter().filter(|v| !v.url.is_empty())
    }

    /// The version whose role is baseline, if one is.
    pub fn baseline(&self) -> Option<&VersionSpec> {
        self.versions.iter().find(|v| v.role == Role::Baseline)
    }

    /// How many pods send the load (1 without a `parallelism` section).
    pub fn load_pods(&self) -> u32 {
        self.parallelism.map_or(1, |p| p.pods)
    }

    /// The testing pattern (`Conformance` when no strategy is given).
    pub fn testing_pattern(&self) -> TestingPattern {
        self.strategy
            .as_ref()
            .map_or(TestingPattern::Conformance, |s| s.testing_pattern)
    }
}

/// Whether `name` is a DNS label (RFC 1123) as Kubernetes namespaces are: at most 63
/// lowercase letters, digits and '-', not starting or ending with '-'.
pub fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// Whether `name` is a DNS subdomain (RFC 1123) as most Kubernetes object names are.
pub fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

/// Whether a problem at `outer` is about the field at `inner` or a part of it.
fn covers(outer: &str, inner: &str) -> bool {
    outer.is_empty()
        || inner
            .strip_prefix(outer)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}

/// Problems collected so far.
#[derive(Debug, Default)]
struct Problems(Vec<FieldError>);

/// The rules of a pull request's settings, with paths under `at` (`promotion`,
/// `actions.finish[0].pullRequest`); problems are added to `out`.
pub(crate) fn check_promotion(pr: &PromotionSpec, at: &str, out: &mut Vec<FieldError>) {
    let mut p = Problems::default();
    validate::promotion(pr, at, &mut p);
    out.append(&mut p.0);
}

pub(crate) fn check_commit_sha(at: &str, sha: &str, out: &mut Vec<FieldError>) {
    let mut p = Problems::default();
    validate::commit_sha(at, sha, &mut p);
    out.append(&mut p.0);
}

impl Problems {
    fn add(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.0.push(FieldError {
            path: path.into(),
            reason: reason.into(),
        });
    }
}

/// The validation rules, one function per part of the spec.
mod validate {
    use std::collections::HashSet;

    use super::*;
    use crate::metrics::Metric;
    use crate::quote::{number, quote};

    /// Why an SLO's `version` is refused when no version has that name: the names there are.
    fn no_such_version(name: &str, versions: &[VersionSpec]) -> String {
        let known: Vec<&str> = versions.iter().map(|v| v.name.as_str()).collect();
        format!(
            "no version is named {} (versions: {})",
            quote(name),
            quote_list(&known)
        )
    }

    /// Names quoted and cut short, at most a few of them.
    fn quote_list(names: &[&str]) -> String {
        let mut shown: Vec<String> = names.iter().take(8).map(|n| quote(n)).collect();
        if names.len() > 8 {
            shown.push(format!("and {} more", names.len() - 8));
        }
        shown.join(", ")
    }

    pub(super) fn experiment(spec: &ExperimentSpec, p: &mut Problems) {
        dns_subdomain("name", &spec.name, p);
        if let Some(ns) = &spec.namespace {
            dns_label("namespace", ns, p);
        }
        if spec.versions.is_empty() {
            p.add("versions", "at least one version is required");
        }
        let mut names = HashSet::new();
        for (i, v) in spec.versions.iter().enumerate() {
            let at = format!("versions[{i}]");
            if v.name.trim().is_empty() {
                p.add(format!("{at}.name"), "must not be empty");
            } else if !names.insert(v.name.as_str()) {
                p.add(
                    format!("{at}.name"),
                    format!(
                        "{} is used by an earlier version; names must be unique",
                        quote(&v.name)
                    ),
                );
            }
            match &v.grpc {
                None if v.url.is_empty() => {
                    if spec.metrics.is_empty() {
                        p.add(
                            format!("{at}.url"),
                            "is required: a version without url gets no load, and the spec has no metrics to judge it on",
                        );
                    }
                }
                None => http_url(&format!("{at}.url"), &v.url, p),
                Some(grpc) => {
                    grpc_url(&format!("{at}.url"), &v.url, p);
                    grpc_call(&format!("{at}.grpc"), grpc, p);
                }
            }
            if i > 0 && v.protocol() != spec.versions[0].protocol() {
                p.add(
                    format!("{at}.grpc"),
                    format!(
                        "versions[0] is loaded over {} and this one over {}: every version of an experiment is loaded with the same protocol, so that their metrics compare",
                        spec.versions[0].protocol(),
                        v.protocol()
                    ),
                );
            }
            headers(&format!("{at}.headers"), &v.headers, p);
            for key in v.variables.keys() {
                if key.is_empty()
                    || !key
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                {
                    p.add(
                        format!("{at}.variables"),
                        format!("{} is not a variable name: letters, digits, '_' and '-' (templates read it as {{{{winner.variables.NAME}}}})", quote(key)),
                    );
                }
            }
        }
        let baselines: Vec<usize> = spec
            .versions
            .iter()
            .enumerate()
            .filter(|(_, v)| v.role == Role::Baseline)
            .map(|(i, _)| i)
            .collect();
        for &i in baselines.iter().skip(1) {
            p.add(
                format!("versions[{i}].role"),
                format!(
                    "versions[{}] is the baseline already; at most one version is",
                    baselines[0]
                ),
            );
        }
        if spec.strategy.as_ref().map(|s| s.testing_pattern) == Some(TestingPattern::Canary) {
            let candidates = spec.versions.len() - baselines.len();
            if baselines.is_empty() {
                p.add(
                    "strategy.testingPattern",
                    "Canary compares a candidate with a baseline: give one version role: baseline",
                );
            }
            if candidates != 1 {
                p.add(
                    "strategy.testingPattern",
                    format!("Canary needs exactly one candidate, not {candidates}: the other versions need role: baseline, and there is at most one"),
                );
            }
        }
        load(&spec.load, p);
        if !(spec.confidence > 0.0 && spec.confidence < 1.0) {
            p.add(
                "confidence",
                format!(
                    "must be between 0 and 1, exclusive (e.g. 0.95), not {}",
                    number(spec.confidence)
                ),
            );
        }
        custom_metrics(spec, p);
        for (i, slo) in spec.slos.iter().enumerate() {
            if let Some(m) = spec.metric(&slo.metric) {
                custom_slo(&format!("slos[{i}]"), slo, m, &spec.versions, p);
                continue;
            }
            let unloaded: Vec<&str> = spec
                .slo_versions(slo)
                .filter(|v| v.url.is_empty())
                .map(|v| v.name.as_str())
                .collect();
            // Without metrics, `url` itself is reported missing.
            if !unloaded.is_empty()
                && !spec.metrics.is_empty()
                && slo.metric.parse::<Metric>().is_ok()
            {
                p.add(
                    format!("slos[{i}].metric"),
                    format!(
                        "{} is measured by slogate's own load, but {} {} no url: name one of metrics, or give the SLO a version with a url",
                        quote(&slo.metric),
                        quote_list(&unloaded),
                        if unloaded.len() == 1 { "has" } else { "have" }
                    ),
                );
            }
            if slo.is_relative() {
                self::relative_slo(&format!("slos[{i}]"), slo, &spec.versions, p);
            } else {
                self::slo(&format!("slos[{i}]"), slo, &spec.versions, p);
            }
        }
        if let Some(result) = &spec.result {
            if let Some(cm) = &result.config_map {
                dns_subdomain("result.configMap", cm, p);
            }
            if result
                .file
                .as_ref()
                .is_some_and(|f| f.as_os_str().is_empty())
            {
                p.add("result.file", "must not be empty");
            }
        }
        if let Some(promotion) = &spec.promotion {
            self::promotion(promotion, "promotion", p);
        }
        crate::actions::validate(spec, &mut p.0);
        rollout(spec, p);
        if let Some(parallel) = &spec.parallelism {
            parallelism(spec, parallel, p);
        }
    }

    /// The `metrics` section: names unique and not built-in, the queries each kind needs,
    /// templates that render for every version, an http(s) url; and a loop to query over.
    fn custom_metrics(spec: &ExperimentSpec, p: &mut Problems) {
        let mut names = HashSet::new();
        for (i, m) in spec.metrics.iter().enumerate() {
            let at = format!("metrics[{i}]");
            if m.name.trim().is_empty() {
                p.add(format!("{at}.name"), "must not be empty");
            } else if m.name.parse::<Metric>().is_ok() {
                p.add(
                    format!("{at}.name"),
                    format!("{} is a built-in metric: give the custom one another name (e.g. prometheus/{})", quote(&m.name), m.name.rsplit('/').next().unwrap_or_default()),
                );
            } else if !names.insert(m.name.as_str()) {
                p.add(
                    format!("{at}.name"),
                    format!(
                        "{} is used by an earlier metric; names must be unique",
                        quote(&m.name)
                    ),
                );
            }
            http_url(&format!("{at}.url"), &m.url, p);
            if m.provider.is_none() {
                p.add(format!("{at}.provider"), "is required: prometheus");
            }
            let Some(kind) = m.kind else {
                p.add(
                    format!("{at}.kind"),
                    "is required: ratio, histogramQuantile or value",
                );
                continue;
            };
            let need = |field: &str, given: bool, p: &mut Problems| {
                if !given {
                    p.add(
                        format!("{at}.{field}"),
                        format!("is required for kind: {}", kind.name()),
                    );
                }
            };
            let refuse = |field: &str, given: bool, p: &mut Problems| {
                if given {
                    p.add(
                        format!("{at}.{field}"),
                        format!("is not used by kind: {}", kind.name()),
                    );
                }
            };
            match kind {
                MetricKind::Ratio => {
                    need("numerator", m.numerator.is_some(), p);
                    need("denominator", m.denominator.is_some(), p);
                    refuse("query", m.query.is_some(), p);
                    refuse("quantile", m.quantile.is_some(), p);
                }
                MetricKind::HistogramQuantile => {
                    need("query", m.query.is_some(), p);
                    need("quantile", m.quantile.is_some(), p);
                    refuse("numerator", m.numerator.is_some(), p);
                    refuse("denominator", m.denominator.is_some(), p);
                }
                MetricKind::Value => {
                    need("query", m.query.is_some(), p);
                    refuse("numerator", m.numerator.is_some(), p);
                    refuse("denominator", m.denominator.is_some(), p);
                    refuse("quantile", m.quantile.is_some(), p);
                }
            }
            if let Some(q) = m.quantile
                && !(q > 0.0 && q < 1.0)
            {
                p.add(
                    format!("{at}.quantile"),
                    format!(
                        "must be between 0 and 1, exclusive (e.g. 0.95), not {}",
                        number(q)
                    ),
                );
            }
            if m.consecutive_error_limit == 0 {
                p.add(format!("{at}.consecutiveErrorLimit"), "must be at least 1");
            }
            for (field, template) in m.templates() {
                if template.trim().is_empty() {
                    p.add(format!("{at}.{field}"), "must not be empty");
                    continue;
                }
                // Every version must render it: a misspelt variable is caught before any query.
                for v in &spec.versions {
                    if let Err(err) = crate::custom::render_query(
                        template,
                        spec,
                        v,
                        std::time::Duration::from_secs(1),
                    ) {
                        let mut why = crate::quote::clip_message(&err.to_string());
                        if matches!(err, crate::custom::TemplateError::Render(_)) {
                            why.push_str("; a query sees name, namespace, experiment.name, experiment.namespace, elapsed");
                            for k in v.variables.keys() {
                                why.push_str(&format!(", variables.{k}"));
                            }
                        }
                        p.add(
                            format!("{at}.{field}"),
                            format!("for version {}: {why}", quote(&v.name)),
                        );
                        break;
                    }
                }
            }
        }
        if !spec.metrics.is_empty() && spec.duration.is_none() {
            p.add(
                "metrics",
                "metrics are queried over the experiment loop's window: give duration (intervalSeconds, iterationsPerLoop; iterationsPerLoop: 1 for a single window)",
            );
        }
    }

    /// An SLO on a custom metric: limits as any SLO's; relative only against a baseline.
    fn custom_slo(
        at: &str,
        slo: &SloSpec,
        m: &MetricSpec,
        versions: &[VersionSpec],
        p: &mut Problems,
    ) {
        if slo.is_relative() {
            if slo.versus.as_deref() != Some(VERSUS_BASELINE) {
                p.add(
                    format!("{at}.versus"),
                    format!(
                        "{} is not something to compare with: write versus: baseline",
                        quote(slo.versus.as_deref().unwrap_or_default())
                    ),
                );
            }
            if !versions.iter().any(|v| v.role == Role::Baseline) {
                p.add(
                    format!("{at}.versus"),
                    "no version has role: baseline to compare with",
                );
            }
            if slo.upper_limit.is_some() || slo.lower_limit.is_some() {
                p.add(
                    at,
                    "a relative SLO takes maxIncrease or maxDecrease; put an absolute limit in an SLO of its own",
                );
            }
            if slo.max_increase.is_none() && slo.max_decrease.is_none() {
                p.add(
                    at,
                    "give maxIncrease, maxDecrease or both (e.g. maxIncrease: 10%)",
                );
            }
            if let (Some(up), Some(down)) = (slo.max_increase, slo.max_decrease)
                && matches!(up, Change::Percent(_)) != matches!(down, Change::Percent(_))
            {
                p.add(
                    format!("{at}.maxDecrease"),
                    format!(
                        "{} and maxIncrease {} mix a percentage and an amount: write both one way",
                        down.text(),
                        up.text()
                    ),
                );
            }
        } else {
            if slo.upper_limit.is_none() && slo.lower_limit.is_none() {
                p.add(at, "give upperLimit, lowerLimit or both");
            }
            for (field, limit) in [
                ("upperLimit", slo.upper_limit),
                ("lowerLimit", slo.lower_limit),
            ] {
                if limit.is_some_and(|l| !l.is_finite()) {
                    p.add(format!("{at}.{field}"), "must be a finite number");
                }
                if m.kind() == MetricKind::Ratio && limit.is_some_and(|l| !(0.0..=1.0).contains(&l))
                {
                    p.add(
                        format!("{at}.{field}"),
                        format!(
                            "{} is a ratio, a fraction between 0 and 1 (0.01 means 1 %)",
                            quote(&m.name)
                        ),
                    );
                }
            }
        }
        if let Some(name) = &slo.version
            && !versions.iter().any(|v| &v.name == name)
        {
            p.add(format!("{at}.version"), no_such_version(name, versions));
        }
    }

    /// The `parallelism` section: pods in range, and a load that divides among them.
    fn parallelism(spec: &ExperimentSpec, parallel: &ParallelismSpec, p: &mut Problems) {
        let pods = parallel.pods;
        if !(1..=crate::parallel::MAX_PODS).contains(&pods) {
            p.add(
                "parallelism.pods",
                format!(
                    "must be between 1 and {}, not {pods}",
                    crate::parallel::MAX_PODS
                ),
            );
            return;
        }
        if parallel.report_timeout.is_zero() {
            p.add("parallelism.reportTimeout", "must be longer than 0s");
        }
        if pods == 1 {
            return;
        }
        if spec.duration.is_some() {
            p.add(
                "parallelism.pods",
                format!("{pods} load pods cannot run the experiment loop (duration): each iteration would need every pod's evidence so far; use one pod, or leave duration out"),
            );
        }
        let versions = spec.versions.len().max(1) as u64;
        let needed = u64::from(pods) * versions;
        if u64::from(spec.load.connections) < needed {
            p.add(
                "load.connections",
                format!(
                    "{} connections cannot be shared by {pods} load pods{}: give at least {needed}",
                    spec.load.connections,
                    if versions > 1 {
                        format!(" × {versions} versions")
                    } else {
                        String::new()
                    }
                ),
            );
        }
        let requests = match (spec.load.num_requests, spec.load.duration) {
            (Some(n), _) => Some(n),
            (None, None) => Some(DEFAULT_NUM_REQUESTS),
            (None, Some(_)) => None,
        };
        if let Some(n) = requests
            && n < u64::from(pods)
        {
            p.add(
                "load.numRequests",
                format!("{n} requests cannot be shared by {pods} load pods: give at least {pods}"),
            );
        }
    }

    /// Validates the loop's parts of a spec; paths are the spec's.
    fn rollout(spec: &ExperimentSpec, problems: &mut Problems) {
        let mut add = |path: String, reason: String| problems.add(path, reason);
        let pattern = spec
            .strategy
            .as_ref()
            .map(|s| s.deployment_pattern)
            .unwrap_or_default();
        if let Some(limits) = spec.strategy.as_ref().and_then(|s| s.weights) {
            if limits.max_candidate_weight > 100 {
                add(
                    "strategy.weights.maxCandidateWeight".into(),
                    format!(
                        "{} is above 100: weights are percentages of the traffic",
                        limits.max_candidate_weight
                    ),
                );
            }
            if !(1..=100).contains(&limits.max_candidate_weight_increment) {
                add(
                    "strategy.weights.maxCandidateWeightIncrement".into(),
                    format!(
                        "must be between 1 and 100, not {}",
                        limits.max_candidate_weight_increment
                    ),
                );
            }
        }
        if let Some(d) = &spec.duration {
            if d.interval_seconds == 0 {
                add(
                    "duration.intervalSeconds".into(),
                    "must be at least 1".into(),
                );
            }
            if d.iterations_per_loop == 0 {
                add(
                    "duration.iterationsPerLoop".into(),
                    "must be at least 1".into(),
                );
            }
            let bootstrapped = spec.slos.iter().any(|slo| {
                slo.metric
                    .parse::<crate::metrics::Metric>()
                    .is_ok_and(|m| m.uses_bootstrap())
            });
            let most = crate::looks::Looks::most_bootstrap_looks(spec.confidence);
            if bootstrapped && d.iterations_per_loop > most {
                add(
                    "duration.iterationsPerLoop".into(),
                    format!(
                        "{} looks at {} confidence over the loop need bounds beyond what the bootstrap of a mean or standard deviation SLO resolves: at most {most} iterations, or a lower confidence",
                        d.iterations_per_loop,
                        crate::quote::number(spec.confidence)
                    ),
                );
            }
            if spec.load.duration.is_some() {
                add(
                    "load.duration".into(),
                    "duration (intervalSeconds × iterationsPerLoop) sets how long load runs: leave load.duration out".into(),
                );
            }
            if spec.load.num_requests.is_some() {
                add(
                    "load.numRequests".into(),
                    "duration (intervalSeconds × iterationsPerLoop) sets how long load runs: leave load.numRequests out".into(),
                );
            }
        }
        for (i, v) in spec.versions.iter().enumerate() {
            if let Some(r) = &v.weight_obj_ref {
                let at = format!("versions[{i}].weightObjRef");
                object_fields(
                    &at,
                    &r.api_version,
                    &r.kind,
                    r.namespace.as_deref(),
                    &r.name,
                    &mut add,
                );
                if let Err(err) = crate::rollout::FieldPath::parse(&r.field_path) {
                    add(format!("{at}.fieldPath"), err.to_string());
                }
            }
        }
        if pattern.moves_traffic() {
            let baselines = spec
                .versions
                .iter()
                .filter(|v| v.role == Role::Baseline)
                .count();
            let candidates: Vec<(usize, &VersionSpec)> = spec
                .versions
                .iter()
                .enumerate()
                .filter(|(_, v)| v.role == Role::Candidate)
                .collect();
            if baselines != 1 || candidates.len() != 1 {
                add(
                    "strategy.deploymentPattern".into(),
                    format!(
                        "{pattern:?} shifts traffic from a baseline to a candidate: give exactly one version role: baseline and one candidate"
                    ),
                );
            }
            for (i, v) in &candidates {
                if v.weight_obj_ref.is_none() {
                    add(
                        format!("versions[{i}].weightObjRef"),
                        format!(
                            "{pattern:?} writes the candidate's weight: say where, e.g. {{apiVersion: gateway.networking.k8s.io/v1, kind: HTTPRoute, name: app, fieldPath: .spec.rules[0].backendRefs[1].weight}}"
                        ),
                    );
                }
            }
        } else if let Some((i, _)) = spec
            .versions
            .iter()
            .enumerate()
            .find(|(_, v)| v.weight_obj_ref.is_some())
        {
            add(
                format!("versions[{i}].weightObjRef"),
                "FixedSplit never writes weights: set strategy.deploymentPattern to Progressive or BlueGreen, or leave weightObjRef out".into(),
            );
        }
        if let Some(r) = &spec.readiness {
            if r.timeout == Duration::ZERO {
                add("readiness.timeout".into(), "must be longer than 0s".into());
            }
            if r.objects.is_empty() {
                add(
                    "readiness.objects".into(),
                    "name at least one object to wait for, or leave readiness out".into(),
                );
            }
            for (i, o) in r.objects.iter().enumerate() {
                let at = format!("readiness.objects[{i}]");
                object_fields(
                    &at,
                    &o.api_version,
                    &o.kind,
                    o.namespace.as_deref(),
                    &o.name,
                    &mut add,
                );
                if o.condition.as_deref().is_some_and(|c| c.trim().is_empty()) {
                    add(format!("{at}.condition"), "must not be empty".into());
                }
            }
        }
    }

    /// The rules every object reference follows.
    fn object_fields(
        at: &str,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        add: &mut impl FnMut(String, String),
    ) {
        let parts: Vec<&str> = api_version.split('/').collect();
        let well_formed = match parts.as_slice() {
            [version] => !version.is_empty(),
            [group, version] => !group.is_empty() && !version.is_empty(),
            _ => false,
        };
        if !well_formed {
            add(
                format!("{at}.apiVersion"),
                format!(
                    "{} is not group/version (e.g. apps/v1) or v1",
                    quote(api_version)
                ),
            );
        }
        if kind.is_empty() || !kind.bytes().all(|b| b.is_ascii_alphanumeric()) {
            add(
                format!("{at}.kind"),
                format!("{} is not a kind (e.g. Deployment)", quote(kind)),
            );
        }
        if let Some(ns) = namespace
            && !is_dns_label(ns)
        {
            add(
                format!("{at}.namespace"),
                format!("{} is not a namespace name", quote(ns)),
            );
        }
        if !is_dns_subdomain(name) {
            add(
                format!("{at}.name"),
                format!("{} is not an object name", quote(name)),
            );
        }
    }

    fn load(load: &LoadSpec, p: &mut Problems) {
        let mut rules = Problems::default();
        load_rules(load, &mut rules);
        for problem in rules.0 {
            p.add(format!("load.{}", problem.path), problem.reason);
        }
    }

    /// Every rule of the load section, paths relative to it: the spec's validation and
    /// [`LoadSpec::settings`] both apply exactly these.
    pub(super) fn load_rules(load: &LoadSpec, p: &mut Problems) {
        if load.connections < 1 {
            p.add("connections", "must be at least 1");
        }
        if load.streams < 1 {
            p.add("streams", "must be at least 1");
        } else if load.streams > 1 && !load.http2 {
            p.add(
                "streams",
                format!(
                    "{} concurrent streams need HTTP/2: set http2, or leave streams at 1 (an HTTP/1.1 connection carries one request at a time)",
                    load.streams
                ),
            );
        }
        if let Some(max) = load.max_connections
            && max < load.connections
        {
            p.add(
                "maxConnections",
                format!(
                    "{max} is fewer than connections ({}); it must be at least that",
                    load.connections
                ),
            );
        }
        if let Some(qps) = load.qps
            && !(qps.is_finite() && qps > 0.0)
        {
            p.add(
                "qps",
                format!("must be a number greater than 0, not {}; leave it out to send as fast as the connections go", number(qps)),
            );
        }
        if load.num_requests.is_some() && load.duration.is_some() {
            p.add(
                "duration",
                "numRequests and duration exclude each other: set one",
            );
        }
        if load.num_requests == Some(0) {
            p.add("numRequests", "must be at least 1");
        }
        if load.duration == Some(Duration::ZERO) {
            p.add("duration", "must be longer than 0s");
        }
        if load.warmup_requests.is_some() && load.warmup.is_some() {
            p.add(
                "warmup",
                "warmupRequests and warmup exclude each other: set one",
            );
        }
        let bodies = [
            ("body", load.body.is_some()),
            ("bodyFile", load.body_file.is_some()),
            ("payloadUrl", load.payload_url.is_some()),
        ];
        let given: Vec<&str> = bodies.iter().filter(|b| b.1).map(|b| b.0).collect();
        if given.len() > 1 {
            p.add(
                given[1],
                format!(
                    "{} exclude each other: give the body one way",
                    given.join(" and ")
                ),
            );
        }
        if let Some(url) = &load.payload_url {
            http_url("payloadUrl", url, p);
        }
        if load
            .body_file
            .as_ref()
            .is_some_and(|f| f.as_os_str().is_empty())
        {
            p.add("bodyFile", "must not be empty");
        }
        if let Some(method) = &load.method
            && (method.is_empty() || !method.bytes().all(is_token_byte))
        {
            p.add(
                "method",
                format!("{} is not an HTTP method (e.g. GET, POST)", quote(method)),
            );
        }
        if let Some(ct) = &load.content_type
            && (ct.trim().is_empty() || !is_header_value(ct))
        {
            p.add(
                "contentType",
                "must be a non-empty value of printable ASCII characters",
            );
        }
        if load.timeout == Duration::ZERO {
            p.add("timeout", "must be longer than 0s");
        }
        headers("headers", &load.headers, p);
        for (i, range) in load.error_ranges.iter().enumerate() {
            let at = format!("errorRanges[{i}]");
            for (field, value) in [("from", range.from), ("to", range.to)] {
                if !STATUS_CODES.contains(&value) {
                    p.add(
                        format!("{at}.{field}"),
                        format!("{value} is not an HTTP status (100..599)"),
                    );
                }
            }
            if range.from > range.to {
                p.add(
                    at,
                    format!("from ({}) is greater than to ({})", range.from, range.to),
                );
            }
        }
    }

    /// An SLO's metric names the protocol its versions are loaded with: `grpc/…` for gRPC.
    fn metric_protocol(at: &str, slo: &SloSpec, versions: &[VersionSpec], p: &mut Problems) {
        let (Some(named), Some(first)) = (Protocol::of_metric(&slo.metric), versions.first())
        else {
            return;
        };
        let loaded = first.protocol();
        if named != loaded {
            p.add(
                format!("{at}.metric"),
                format!(
                    "{} is a {named} metric, but the versions are loaded over {loaded}: write {}/{}",
                    quote(&slo.metric),
                    loaded.prefix(),
                    slo.metric.split_once('/').map_or("", |(_, rest)| rest)
                ),
            );
        }
    }

    fn slo(at: &str, slo: &SloSpec, versions: &[VersionSpec], p: &mut Problems) {
        let metric = match slo.metric.parse::<Metric>() {
            Ok(m) => Some(m),
            Err(err) => {
                p.add(format!("{at}.metric"), err.to_string());
                None
            }
        };
        if metric.is_some() {
            metric_protocol(at, slo, versions, p);
        }
        if slo.upper_limit.is_none() && slo.lower_limit.is_none() {
            p.add(at, "give upperLimit, lowerLimit or both");
        }
        for (field, limit) in [
            ("upperLimit", slo.upper_limit),
            ("lowerLimit", slo.lower_limit),
        ] {
            let Some(limit) = limit else { continue };
            let path = format!("{at}.{field}");
            if !limit.is_finite() {
                p.add(path, "must be a finite number");
                continue;
            }
            // Every metric slogate knows is a count, a rate or a latency: never negative.
            if limit < 0.0 {
                p.add(
                    path,
                    format!(
                        "{} is negative, but {} never is",
                        number(limit),
                        quote(&slo.metric)
                    ),
                );
            } else if let Some(max) = metric.and_then(|m| m.maximum())
                && limit > max
            {
                p.add(
                    path,
                    format!(
                        "{} is above {max}: {} is a fraction (0.01 means 1 %)",
                        number(limit),
                        slo.metric
                    ),
                );
            }
        }
        if let (Some(lo), Some(hi)) = (slo.lower_limit, slo.upper_limit)
            && lo > hi
        {
            p.add(
                format!("{at}.lowerLimit"),
                format!(
                    "{} is above upperLimit {}: no value can satisfy both",
                    number(lo),
                    number(hi)
                ),
            );
        }
        if let Some(name) = &slo.version
            && !versions.iter().any(|v| &v.name == name)
        {
            p.add(format!("{at}.version"), no_such_version(name, versions));
        }
    }

    /// A relative SLO: `versus: baseline` with `maxIncrease` and/or `maxDecrease`.
    fn relative_slo(at: &str, slo: &SloSpec, versions: &[VersionSpec], p: &mut Problems) {
        let metric = match slo.metric.parse::<Metric>() {
            Ok(m) => Some(m),
            Err(err) => {
                p.add(format!("{at}.metric"), err.to_string());
                None
            }
        };
        if metric.is_some() {
            metric_protocol(at, slo, versions, p);
        }
        if let Some(m) = metric
            && !matches!(
                m,
                Metric::ErrorRate | Metric::LatencyMean | Metric::LatencyPercentile(_)
            )
        {
            p.add(
                format!("{at}.metric"),
                format!("{m} cannot be compared with the baseline: compare http/error-rate, http/latency-mean or a percentile (http/latency-p95)"),
            );
        }
        if slo.versus.as_deref() != Some(VERSUS_BASELINE) {
            p.add(
                format!("{at}.versus"),
                format!(
                    "{} is not something to compare with: write versus: baseline",
                    quote(slo.versus.as_deref().unwrap_or_default())
                ),
            );
        }
        let baseline = versions.iter().find(|v| v.role == Role::Baseline);
        if baseline.is_none() {
            p.add(
                format!("{at}.versus"),
                "no version has role: baseline to compare with",
            );
        }
        for field in ["upperLimit", "lowerLimit"] {
            let given = if field == "upperLimit" {
                slo.upper_limit.is_some()
            } else {
                slo.lower_limit.is_some()
            };
            if given {
                p.add(
                    format!("{at}.{field}"),
                    "a relative SLO takes maxIncrease or maxDecrease; put an absolute limit in an SLO of its own",
                );
            }
        }
        if let (Some(up), Some(down)) = (slo.max_increase, slo.max_decrease)
            && matches!(up, Change::Percent(_)) != matches!(down, Change::Percent(_))
        {
            p.add(
                format!("{at}.maxDecrease"),
                format!(
                    "{} and maxIncrease {} mix a percentage and an amount: write both one way",
                    down.text(),
                    up.text()
                ),
            );
        }
        if slo.max_increase.is_none() && slo.max_decrease.is_none() {
            p.add(
                at,
                "give maxIncrease, maxDecrease or both (e.g. maxIncrease: 10%)",
            );
        }
        for (field, change) in [
            ("maxIncrease", slo.max_increase),
            ("maxDecrease", slo.max_decrease),
        ] {
            let Some(change) = change else { continue };
            let path = format!("{at}.{field}");
            let (Change::Percent(v) | Change::Amount(v)) = change;
            if !v.is_finite() || v < 0.0 {
                p.add(
                    path,
                    format!("{} must be a number of at least 0", change.text()),
                );
                continue;
            }
            match (change, metric) {
                (Change::Percent(_), Some(Metric::ErrorRate)) => p.add(
                    path,
                    format!("{} is a percentage of the baseline's error rate, which is often 0: give the increase as a fraction (0.01 is one percentage point)", change.text()),
                ),
                (Change::Percent(v), _) if field == "maxDecrease" && v > 100.0 => p.add(
                    path,
                    format!("{}: nothing falls by more than 100%", change.text()),
                ),
                (Change::Amount(v), Some(Metric::ErrorRate)) if v > 1.0 => p.add(
                    path,
                    format!("{} is above 1: the error rate is a fraction (0.01 means 1 %)", number(v)),
                ),
                _ => {}
            }
        }
        if let Some(name) = &slo.version {
            match versions.iter().find(|v| &v.name == name) {
                None => {
                    p.add(format!("{at}.version"), no_such_version(name, versions));
                }
                Some(v) if v.role == Role::Baseline => p.add(
                    format!("{at}.version"),
                    format!(
                        "{} is the baseline: it cannot be compared with itself",
                        quote(name)
                    ),
                ),
                Some(_) => {}
            }
        }
    }

    pub(super) fn promotion(pr: &PromotionSpec, at: &str, p: &mut Problems) {
        for (field, value) in [
            ("owner", &pr.owner),
            ("repo", &pr.repo),
            ("base", &pr.base),
            ("head", &pr.head),
        ] {
            if value.trim().is_empty() {
                p.add(format!("{at}.{field}"), "must not be empty");
            }
        }
        if !pr.base.trim().is_empty() && pr.base == pr.head {
            p.add(
                format!("{at}.head"),
                format!(
                    "{} is also the base branch: a pull request needs two branches",
                    quote(&pr.head)
                ),
            );
        }
        http_url(&format!("{at}.apiUrl"), &pr.api_url, p);
        if let Some(sha) = &pr.head_sha {
            commit_sha(&format!("{at}.headSha"), sha, p);
        }
        if pr
            .token_file
            .as_ref()
            .is_some_and(|f| f.as_os_str().is_empty())
        {
            p.add(format!("{at}.tokenFile"), "must not be empty");
        }
        for (field, list) in [("labels", &pr.labels), ("reviewers", &pr.reviewers)] {
            for (i, item) in list.iter().enumerate() {
                if item.trim().is_empty() {
                    p.add(format!("{at}.{field}[{i}]"), "must not be empty");
                }
            }
        }
        for (field, template) in [("title", &pr.title), ("body", &pr.body)] {
            if template.as_ref().is_some_and(|t| t.trim().is_empty()) {
                p.add(
                    format!("{at}.{field}"),
                    "must not be empty; leave it out for the default",
                );
            }
        }
    }

    /// A full commit id: 40 hexadecimal digits (SHA-1), or 64 (SHA-256 repositories).
    pub(crate) fn commit_sha(path: &str, sha: &str, p: &mut Problems) {
        let hex = sha.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex || !(sha.len() == 40 || sha.len() == 64) {
            p.add(
                path,
                format!(
                    "{} is not a full commit id: give the 40 hexadecimal digits `git rev-parse HEAD` prints",
                    quote(sha)
                ),
            );
        }
    }

    /// A gRPC target: `grpc://HOST:PORT` (plaintext HTTP/2) or `grpcs://HOST:PORT` (TLS).
    pub(super) fn grpc_url(path: &str, text: &str, p: &mut Problems) {
        match url::Url::parse(text) {
            Err(err) => p.add(path, format!("{} is not a URL: {err}", quote(text))),
            Ok(u) if !matches!(u.scheme(), "grpc" | "grpcs") => p.add(
                path,
                format!(
                    "{}: a version with a grpc section is loaded at grpc://HOST:PORT (plaintext) or grpcs://HOST:PORT (TLS), not {}",
                    quote(text),
                    quote(u.scheme())
                ),
            ),
            Ok(u) if u.host_str().is_none_or(str::is_empty) => {
                p.add(path, format!("{} has no host", quote(text)))
            }
            Ok(u) if u.port().is_none() => p.add(
                path,
                format!("{} has no port: gRPC has no default one", quote(text)),
            ),
            Ok(u) if !matches!(u.path(), "" | "/") || u.query().is_some() => p.add(
                path,
                format!(
                    "{}: a gRPC target is HOST:PORT only; the method goes in grpc.call",
                    quote(text)
                ),
            ),
            Ok(_) => {}
        }
    }

    /// The `grpc` section: a method name of the right form, a JSON object, metadata keys
    /// gRPC allows. Whether the proto file declares the method is checked when the load is
    /// planned, where the file is read.
    pub(super) fn grpc_call(at: &str, grpc: &GrpcSpec, p: &mut Problems) {
        if grpc.proto.as_os_str().is_empty() {
            p.add(format!("{at}.proto"), "must name the service's .proto file");
        }
        let named = grpc.service_and_method().is_some_and(|(service, method)| {
            let ident = |s: &str| {
                s.chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            };
            service.split('.').all(ident) && ident(method)
        });
        if !named {
            p.add(
                format!("{at}.call"),
                format!(
                    "{} is not package.Service/Method (e.g. slogate.hello.v1.Greeter/SayHello)",
                    quote(&grpc.call)
                ),
            );
        }
        if !grpc.data.is_object() {
            p.add(
                format!("{at}.data"),
                "must be the request message as a JSON object, e.g. {\"name\": \"slogate\"}",
            );
        }
        for (key, value) in &grpc.metadata {
            let path = format!("{at}.metadata.{key}");
            if key.is_empty()
                || !key.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
                })
            {
                p.add(
                    path,
                    "a metadata key is lowercase letters, digits, '-', '_' and '.'",
                );
            } else if key.starts_with("grpc-")
                || matches!(key.as_str(), "content-type" | "te" | "user-agent")
            {
                p.add(path, "is set by gRPC itself; choose another key");
            } else if !key.ends_with("-bin") && !is_header_value(value) {
                p.add(path, "the value holds a control character");
            }
        }
    }

    fn http_url(path: &str, text: &str, p: &mut Problems) {
        match url::Url::parse(text) {
            Err(err) => p.add(path, format!("{} is not a URL: {err}", quote(text))),
            Ok(u) if !matches!(u.scheme(), "http" | "https") => p.add(
                path,
                format!(
                    "{}: the scheme must be http or https, not {}",
                    quote(text),
                    quote(u.scheme())
                ),
            ),
            Ok(u) if u.host_str().is_none_or(str::is_empty) => {
                p.add(path, format!("{} has no host", quote(text)))
            }
            Ok(_) => {}
        }
    }

    fn headers(path: &str, headers: &[Header], p: &mut Problems) {
        for (i, h) in headers.iter().enumerate() {
            if h.name.is_empty() || !h.name.bytes().all(is_token_byte) {
                p.add(
                    format!("{path}[{i}].name"),
                    format!("{} is not a valid header name", quote(&h.name)),
                );
            }
            if !is_header_value(&h.value) {
                p.add(
                    format!("{path}[{i}].value"),
                    "must be one line of printable ASCII characters (no CR, LF or other control characters)",
                );
            }
        }
    }

    /// What the load engine can send as a header value: printable ASCII, spaces and tabs.
    fn is_header_value(value: &str) -> bool {
        value
            .bytes()
            .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
    }

    /// RFC 9110 `tchar`: what header names and methods are made of.
    fn is_token_byte(b: u8) -> bool {
        b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
    }

    /// A Kubernetes object name (RFC 1123 subdomain): it names the result ConfigMap.
    fn dns_subdomain(path: &str, name: &str, p: &mut Problems) {
        if !is_dns_subdomain(name) {
            p.add(
                path,
                format!("{} is not a valid Kubernetes name: at most 253 lowercase letters, digits, '-' and '.', starting and ending with a letter or digit", quote(name)),
            );
        }
    }

    /// A Kubernetes namespace name (RFC 1123 label).
    fn dns_label(path: &str, name: &str, p: &mut Problems) {
        if !is_dns_label(name) {
            p.add(
                path,
                format!(
                    "{} is not a valid namespace: at most 63 lowercase letters, digits and '-'",
                    quote(name)
                ),
            );
        }
    }
}
