//! Building the result document from the spec, each version's evidence and the verdict
//! engine's judgement. The document itself ([`crate::result`]) is plain data: nothing in it
//! measures or judges.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use jiff::Timestamp;

use crate::measure::Measurement;
use crate::metrics::{self, MAX_HISTOGRAM_BUCKETS, Metric, Protocol, us_to_ms};
use crate::result::{
    API_VERSION, BoundsKind, ExperimentResult, HistogramBucket, Judged, Judgement, KIND, Progress,
    SaturationResult, ServiceTime, Stage, VersionResult, finite_or_zero,
};
use crate::spec::{ExperimentSpec, TestingPattern, VersionSpec};

impl Judgement {
    /// The judgement this version of slogate makes.
    pub fn current() -> Self {
        Self {
            bounds: BoundsKind::OneSided,
            decision_probability: crate::verdict::DECISION_PROBABILITY,
        }
    }
}

/// Building the document as a run goes: [`ExperimentResult::running`] at the start,
/// [`ExperimentResult::record_version`] as versions are measured, then
/// [`ExperimentResult::complete`] with the judgement.
impl ExperimentResult {
    /// The document of a run that starts now: stage `Running`, nothing measured yet.
    pub fn running(spec: &ExperimentSpec, start: Timestamp) -> Self {
        Self {
            api_version: API_VERSION.to_owned(),
            kind: KIND.to_owned(),
            name: spec.name.clone(),
            namespace: spec.namespace.clone(),
            start_time: start,
            end_time: None,
            stage: Stage::Running,
            progress: Progress {
                requests_done: 0,
                requests_planned: spec.planned_requests(),
                elapsed_seconds: 0.0,
                duration_planned_seconds: spec.planned_seconds(),
                versions: BTreeMap::new(),
            },
            failure: None,
            confidence: spec.confidence,
            versions: Vec::new(),
            slos: Vec::new(),
            verdict: None,
            promotion: None,
            updated_at: None,
            publish_interval_seconds: None,
            judgement: Some(Judgement::current()),
            testing_pattern: (spec.testing_pattern() == TestingPattern::Canary)
                .then_some(TestingPattern::Canary),
            winner: None,
            strategy: None,
            iterations: Vec::new(),
            load_pods: Vec::new(),
            actions: Vec::new(),
        }
    }

    /// Adds (or replaces) one version's metrics and histogram. The metrics include the
    /// percentiles the spec's SLOs name.
    pub fn record_version(
        &mut self,
        spec: &ExperimentSpec,
        version: &VersionSpec,
        m: &Measurement,
    ) {
        let extra: Vec<Metric> = spec
            .slos
            .iter()
            .filter_map(|s| s.metric.parse().ok())
            .collect();
        let elapsed = m.elapsed.as_secs_f64();
        let achieved_qps = if elapsed > 0.0 {
            finite_or_zero(m.requests as f64 / elapsed)
        } else {
            0.0
        };
        let entry = VersionResult {
            name: version.name.clone(),
            url: version.url.clone(),
            role: Some(version.role),
            variables: version.variables.clone(),
            protocol: version.protocol(),
            metrics: metrics::version_metrics(m, version.protocol(), &extra),
            histogram: histogram_buckets(&m.latency),
            status_counts: m
                .status_counts
                .iter()
                .map(|(status, count)| {
                    let key = match version.protocol() {
                        Protocol::Http => status.to_string(),
                        Protocol::Grpc => crate::grpc::status_label(*status),
                    };
                    (key, *count)
                })
                .collect(),
            error_kinds: m.error_kinds.clone(),
            achieved_qps,
            target_qps: m.target_qps.filter(|q| q.is_finite()),
            service_time: m.service_time.as_ref().map(|h| {
                let service = Measurement {
                    latency: h.clone(),
                    ..Measurement::default()
                };
                let mut latency_metrics =
                    metrics::version_metrics(&service, version.protocol(), &extra);
                latency_metrics.retain(|name, _| {
                    name.parse::<Metric>()
                        .is_ok_and(|metric| metric.is_latency())
                });
                ServiceTime {
                    metrics: latency_metrics,
                    histogram: histogram_buckets(h),
                }
            }),
            resends: m.resends,
            peak_connections: (m.target_qps.is_some() && m.peak_connections > 0)
                .then_some(m.peak_connections),
            saturation: m.saturation.map(|s| SaturationResult {
                connections_needed: s.connections_needed,
                max_connections: s.max_connections,
                late_requests: s.late_requests,
                reason: s.describe(),
            }),
            custom_metrics: spec
                .metrics
                .iter()
                .filter_map(|c| {
                    m.custom
                        .get(&c.name)
                        .map(|ev| crate::custom::CustomMetricResult::of(c, ev))
                })
                .collect(),
        };
        match self.versions.iter_mut().find(|v| v.name == version.name) {
            Some(existing) => *existing = entry,
            None => self.versions.push(entry),
        }
    }

    /// Finishes the run: records every version and takes the verdict engine's judgement
    /// ([`crate::verdict::judge_experiment`]): every SLO, the overall verdict and, in a
    /// Canary experiment, the winner; stage `Completed`.
    ///
    /// `measurements` are in the order of `spec.versions`.
    pub fn complete(
        &mut self,
        spec: &ExperimentSpec,
        measurements: &[Measurement],
        judged: Judged,
        end: Timestamp,
    ) {
        for (version, m) in spec.versions.iter().zip(measurements) {
            self.record_version(spec, version, m);
        }
        self.progress.versions = spec
            .versions
            .iter()
            .zip(measurements)
            .map(|(v, m)| (v.name.clone(), m.requests))
            .collect();
        let done: u64 = measurements.iter().map(|m| m.requests).sum();
        // The versions were loaded at the same time: the run took as long as the longest.
        let elapsed: Duration = measurements
            .iter()
            .map(|m| m.elapsed)
            .max()
            .unwrap_or_default();
        self.set_progress(done, elapsed);
        self.slos = judged.slos;
        self.verdict = Some(judged.verdict);
        self.winner = judged.winner;
        self.stage = Stage::Completed;
        self.failure = None;
        self.end_time = Some(end);
    }
}

/// The latency histogram (µs) as at most [`MAX_HISTOGRAM_BUCKETS`] log-spaced buckets in ms,
/// from the fastest to the slowest request. Empty when nothing was recorded.
pub fn histogram_buckets(hist: &Histogram<u64>) -> Vec<HistogramBucket> {
    if hist.is_empty() {
        return Vec::new();
    }
    let low_us = hist.lowest_equivalent(hist.min()).max(1);
    let high_us = hist.highest_equivalent(hist.max()) + 1;
    // Bucket edges on a geometric grid, rounded to whole µs; rounding can merge the
    // narrowest edges, so duplicates are dropped.
    let ratio = high_us as f64 / low_us as f64;
    let mut edges: Vec<u64> = (0..=MAX_HISTOGRAM_BUCKETS)
        .map(|i| {
            let f = i as f64 / MAX_HISTOGRAM_BUCKETS as f64;
            (low_us as f64 * ratio.powf(f)).round() as u64
        })
        .collect();
    edges[0] = low_us;
    edges[MAX_HISTOGRAM_BUCKETS] = high_us;
    edges.dedup();
    let last = edges.len() - 2;
    let mut counts = vec![0u64; last + 1];
    for item in hist.iter_recorded() {
        let v = hist.median_equivalent(item.value_iterated_to());
        let slot = edges.partition_point(|&e| e <= v).saturating_sub(1);
        counts[slot.min(last)] += item.count_at_value();
    }
    edges
        .windows(2)
        .zip(counts)
        .map(|(w, count)| HistogramBucket {
            lower_ms: us_to_ms(w[0] as f64),
            upper_ms: us_to_ms(w[1] as f64),
            count,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::new_latency_histogram;

    #[test]
    fn histogram_is_bounded_and_complete() {
        let mut h = new_latency_histogram();
        for i in 1..=100_000u64 {
            h.record(i * 37 % 2_000_000 + 100).unwrap();
        }
        let buckets = histogram_buckets(&h);
        assert!(buckets.len() <= MAX_HISTOGRAM_BUCKETS);
        assert_eq!(buckets.iter().map(|b| b.count).sum::<u64>(), 100_000);
        for w in buckets.windows(2) {
            assert_eq!(w[0].upper_ms, w[1].lower_ms);
        }
        assert!(buckets[0].lower_ms <= h.min() as f64 / 1000.0);
        assert!(buckets.last().unwrap().upper_ms >= h.max() as f64 / 1000.0);

        let mut one = new_latency_histogram();
        one.record(5000).unwrap();
        let b = histogram_buckets(&one);
        assert_eq!(b.iter().map(|b| b.count).sum::<u64>(), 1);
        assert!(histogram_buckets(&new_latency_histogram()).is_empty());
    }
}
