//! Custom metrics: the spec's `metrics:` (queries sent to a provider such as Prometheus),
//! the evidence a provider returns for one version ([`CustomEvidence`]), and how an SLO on
//! such a metric is judged with the same intervals as the built-in metrics.
//!
//! - `kind: ratio` (a `numerator` and a `denominator` query, both counts) is judged as the
//!   built-in error rate is: Clopper-Pearson bounds of the fraction, Newcombe's interval for
//!   a difference with the baseline.
//! - `kind: histogramQuantile` (a `query` giving the `_bucket` series by `le`, and a
//!   `quantile`) is judged on the distribution-free order-statistic bounds the built-in
//!   percentiles use, taken at the edges of the buckets the ranks fall in.
//! - `kind: value` (a gauge) has no sampling interval: it is judged on its value.
//!
//! Queries are handlebars templates over the version (`name`, `variables`), the experiment
//! (`experiment.name`, `experiment.namespace`, and `namespace`) and the window (`elapsed`,
//! whole seconds such as `37s`, for a PromQL range `[{{elapsed}}]`). Rendering is pure; the
//! provider's I/O lives outside the core. A provider error never violates an SLO: the SLO is
//! `noData` for that look.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::measure::Measurement;
use crate::metrics::Metric;
use crate::result::{Comparison, ContrastKind, Interval, SloResult, SloVerdict};
use crate::spec::{Change, ExperimentSpec, SloSpec, VersionSpec};
use crate::stats::{self, Bounds, Contrast};

/// How many consecutive provider errors a metric may have before the experiment fails.
pub const DEFAULT_CONSECUTIVE_ERROR_LIMIT: u32 = 3;

fn default_error_limit() -> u32 {
    DEFAULT_CONSECUTIVE_ERROR_LIMIT
}

/// One custom metric of the spec's `metrics:`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricSpec {
    /// The name SLOs use (`knative/error-rate`).
    pub name: String,
    /// Where the values come from (required; optional here only so that a wrong value is
    /// reported with the other problems of the spec).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<Provider>,
    /// The provider's base URL (`http://prometheus.monitoring:9090`).
    pub url: String,
    /// How the query's result is read and judged (required, as `provider`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<MetricKind>,
    /// `histogramQuantile` and `value`: the query (a handlebars template).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// `ratio`: the query counting the events (a handlebars template).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numerator: Option<String>,
    /// `ratio`: the query counting all (a handlebars template).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denominator: Option<String>,
    /// `histogramQuantile`: the quantile, in (0, 1) (0.95).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantile: Option<f64>,
    /// The unit values are in, for reports (`ms`, `s`, `requests`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Credentials for the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<MetricAuth>,
    /// A PEM file of the CA that signed the provider's certificate (an `https` url).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Consecutive provider errors after which the experiment fails (default 3).
    #[serde(default = "default_error_limit")]
    pub consecutive_error_limit: u32,
}

/// Credentials sent to a metrics provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricAuth {
    /// A file (a mounted Secret) holding the bearer token, read at each query.
    pub bearer_token_file: PathBuf,
}

/// A metrics provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Provider {
    /// Prometheus' HTTP API (`/api/v1/query`).
    Prometheus,
}

/// How a custom metric's query result is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MetricKind {
    /// `numerator` / `denominator`, both counts: a fraction with a binomial interval.
    Ratio,
    /// A quantile of a histogram's buckets, with an order-statistic interval.
    HistogramQuantile,
    /// A gauge, judged on its value (no sampling interval).
    Value,
}

impl MetricKind {
    /// The name as the spec writes it.
    pub fn name(self) -> &'static str {
        match self {
            MetricKind::Ratio => "ratio",
            MetricKind::HistogramQuantile => "histogramQuantile",
            MetricKind::Value => "value",
        }
    }
}

impl MetricSpec {
    /// The kind; a validated spec has one.
    pub fn kind(&self) -> MetricKind {
        self.kind.unwrap_or(MetricKind::Value)
    }

    /// The provider; a validated spec has one.
    pub fn provider(&self) -> Provider {
        self.provider.unwrap_or(Provider::Prometheus)
    }

    /// The queries of this metric by role (`numerator`, `denominator`, or `query`), in the
    /// order they are sent.
    pub fn templates(&self) -> Vec<(&'static str, &str)> {
        match self.kind() {
            MetricKind::Ratio => [
                ("numerator", self.numerator.as_deref()),
                ("denominator", self.denominator.as_deref()),
            ]
            .into_iter()
            .filter_map(|(k, q)| q.map(|q| (k, q)))
            .collect(),
            _ => self
                .query
                .as_deref()
                .map(|q| ("query", q))
                .into_iter()
                .collect(),
        }
    }
}

/// The window a query covers, written as PromQL reads a range: whole seconds, at least 1
/// (`37s`).
pub fn elapsed_text(elapsed: Duration) -> String {
    format!("{}s", elapsed.as_secs_f64().round().max(1.0) as u64)
}

/// Why a query template cannot be rendered.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The template is not valid handlebars.
    #[error("not a valid template: {0}")]
    Syntax(#[source] Box<handlebars::TemplateError>),
    /// The template names something the context does not have.
    #[error("{0}")]
    Render(#[source] Box<handlebars::RenderError>),
}

/// Renders one query template for `version` of `spec` over a window of `elapsed`: strict,
/// so a misspelt name is an error rather than an empty string.
pub fn render_query(
    template: &str,
    spec: &ExperimentSpec,
    version: &VersionSpec,
    elapsed: Duration,
) -> Result<String, TemplateError> {
    let mut hb = handlebars::Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(handlebars::no_escape);
    hb.register_template_string("query", template)
        .map_err(|e| TemplateError::Syntax(Box::new(e)))?;
    let context = serde_json::json!({
        "name": version.name,
        "variables": version.variables,
        "namespace": spec.namespace.clone().unwrap_or_else(|| "default".to_owned()),
        "experiment": {
            "name": spec.name,
            "namespace": spec.namespace.clone().unwrap_or_else(|| "default".to_owned()),
        },
        "elapsed": elapsed_text(elapsed),
    });
    hb.render("query", &context)
        .map_err(|e| TemplateError::Render(Box::new(e)))
}

/// One cumulative bucket of a histogram: how many observations were at most `le`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CumulativeBucket {
    /// The upper edge (`le`); `+Inf` is the last.
    #[serde(with = "le_text")]
    pub le: f64,
    /// Observations at most `le`.
    pub count: f64,
}

/// `le` as text, so `+Inf` survives JSON.
mod le_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_infinite() {
            s.serialize_str("+Inf")
        } else {
            s.serialize_f64(*v)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Le {
            N(f64),
            S(String),
        }
        match Le::deserialize(d)? {
            Le::N(n) => Ok(n),
            Le::S(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// What a provider returned for one custom metric of one version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum CustomValue {
    /// Two counts.
    Ratio {
        /// The events counted.
        numerator: f64,
        /// All counted.
        denominator: f64,
    },
    /// Cumulative bucket counts, sorted by `le`.
    HistogramQuantile {
        /// The buckets.
        buckets: Vec<CumulativeBucket>,
    },
    /// A gauge's value.
    Value {
        /// The value.
        value: f64,
    },
    /// Nothing usable came back: a failed query, an empty vector, NaN.
    NoData {
        /// Why.
        reason: String,
    },
}

/// The evidence of one custom metric for one version: the queries as sent and what came
/// back. Each look queries the whole window since the start, so newer evidence replaces
/// older rather than adding to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomEvidence {
    /// The rendered queries, by role (`numerator`, `denominator`, `query`).
    pub queries: BTreeMap<String, String>,
    /// What came back.
    pub value: CustomValue,
}

/// The `q`-quantile of cumulative buckets as Prometheus' `histogram_quantile` computes it:
/// linear within the bucket holding rank `q·n`, the first bucket starting at 0. `None` with
/// no observation; the highest finite edge when the rank is in the `+Inf` bucket.
pub fn bucket_quantile(buckets: &[CumulativeBucket], q: f64) -> Option<f64> {
    let total = buckets.last()?.count;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut prev_le = 0.0;
    let mut prev_count = 0.0;
    for b in buckets {
        if b.count >= rank {
            if b.le.is_infinite() {
                return Some(prev_le);
            }
            let inside = b.count - prev_count;
            if inside <= 0.0 {
                return Some(b.le);
            }
            return Some(prev_le + (b.le - prev_le) * (rank - prev_count) / inside);
        }
        prev_le = b.le;
        prev_count = b.count;
    }
    Some(prev_le)
}

/// The edges of the bucket holding the observation of 1-based rank `rank`: `(lower, upper)`.
fn bucket_of_rank(buckets: &[CumulativeBucket], rank: u64) -> Option<(f64, f64)> {
    let mut lower = 0.0;
    for b in buckets {
        if b.count.round() as u64 >= rank {
            return Some((lower, b.le));
        }
        lower = b.le;
    }
    None
}

/// One-sided order-statistic bounds of the `q`-quantile of bucket counts at `confidence`:
/// the lower bound is the lower edge of the bucket holding the lower rank, the upper bound
/// the upper edge of the bucket holding the upper rank (infinite when it does not exist or
/// is the `+Inf` bucket).
pub fn bucket_quantile_bounds(buckets: &[CumulativeBucket], q: f64, confidence: f64) -> Bounds {
    let n = buckets
        .last()
        .map_or(0, |b| b.count.round().max(0.0) as u64);
    let (lo, hi) = stats::order_statistic_ranks(n, q, confidence);
    let lower = lo
        .and_then(|r| bucket_of_rank(buckets, r))
        .map_or(0.0, |(l, _)| l);
    let upper = hi
        .and_then(|r| bucket_of_rank(buckets, r))
        .map_or(f64::INFINITY, |(_, u)| u);
    Bounds { lower, upper }
}

/// The value a report shows for the evidence: the fraction, the quantile or the gauge.
pub fn observed(spec: &MetricSpec, value: &CustomValue) -> Option<f64> {
    match value {
        CustomValue::Ratio {
            numerator,
            denominator,
        } => (*denominator > 0.0).then(|| numerator / denominator),
        CustomValue::HistogramQuantile { buckets } => {
            bucket_quantile(buckets, spec.quantile.unwrap_or(0.5))
        }
        CustomValue::Value { value } => Some(*value),
        CustomValue::NoData { .. } => None,
    }
}

/// A ratio's counts as the built-in error rate's evidence: events as errors.
fn as_counts(numerator: f64, denominator: f64) -> Measurement {
    let requests = denominator.round().max(0.0) as u64;
    Measurement {
        requests,
        errors: (numerator.round().max(0.0) as u64).min(requests),
        ..Measurement::default()
    }
}

fn empty_result(slo: &SloSpec, version: &str) -> SloResult {
    SloResult {
        version: version.to_owned(),
        metric: slo.metric.clone(),
        upper_limit: slo.upper_limit,
        lower_limit: slo.lower_limit,
        observed: None,
        interval: None,
        verdict: SloVerdict::NoData,
        requests_needed: None,
        method: "none".to_owned(),
        reason: String::new(),
        comparison: None,
    }
}

/// The reason a version has no usable evidence, if it has none.
fn no_data(ev: Option<&CustomEvidence>) -> Option<String> {
    match ev {
        None => Some("no query has been answered yet".to_owned()),
        Some(CustomEvidence {
            value: CustomValue::NoData { reason },
            ..
        }) => Some(reason.clone()),
        Some(CustomEvidence {
            value: CustomValue::Ratio { denominator, .. },
            ..
        }) if denominator.round() <= 0.0 => {
            Some("the denominator is 0: nothing was counted in the window".to_owned())
        }
        Some(CustomEvidence {
            value: CustomValue::HistogramQuantile { buckets },
            ..
        }) if buckets.last().is_none_or(|b| b.count.round() <= 0.0) => {
            Some("the histogram holds no observation in the window".to_owned())
        }
        _ => None,
    }
}

/// Judges an absolute SLO on a custom metric for one version.
pub fn judge_absolute(
    slo: &SloSpec,
    version: &str,
    metric: &MetricSpec,
    ev: Option<&CustomEvidence>,
    confidence: f64,
) -> SloResult {
    let subject = format!("{} of {version}", slo.metric);
    if let Some(reason) = no_data(ev) {
        let mut r = empty_result(slo, version);
        r.reason = format!("{subject} has no data: {reason}.");
        return r;
    }
    let ev = ev.expect("evidence is there when no_data is None");
    let unit = metric.unit.as_deref().unwrap_or("");
    let level = crate::verdict::percent(confidence);
    match &ev.value {
        CustomValue::Ratio {
            numerator,
            denominator,
        } => crate::verdict::judge_measured_as(
            slo,
            version,
            &as_counts(*numerator, *denominator),
            confidence,
            Metric::ErrorRate,
        ),
        CustomValue::Value { value } => {
            let mut r = empty_result(slo, version);
            r.observed = Some(*value);
            r.method = "value".to_owned();
            let ok = slo.upper_limit.is_none_or(|u| *value <= u)
                && slo.lower_limit.is_none_or(|l| *value >= l);
            r.verdict = if ok {
                SloVerdict::Satisfied
            } else {
                SloVerdict::Violated
            };
            r.reason = format!(
                "{subject} is {}, {} the limit {}: judged on its value; no sampling interval.",
                shown(*value, unit),
                if ok { "within" } else { "outside" },
                limits_text(slo.lower_limit, slo.upper_limit, unit)
            );
            r
        }
        CustomValue::HistogramQuantile { buckets } => {
            let q = metric.quantile.unwrap_or(0.5);
            let mut r = empty_result(slo, version);
            r.method = "order-statistic".to_owned();
            let obs = bucket_quantile(buckets, q);
            r.observed = obs;
            let b = bucket_quantile_bounds(buckets, q, confidence);
            r.interval = b.is_finite().then_some(Interval {
                lower: b.lower,
                upper: b.upper,
            });
            let (verdict, how) = decide(b, slo.lower_limit, slo.upper_limit);
            r.verdict = verdict;
            r.reason = format!(
                "{subject} is {}; its one-sided {level} bounds [{}, {}] from the bucket edges {how} the limit {}.",
                obs.map_or("unknown".to_owned(), |v| shown(v, unit)),
                shown(b.lower, unit),
                if b.upper.is_finite() {
                    shown(b.upper, unit)
                } else {
                    "unbounded".to_owned()
                },
                limits_text(slo.lower_limit, slo.upper_limit, unit)
            );
            r
        }
        CustomValue::NoData { .. } => unreachable!("handled by no_data"),
    }
}

/// The verdict of bounds against limits, and the words for it.
fn decide(b: Bounds, lower: Option<f64>, upper: Option<f64>) -> (SloVerdict, &'static str) {
    if upper.is_some_and(|u| b.lower > u) || lower.is_some_and(|l| b.upper < l) {
        (SloVerdict::Violated, "are beyond")
    } else if upper.is_none_or(|u| b.upper <= u) && lower.is_none_or(|l| b.lower >= l) {
        (SloVerdict::Satisfied, "are within")
    } else {
        (SloVerdict::Inconclusive, "straddle")
    }
}

fn shown(v: f64, unit: &str) -> String {
    let digits = if v == 0.0 || v.abs() >= 1000.0 {
        0
    } else {
        (3 - v.abs().log10().floor() as i32).clamp(0, 9) as usize
    };
    let mut s = format!("{v:.digits$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_owned();
    }
    if !unit.is_empty() {
        s.push(' ');
        s.push_str(unit);
    }
    s
}

fn limits_text(lower: Option<f64>, upper: Option<f64>, unit: &str) -> String {
    match (lower, upper) {
        (Some(l), Some(u)) => format!("{} .. {}", shown(l, unit), shown(u, unit)),
        (None, Some(u)) => format!("≤ {}", shown(u, unit)),
        (Some(l), None) => format!("≥ {}", shown(l, unit)),
        (None, None) => "(none)".to_owned(),
    }
}

/// Judges a relative SLO on a custom metric: `version` against the baseline.
pub fn judge_relative(
    slo: &SloSpec,
    version: &str,
    ev: Option<&CustomEvidence>,
    baseline: &str,
    bev: Option<&CustomEvidence>,
    metric: &MetricSpec,
    confidence: f64,
) -> SloResult {
    let subject = format!("{} of {version} versus {baseline}", slo.metric);
    let percent_given = matches!(slo.max_increase, Some(Change::Percent(_)))
        || matches!(slo.max_decrease, Some(Change::Percent(_)));
    let contrast = if percent_given {
        Contrast::Ratio
    } else {
        Contrast::Difference
    };
    let limit_of = |change: Option<Change>, up: bool| -> Option<f64> {
        let sign = if up { 1.0 } else { -1.0 };
        Some(match change? {
            Change::Percent(p) => 1.0 + sign * p / 100.0,
            Change::Amount(a) => sign * a,
        })
    };
    let (upper, lower) = (
        limit_of(slo.max_increase, true),
        limit_of(slo.max_decrease, false),
    );
    let mut r = SloResult {
        upper_limit: upper,
        lower_limit: lower,
        comparison: Some(Comparison {
            versus: baseline.to_owned(),
            contrast: match contrast {
                Contrast::Ratio => ContrastKind::Ratio,
                Contrast::Difference => ContrastKind::Difference,
            },
            max_increase: slo.max_increase.map(|c| c.text()),
            max_decrease: slo.max_decrease.map(|c| c.text()),
            candidate: None,
            baseline: None,
        }),
        ..empty_result(slo, version)
    };
    for (name, e) in [(version, ev), (baseline, bev)] {
        if let Some(reason) = no_data(e) {
            r.reason = format!("{subject} has no data: for {name}, {reason}.");
            return r;
        }
    }
    let (ev, bev) = (ev.expect("checked"), bev.expect("checked"));
    if let (
        CustomValue::Ratio {
            numerator: cn,
            denominator: cd,
        },
        CustomValue::Ratio {
            numerator: bn,
            denominator: bd,
        },
    ) = (&ev.value, &bev.value)
        && contrast == Contrast::Difference
    {
        return crate::verdict::judge_relative_as(
            slo,
            version,
            &as_counts(*cn, *cd),
            baseline,
            &as_counts(*bn, *bd),
            confidence,
            Metric::ErrorRate,
        );
    }
    let (cv, bv) = (observed(metric, &ev.value), observed(metric, &bev.value));
    if let Some(c) = r.comparison.as_mut() {
        c.candidate = cv;
        c.baseline = bv;
    }
    let (Some(cv), Some(bv)) = (cv, bv) else {
        r.reason = format!("{subject} has no data: a version has no value.");
        return r;
    };
    let Some(obs) = contrast.of(cv, bv) else {
        r.verdict = SloVerdict::Inconclusive;
        r.reason = format!(
            "{subject} cannot be judged as a ratio: {baseline}'s value is 0; give the limit in the metric's unit instead."
        );
        return r;
    };
    r.observed = Some(obs);
    let unit = metric.unit.as_deref().unwrap_or("");
    let show_c = |v: f64| match contrast {
        Contrast::Ratio => format!("{}×", shown(v, "")),
        Contrast::Difference => format!(
            "{}{}",
            if v < 0.0 { "-" } else { "+" },
            shown(v.abs(), unit)
        ),
    };
    let cond = match (lower, upper) {
        (Some(l), Some(u)) => format!("{} .. {}", show_c(l), show_c(u)),
        (None, Some(u)) => format!("≤ {}", show_c(u)),
        (Some(l), None) => format!("≥ {}", show_c(l)),
        (None, None) => "(none)".to_owned(),
    };
    let both = format!(
        "{} ({} vs {})",
        show_c(obs),
        shown(cv, unit),
        shown(bv, unit)
    );
    match (&ev.value, &bev.value) {
        (CustomValue::Value { .. }, CustomValue::Value { .. }) => {
            r.method = "value".to_owned();
            let ok = upper.is_none_or(|u| obs <= u) && lower.is_none_or(|l| obs >= l);
            r.verdict = if ok {
                SloVerdict::Satisfied
            } else {
                SloVerdict::Violated
            };
            r.reason = format!(
                "{subject} is {both}, {} the limit {cond}: judged on its value; no sampling interval.",
                if ok { "within" } else { "outside" }
            );
        }
        _ => {
            // Each version's one-sided bounds at half the error: together they hold at the
            // level (Bonferroni), and the contrast's bounds follow from them.
            let half = 1.0 - (1.0 - confidence) / 2.0;
            let bounds_of = |v: &CustomValue| match v {
                CustomValue::HistogramQuantile { buckets } => {
                    bucket_quantile_bounds(buckets, metric.quantile.unwrap_or(0.5), half)
                }
                CustomValue::Ratio {
                    numerator,
                    denominator,
                } => {
                    let m = as_counts(*numerator, *denominator);
                    stats::clopper_pearson(m.errors, m.requests, half).unwrap_or(Bounds {
                        lower: 0.0,
                        upper: f64::INFINITY,
                    })
                }
                _ => Bounds {
                    lower: f64::NEG_INFINITY,
                    upper: f64::INFINITY,
                },
            };
            let (c, b) = (bounds_of(&ev.value), bounds_of(&bev.value));
            let bounds = match contrast {
                Contrast::Difference => Bounds {
                    lower: c.lower - b.upper,
                    upper: c.upper - b.lower,
                },
                Contrast::Ratio => Bounds {
                    lower: if b.upper > 0.0 {
                        c.lower / b.upper
                    } else {
                        0.0
                    },
                    upper: if b.lower > 0.0 {
                        c.upper / b.lower
                    } else {
                        f64::INFINITY
                    },
                },
            };
            r.method = if matches!(ev.value, CustomValue::Ratio { .. }) {
                "clopper-pearson-bonferroni"
            } else {
                "order-statistic-bonferroni"
            }
            .to_owned();
            r.interval = bounds.is_finite().then_some(Interval {
                lower: bounds.lower,
                upper: bounds.upper,
            });
            let (verdict, how) = decide(bounds, lower, upper);
            r.verdict = verdict;
            let level = crate::verdict::percent(confidence);
            let bound = |v: f64| {
                if v.is_finite() {
                    show_c(v)
                } else {
                    "unbounded".to_owned()
                }
            };
            r.reason = format!(
                "{subject} is {both}; its one-sided {level} bounds [{}, {}] {how} the limit {cond}.",
                bound(bounds.lower),
                bound(bounds.upper)
            );
        }
    }
    r
}

/// What the result document keeps of one custom metric of one version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomMetricResult {
    /// The metric's name.
    pub name: String,
    /// The provider it came from (`prometheus`).
    pub provider: Provider,
    /// `ratio`, `histogramQuantile` or `value`.
    pub kind: MetricKind,
    /// Its unit, when the spec gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// The queries as sent, by role.
    pub queries: BTreeMap<String, String>,
    /// The value: the fraction, the quantile or the gauge; absent without data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// What came back, as the provider gave it.
    pub evidence: CustomValue,
}

impl CustomMetricResult {
    /// The record of `ev` for the metric `spec`.
    pub fn of(spec: &MetricSpec, ev: &CustomEvidence) -> Self {
        Self {
            name: spec.name.clone(),
            provider: spec.provider(),
            kind: spec.kind(),
            unit: spec.unit.clone(),
            queries: ev.queries.clone(),
            value: observed(spec, &ev.value).filter(|v| v.is_finite()),
            evidence: ev.value.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buckets(pairs: &[(f64, f64)]) -> Vec<CumulativeBucket> {
        pairs
            .iter()
            .map(|&(le, count)| CumulativeBucket { le, count })
            .collect()
    }

    #[test]
    fn bucket_quantile_interpolates_as_prometheus_does() {
        let b = buckets(&[(0.1, 50.0), (0.2, 100.0), (f64::INFINITY, 100.0)]);
        assert_eq!(bucket_quantile(&b, 0.5), Some(0.1));
        let q75 = bucket_quantile(&b, 0.75).unwrap();
        assert!((q75 - 0.15).abs() < 1e-9, "{q75}");
        assert_eq!(
            bucket_quantile(&buckets(&[(f64::INFINITY, 0.0)]), 0.5),
            None
        );
    }

    #[test]
    fn quantile_bounds_are_bucket_edges_around_the_quantile() {
        // 1000 observations: 900 at most 0.1 s, 990 at most 0.2 s, all at most 0.5 s.
        let b = buckets(&[
            (0.1, 900.0),
            (0.2, 990.0),
            (0.5, 1000.0),
            (f64::INFINITY, 1000.0),
        ]);
        let bounds = bucket_quantile_bounds(&b, 0.95, 0.95);
        assert_eq!((bounds.lower, bounds.upper), (0.1, 0.2));
        // Few observations: no upper rank exists, the bound is unbounded.
        let few = buckets(&[(0.1, 3.0), (f64::INFINITY, 3.0)]);
        assert!(bucket_quantile_bounds(&few, 0.95, 0.95).upper.is_infinite());
    }

    fn metric(kind: MetricKind) -> MetricSpec {
        MetricSpec {
            name: "app/m".into(),
            provider: Some(Provider::Prometheus),
            url: "http://p:9090".into(),
            kind: Some(kind),
            query: Some("q".into()),
            numerator: None,
            denominator: None,
            quantile: Some(0.95),
            unit: Some("ms".into()),
            auth: None,
            ca_file: None,
            consecutive_error_limit: 3,
        }
    }

    fn evidence(value: CustomValue) -> CustomEvidence {
        CustomEvidence {
            queries: BTreeMap::new(),
            value,
        }
    }

    #[test]
    fn a_ratio_is_judged_with_the_error_rate_interval() {
        let slo = SloSpec::absolute("app/m", Some(0.01), None);
        let m = metric(MetricKind::Ratio);
        let good = evidence(CustomValue::Ratio {
            numerator: 2.0,
            denominator: 10_000.0,
        });
        let r = judge_absolute(&slo, "v2", &m, Some(&good), 0.95);
        assert_eq!(r.verdict, SloVerdict::Satisfied, "{}", r.reason);
        assert_eq!(r.method, "clopper-pearson");
        assert_eq!(r.metric, "app/m");
        assert!(r.reason.starts_with("app/m of v2"), "{}", r.reason);
        // Few counts: the same fraction is not enough evidence.
        let few = evidence(CustomValue::Ratio {
            numerator: 0.0,
            denominator: 20.0,
        });
        let r = judge_absolute(&slo, "v2", &m, Some(&few), 0.95);
        assert_eq!(r.verdict, SloVerdict::Inconclusive, "{}", r.reason);
    }

    #[test]
    fn no_data_is_neither_satisfied_nor_violated() {
        let slo = SloSpec::absolute("app/m", Some(0.01), None);
        let m = metric(MetricKind::Ratio);
        let none = evidence(CustomValue::NoData {
            reason: "the query gave an empty result".into(),
        });
        let r = judge_absolute(&slo, "v2", &m, Some(&none), 0.95);
        assert_eq!(r.verdict, SloVerdict::NoData);
        assert!(r.reason.contains("empty result"), "{}", r.reason);
        let zero = evidence(CustomValue::Ratio {
            numerator: 0.0,
            denominator: 0.0,
        });
        let r = judge_absolute(&slo, "v2", &m, Some(&zero), 0.95);
        assert_eq!(r.verdict, SloVerdict::NoData, "{}", r.reason);
        let overall = crate::verdict::overall(&[r], crate::spec::InconclusivePolicy::Pass, 0.95);
        assert!(!overall.pass, "{}", overall.reason);
    }

    #[test]
    fn a_gauge_is_judged_on_its_value_and_says_so() {
        let slo = SloSpec::absolute("app/m", Some(100.0), None);
        let m = metric(MetricKind::Value);
        let r = judge_absolute(
            &slo,
            "v2",
            &m,
            Some(&evidence(CustomValue::Value { value: 120.0 })),
            0.95,
        );
        assert_eq!(r.verdict, SloVerdict::Violated);
        assert!(r.interval.is_none());
        assert!(r.reason.contains("no sampling interval"), "{}", r.reason);
    }

    #[test]
    fn a_quantile_is_judged_on_its_bucket_bounds() {
        let slo = SloSpec::absolute("app/m", Some(100.0), None);
        let m = metric(MetricKind::HistogramQuantile);
        let b = buckets(&[(25.0, 900.0), (50.0, 1000.0), (f64::INFINITY, 1000.0)]);
        let ev = evidence(CustomValue::HistogramQuantile { buckets: b });
        let r = judge_absolute(&slo, "v2", &m, Some(&ev), 0.95);
        assert_eq!(r.verdict, SloVerdict::Satisfied, "{}", r.reason);
        assert_eq!(
            r.interval,
            Some(Interval {
                lower: 25.0,
                upper: 50.0
            })
        );
        let tight = SloSpec::absolute("app/m", Some(40.0), None);
        let r = judge_absolute(&tight, "v2", &m, Some(&ev), 0.95);
        assert_eq!(r.verdict, SloVerdict::Inconclusive, "{}", r.reason);
    }

    #[test]
    fn a_ratio_versus_the_baseline_uses_newcombe() {
        let mut slo = SloSpec::absolute("app/m", None, None);
        slo.versus = Some("baseline".into());
        slo.max_increase = Some(Change::Amount(0.01));
        let m = metric(MetricKind::Ratio);
        let ratio = |n: f64| {
            evidence(CustomValue::Ratio {
                numerator: n,
                denominator: 10_000.0,
            })
        };
        let r = judge_relative(
            &slo,
            "v2",
            Some(&ratio(1000.0)),
            "v1",
            Some(&ratio(10.0)),
            &m,
            0.95,
        );
        assert_eq!(r.verdict, SloVerdict::Violated, "{}", r.reason);
        assert_eq!(r.method, "newcombe");
        let r = judge_relative(
            &slo,
            "v2",
            Some(&ratio(10.0)),
            "v1",
            Some(&ratio(10.0)),
            &m,
            0.95,
        );
        assert_eq!(r.verdict, SloVerdict::Satisfied, "{}", r.reason);
    }

    #[test]
    fn queries_render_the_version_and_the_window() {
        let spec = ExperimentSpec::from_yaml(
            "name: x\nversions: [{name: v2, url: 'http://a/', variables: {revision: app-v2}}]\n",
        )
        .unwrap();
        let q = render_query(
            "rate(x{r=\"{{variables.revision}}\",v=\"{{name}}\"}[{{elapsed}}])",
            &spec,
            &spec.versions[0],
            Duration::from_secs(37),
        )
        .unwrap();
        assert_eq!(q, "rate(x{r=\"app-v2\",v=\"v2\"}[37s])");
        assert!(
            render_query(
                "{{variables.nope}}",
                &spec,
                &spec.versions[0],
                Duration::ZERO
            )
            .is_err()
        );
    }

    #[test]
    fn a_canary_whose_candidate_has_no_data_has_no_winner() {
        let spec = ExperimentSpec::from_yaml(
            r#"name: x
strategy: {testingPattern: Canary}
versions:
  - {name: v1, role: baseline}
  - {name: v2}
duration: {intervalSeconds: 1, iterationsPerLoop: 1}
metrics:
  - {name: app/m, provider: prometheus, url: 'http://p', kind: value, query: up}
slos:
  - {metric: app/m, upperLimit: 1}
"#,
        )
        .unwrap();
        let with = |value: CustomValue| Measurement {
            custom: BTreeMap::from([("app/m".to_owned(), evidence(value))]),
            ..Measurement::default()
        };
        let judged = crate::verdict::judge_experiment(
            &spec,
            &[
                with(CustomValue::Value { value: 0.5 }),
                with(CustomValue::NoData {
                    reason: "the query gave an empty result".into(),
                }),
            ],
        );
        let winner = judged.winner.unwrap();
        assert!(!winner.found && !judged.verdict.pass);
        assert!(winner.reason.contains("has no data"), "{}", winner.reason);
        assert!(winner.reason.contains("empty result"), "{}", winner.reason);
    }

    #[test]
    fn elapsed_is_whole_seconds_for_a_promql_range() {
        assert_eq!(elapsed_text(Duration::from_millis(37_400)), "37s");
        assert_eq!(elapsed_text(Duration::from_millis(200)), "1s");
    }
}
