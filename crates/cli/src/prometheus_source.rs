//! The spec's `metrics` from Prometheus as an [`EvidenceSource`]: at the end of each
//! iteration every metric's queries are rendered for every version over the window since
//! the start and sent as instant queries.
//!
//! A provider error is not evidence: the metric is `noData` for that version in that look,
//! after one retry with backoff. Errors are counted per metric and version; when a metric
//! reaches its `consecutiveErrorLimit` in a row the run fails with a reason naming the metric
//! and the last error. An answer resets the count.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use slogate_core::custom::{CumulativeBucket, CustomEvidence, CustomValue, MetricKind, MetricSpec};
use slogate_core::measure::Measurement;
use slogate_core::spec::{ExperimentSpec, VersionSpec};
use slogate_prometheus::{Client, buckets, single_value};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::parts::{EvidenceFuture, EvidenceSource, SourceProgress};

/// Longest a query may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);
/// The first wait before a retry; it doubles with each consecutive error.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest wait before a retry.
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// One metric with its client.
struct Queried {
    spec: MetricSpec,
    client: Client,
    /// Consecutive errors per version, and the last one.
    errors: BTreeMap<String, (u32, String)>,
}

/// The spec's Prometheus metrics as an evidence source.
pub struct PrometheusSource {
    spec: ExperimentSpec,
    metrics: Vec<Queried>,
    /// When the first iteration began: every query covers the window since.
    start: Option<Instant>,
    /// The current iteration's length.
    interval: Duration,
}

impl PrometheusSource {
    /// A source for the metrics of a validated `spec`. `Err` is the reason the run fails (a
    /// CA file that cannot be read …).
    pub fn new(spec: &ExperimentSpec) -> Result<Self, String> {
        let mut metrics = Vec::new();
        for m in &spec.metrics {
            let client = Client::new(
                &m.url,
                m.ca_file.as_deref(),
                m.auth.as_ref().map(|a| a.bearer_token_file.clone()),
                QUERY_TIMEOUT,
            )
            .map_err(|err| format!("metric {}: {}", m.name, error_chain(&err)))?;
            metrics.push(Queried {
                spec: m.clone(),
                client,
                errors: BTreeMap::new(),
            });
        }
        Ok(Self {
            spec: spec.clone(),
            metrics,
            start: None,
            interval: Duration::ZERO,
        })
    }
}

/// An error with its causes: `cannot query …: error sending request: connection refused`.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

/// Sends one metric's queries for one version: the evidence, or the reason there is none.
async fn query_once(
    m: &Queried,
    spec: &ExperimentSpec,
    version: &VersionSpec,
    elapsed: Duration,
    queries: &mut BTreeMap<String, String>,
) -> Result<CustomValue, String> {
    let at = SystemTime::now();
    let mut values = Vec::new();
    for (role, template) in m.spec.templates() {
        let query = slogate_core::custom::render_query(template, spec, version, elapsed)
            .map_err(|err| format!("{role}: {err}"))?;
        queries.insert(role.to_owned(), query.clone());
        let samples = m
            .client
            .instant(&query, at)
            .await
            .map_err(|err| format!("{role}: {}", error_chain(&err)))?;
        values.push(samples);
    }
    let named =
        |role: &str, err: slogate_prometheus::Error| format!("{role}: {}", error_chain(&err));
    Ok(match m.spec.kind() {
        MetricKind::Ratio => CustomValue::Ratio {
            numerator: single_value(&values[0]).map_err(|e| named("numerator", e))?,
            denominator: single_value(&values[1]).map_err(|e| named("denominator", e))?,
        },
        MetricKind::Value => CustomValue::Value {
            value: single_value(&values[0]).map_err(|e| named("query", e))?,
        },
        MetricKind::HistogramQuantile => CustomValue::HistogramQuantile {
            buckets: buckets(&values[0])
                .map_err(|e| named("query", e))?
                .into_iter()
                .map(|(le, count)| CumulativeBucket { le, count })
                .collect(),
        },
    })
}

impl EvidenceSource for PrometheusSource {
    fn describe(&self) -> String {
        let names: Vec<&str> = self.metrics.iter().map(|m| m.spec.name.as_str()).collect();
        format!("Prometheus metrics {}", names.join(", "))
    }

    fn next_iteration(&mut self, interval: Duration, _first: bool) {
        self.interval = interval;
    }

    fn collect(
        &mut self,
        _progress: watch::Sender<SourceProgress>,
        stop: CancellationToken,
    ) -> EvidenceFuture<'_> {
        Box::pin(async move {
            let began = Instant::now();
            let start = *self.start.get_or_insert(began);
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = stop.cancelled() => {}
            }
            let elapsed = start.elapsed();
            let spec = &self.spec;
            let mut out: BTreeMap<String, Measurement> = BTreeMap::new();
            for m in &mut self.metrics {
                for version in &spec.versions {
                    let mut queries = BTreeMap::new();
                    let mut retried = false;
                    let value = loop {
                        match query_once(m, spec, version, elapsed, &mut queries).await {
                            Ok(value) => {
                                m.errors.remove(&version.name);
                                break value;
                            }
                            Err(reason) => {
                                let entry = m.errors.entry(version.name.clone()).or_default();
                                entry.0 += 1;
                                entry.1 = reason.clone();
                                let count = entry.0;
                                tracing::warn!(metric = %m.spec.name, version = %version.name, count, %reason, "no data from Prometheus");
                                if count >= m.spec.consecutive_error_limit {
                                    return Err(format!(
                                        "metric {} of version {}: {count} consecutive errors from Prometheus at {} (consecutiveErrorLimit {}); the last: {reason}",
                                        m.spec.name,
                                        version.name,
                                        m.client.endpoint(),
                                        m.spec.consecutive_error_limit
                                    ));
                                }
                                if retried || stop.is_cancelled() {
                                    eprintln!(
                                        "slogate: {}: {} of {}: no data ({count} of {} errors in a row): {reason}",
                                        spec.name,
                                        m.spec.name,
                                        version.name,
                                        m.spec.consecutive_error_limit
                                    );
                                    break CustomValue::NoData { reason };
                                }
                                retried = true;
                                let backoff = FIRST_BACKOFF
                                    .saturating_mul(1 << (count - 1).min(8))
                                    .min(MAX_BACKOFF);
                                tokio::select! {
                                    _ = tokio::time::sleep(backoff) => {}
                                    _ = stop.cancelled() => {}
                                }
                            }
                        }
                    };
                    let entry = out.entry(version.name.clone()).or_default();
                    if version.url.is_empty() {
                        // No load measures this version's window: the metrics' is its.
                        entry.elapsed = began.elapsed();
                    }
                    entry
                        .custom
                        .insert(m.spec.name.clone(), CustomEvidence { queries, value });
                }
            }
            Ok(out.into_iter().collect())
        })
    }
}
