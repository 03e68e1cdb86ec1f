//! Load from several pods: the spec's `parallelism` section, the partial evidence each load
//! pod publishes ([`PodReport`]), and the exact merge of those partials into one
//! measurement per version ([`merge_reports`]), with a row per pod for the result document
//! ([`LoadPod`]).
//!
//! Every pod sends its share of the load ([`crate::spec::LoadSettings::for_pod`]) on one
//! timetable, so the open model's schedule stays one schedule; histograms add bucket by
//! bucket, so the merged percentiles are those of one histogram fed every request.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::measure::{EvidenceError, Measurement, MeasurementData};

/// The most load pods an experiment may have.
pub const MAX_PODS: u32 = 64;

/// The spec's `parallelism` section: how many pods send the load, and what a partial that
/// never arrives means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParallelismSpec {
    /// Load pods, 1 to [`MAX_PODS`]; each sends 1/pods of the rate, of the connections and of
    /// the requests. Default 1.
    #[serde(default = "default_pods")]
    pub pods: u32,
    /// What the experiment does when some pods never report.
    #[serde(default)]
    pub on_missing: OnMissing,
    /// How long index 0 waits for the others: to be ready before the start, and to report
    /// after its own load ended. Default 2m.
    #[serde(
        default = "default_report_timeout",
        with = "crate::text_duration::duration"
    )]
    pub report_timeout: Duration,
}

impl Default for ParallelismSpec {
    fn default() -> Self {
        Self {
            pods: default_pods(),
            on_missing: OnMissing::default(),
            report_timeout: default_report_timeout(),
        }
    }
}

fn default_pods() -> u32 {
    1
}

/// The default time index 0 waits for the other pods, 2 minutes.
pub fn default_report_timeout() -> Duration {
    Duration::from_secs(120)
}

/// What a missing partial means.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OnMissing {
    /// The experiment fails with `k of N load pods reported` (the default: less load than
    /// planned was sent).
    #[default]
    Fail,
    /// The SLOs are judged on the partials that arrived, and the verdict says so.
    JudgeWhatArrived,
}

/// Where a load pod is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PodState {
    /// Ready to send its share at the agreed start time.
    Ready,
    /// Its load is done; its evidence is in the partial.
    Done,
    /// Its load failed (see the reason).
    Failed,
    /// Result rows only: the pod never reported (it failed, was evicted or came late).
    Missing,
}

/// What one load pod publishes in its partial ConfigMap: its state, the agreed start time
/// (index 0 writes it), and at the end its evidence per version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodReport {
    /// The pod's completion index, 0 to pods − 1.
    pub index: u32,
    /// The pod's name.
    pub pod: String,
    /// The pod's uid: a retried pod of the same index has another one, and overwrites the
    /// partial (one partial per index, so nothing is counted twice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Where the pod is.
    pub state: PodState,
    /// Index 0 only: when every pod starts its load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<Timestamp>,
    /// Index 0 only, with `startAt`: the indices that take part (ready before the start). A
    /// pod not among them sends no load.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub participants: Vec<u32>,
    /// Why the pod failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// State `done`: the evidence per version name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub versions: BTreeMap<String, MeasurementData>,
}

impl PodReport {
    /// A pod that is ready to start.
    pub fn ready(index: u32, pod: impl Into<String>, uid: Option<String>) -> Self {
        Self {
            index,
            pod: pod.into(),
            uid,
            state: PodState::Ready,
            start_at: None,
            participants: Vec::new(),
            reason: None,
            versions: BTreeMap::new(),
        }
    }

    /// The same pod, done, with what it measured per version.
    pub fn done(mut self, measured: &[(String, Measurement)]) -> Self {
        self.state = PodState::Done;
        self.reason = None;
        self.versions = measured
            .iter()
            .map(|(name, m)| (name.clone(), m.to_data()))
            .collect();
        self
    }

    /// The same pod, failed, and why.
    pub fn failed(mut self, reason: impl Into<String>) -> Self {
        self.state = PodState::Failed;
        self.reason = Some(reason.into());
        self.versions.clear();
        self
    }

    /// Its evidence per version, read back from the encoded histograms.
    pub fn measurements(&self) -> Result<Vec<(String, Measurement)>, EvidenceError> {
        self.versions
            .iter()
            .map(|(name, data)| Ok((name.clone(), Measurement::from_data(data)?)))
            .collect()
    }

    /// The pod's row in the result document (its requests and achieved rate over every
    /// version it loaded).
    pub fn row(&self) -> LoadPod {
        let requests: u64 = self.versions.values().map(|d| d.requests).sum();
        let elapsed = self
            .versions
            .values()
            .map(|d| d.elapsed_seconds)
            .fold(0.0, f64::max);
        let achieved_rate = if elapsed > 0.0 && elapsed.is_finite() {
            requests as f64 / elapsed
        } else {
            0.0
        };
        LoadPod {
            index: self.index,
            pod: self.pod.clone(),
            requests,
            achieved_rate,
            state: self.state,
            reason: self.reason.clone(),
        }
    }
}

/// One load pod's row in the result document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadPod {
    /// The pod's completion index.
    pub index: u32,
    /// The pod's name; empty when it never reported.
    pub pod: String,
    /// Measured requests it sent, every version together.
    pub requests: u64,
    /// Its achieved rate, requests per second.
    pub achieved_rate: f64,
    /// `done` when its evidence was merged; `failed` or `missing` when not.
    pub state: PodState,
    /// Why it failed or is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What merging the partials gave: the evidence per version, a row per pod, and the
/// indices that did not report.
#[derive(Debug, Clone)]
pub struct Merged {
    /// Per version name, the exact sum of every reporting pod's evidence.
    pub measurements: Vec<(String, Measurement)>,
    /// One row per pod index, in order.
    pub pods: Vec<LoadPod>,
    /// The indices whose evidence is not in the sum.
    pub missing: Vec<u32>,
}

impl Merged {
    /// How many pods reported.
    pub fn reported(&self) -> usize {
        self.pods.len() - self.missing.len()
    }

    /// Why each missing index is missing: `index 2: never reported; index 3: failed: ...`.
    pub fn missing_details(&self) -> String {
        let why: Vec<String> = self
            .pods
            .iter()
            .filter(|p| self.missing.contains(&p.index))
            .map(|p| {
                format!(
                    "index {}: {}",
                    p.index,
                    p.reason.as_deref().unwrap_or("no report")
                )
            })
            .collect();
        why.join("; ")
    }

    /// `2 of 3 load pods reported (index 2: never reported)`: the reason the experiment
    /// fails when a partial is missing.
    pub fn missing_reason(&self) -> String {
        format!(
            "{} of {} load pods reported ({})",
            self.reported(),
            self.pods.len(),
            self.missing_details()
        )
    }

    /// `judged on 2 of 3 load pods (index 2: never reported)`: what the verdict says when
    /// the SLOs were judged on the partials that arrived.
    pub fn judged_on(&self) -> String {
        format!(
            "judged on {} of {} load pods ({})",
            self.reported(),
            self.pods.len(),
            self.missing_details()
        )
    }
}

/// Merges the partials of `pods` load pods exactly ([`Measurement::merge`]): `reports` holds
/// the last report of each index that published one (index 0's own included); an index
/// without a `done` report is missing, with the reason given in `absent` or the report's
/// own. Versions come out in the order of `versions`.
pub fn merge_reports(
    pods: u32,
    versions: &[String],
    reports: &BTreeMap<u32, PodReport>,
    absent: &BTreeMap<u32, String>,
) -> Result<Merged, EvidenceError> {
    let mut sums: BTreeMap<String, Measurement> = BTreeMap::new();
    let mut rows = Vec::with_capacity(pods as usize);
    let mut missing = Vec::new();
    for index in 0..pods {
        match reports.get(&index) {
            Some(report) if report.state == PodState::Done => {
                for (name, m) in report.measurements()? {
                    match sums.get_mut(&name) {
                        Some(sum) => sum.merge(&m)?,
                        None => {
                            sums.insert(name, m);
                        }
                    }
                }
                rows.push(report.row());
            }
            other => {
                missing.push(index);
                let reason = absent.get(&index).cloned().or_else(|| match other {
                    Some(r) if r.state == PodState::Failed => {
                        Some(format!("failed: {}", r.reason.as_deref().unwrap_or("")))
                    }
                    Some(_) => Some("its load did not end in time".to_owned()),
                    None => Some("never reported".to_owned()),
                });
                rows.push(LoadPod {
                    index,
                    pod: other.map(|r| r.pod.clone()).unwrap_or_default(),
                    requests: 0,
                    achieved_rate: 0.0,
                    state: match other {
                        Some(r) if r.state == PodState::Failed => PodState::Failed,
                        _ => PodState::Missing,
                    },
                    reason,
                });
            }
        }
    }
    let measurements = versions
        .iter()
        .map(|name| (name.clone(), sums.remove(name).unwrap_or_default()))
        .collect();
    Ok(Merged {
        measurements,
        pods: rows,
        missing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::{latencies, record_latency};

    fn measured(values: &[u64], secs: f64) -> Measurement {
        let mut m = Measurement::default();
        for &v in values {
            record_latency(&mut m.latency, v);
        }
        m.requests = values.len() as u64;
        m.status_counts.insert(200, m.requests);
        m.elapsed = Duration::from_secs_f64(secs);
        m
    }

    fn report(index: u32, values: &[u64]) -> PodReport {
        PodReport::ready(index, format!("exp-1-{index}-abcde"), None)
            .done(&[("candidate".to_owned(), measured(values, 2.0))])
    }

    #[test]
    fn merged_partials_of_n_pods_equal_one_histogram_fed_every_sample() {
        let samples: Vec<Vec<u64>> = (0..5).map(|i| latencies(11 + i, 4000 + 777 * i)).collect();
        // The trip through the JSON a partial ConfigMap holds.
        let reports: BTreeMap<u32, PodReport> = samples
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let json = serde_json::to_string(&report(i as u32, s)).unwrap();
                (i as u32, serde_json::from_str(&json).unwrap())
            })
            .collect();
        let merged =
            merge_reports(5, &["candidate".to_owned()], &reports, &BTreeMap::new()).unwrap();
        let all: Vec<u64> = samples.iter().flatten().copied().collect();
        let one = measured(&all, 2.0);
        let (_, m) = &merged.measurements[0];
        assert_eq!(m.requests, all.len() as u64);
        assert_eq!(m.status_counts[&200], all.len() as u64);
        for q in [0.5, 0.95, 0.99, 0.999, 1.0] {
            assert_eq!(
                m.latency.value_at_quantile(q),
                one.latency.value_at_quantile(q),
                "q = {q}"
            );
        }
        assert_eq!(m.latency, one.latency);
        assert!(merged.missing.is_empty());
        let rows: Vec<u64> = merged.pods.iter().map(|p| p.requests).collect();
        assert_eq!(
            rows,
            samples.iter().map(|s| s.len() as u64).collect::<Vec<_>>()
        );
        assert_eq!(merged.pods[1].achieved_rate, samples[1].len() as f64 / 2.0);
    }

    #[test]
    fn a_missing_and_a_failed_pod_are_named_and_not_counted() {
        let mut reports = BTreeMap::new();
        reports.insert(0, report(0, &latencies(1, 100)));
        reports.insert(
            1,
            PodReport::ready(1, "exp-1-1-x", None).failed("connect refused"),
        );
        let absent = BTreeMap::from([(3, "never ready before the start".to_owned())]);
        let merged = merge_reports(4, &["candidate".to_owned()], &reports, &absent).unwrap();
        assert_eq!(merged.missing, [1, 2, 3]);
        assert_eq!(merged.measurements[0].1.requests, 100);
        assert_eq!(
            merged.missing_reason(),
            "1 of 4 load pods reported (index 1: failed: connect refused; index 2: never reported; index 3: never ready before the start)"
        );
        assert_eq!(merged.pods[1].state, PodState::Failed);
        assert_eq!(merged.pods[2].state, PodState::Missing);
    }

    #[test]
    fn a_retried_pod_replaces_its_index_and_is_counted_once() {
        let mut reports = BTreeMap::new();
        reports.insert(0, report(0, &latencies(1, 100)));
        reports.insert(1, report(1, &latencies(2, 50)));
        // The retry of index 1 publishes under the same key: the map holds one report.
        reports.insert(1, report(1, &latencies(3, 70)));
        let merged =
            merge_reports(2, &["candidate".to_owned()], &reports, &BTreeMap::new()).unwrap();
        assert_eq!(merged.measurements[0].1.requests, 170);
    }

    /// The worst case the README's arithmetic rests on: every bucket of the latency and the
    /// service-time histograms holding a count (1 µs to an hour at 3 digits), in a partial of
    /// two versions, still fits a ConfigMap's 1 MiB with room to spare.
    #[test]
    fn a_partial_with_every_bucket_filled_fits_a_configmap() {
        let mut full = Measurement::default();
        let mut v = 1u64;
        while v <= crate::measure::MAX_LATENCY_US {
            full.latency.record_n(v, 10_000).unwrap();
            v = full.latency.next_non_equivalent(v);
        }
        full.service_time = Some(full.latency.clone());
        full.requests = full.latency.len();
        let one = crate::measure::encode_histogram(&full.latency).len();
        let report = PodReport::ready(0, "p", None).done(&[
            ("baseline".to_owned(), full.clone()),
            ("candidate".to_owned(), full),
        ]);
        let bytes = serde_json::to_string(&report).unwrap().len();
        eprintln!(
            "one full histogram: {one} bytes of base64; a full 2-version partial: {bytes} bytes"
        );
        assert!(bytes < 1024 * 1024 / 2, "{bytes}");
    }
}
