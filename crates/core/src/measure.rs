//! What the load engine records for one version: the raw material of every metric.
//!
//! A [`Measurement`] is mergeable evidence: [`Measurement::merge`] adds another one exactly
//! (histograms bucket by bucket, counts added), so evidence from several load pods or
//! iterations sums to what one recorder fed every request would hold. It serializes as
//! [`MeasurementData`], its histograms in the HdrHistogram V2 encoding (base64), the
//! format every HdrHistogram implementation reads.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2Serializer};
use serde::{Deserialize, Serialize};

/// Highest latency the histograms can hold, in microseconds (one hour).
pub const MAX_LATENCY_US: u64 = 3_600_000_000;
/// Significant decimal digits kept by every latency histogram.
pub const SIGNIFICANT_DIGITS: u8 = 3;

/// Creates an empty latency histogram in microseconds with slogate's resolution.
pub fn new_latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, SIGNIFICANT_DIGITS)
        .expect("static histogram bounds are valid")
}

/// Records a latency in µs into a histogram made by [`new_latency_histogram`]; returns
/// `false` when it exceeds [`MAX_LATENCY_US`], which the histogram then holds at its ceiling
/// (the caller counts it: such a latency is not measured, only known to be longer).
pub fn record_latency(hist: &mut Histogram<u64>, us: u64) -> bool {
    hist.saturating_record(us);
    us <= MAX_LATENCY_US
}

/// Why a request did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// The TCP connection was refused (nothing listening).
    ConnectRefused,
    /// Any other failure to open a connection (DNS, unreachable, connect timeout).
    Connect,
    /// The peer reset the connection (TCP RST, an HTTP/2 stream reset) or closed it within a
    /// response, before a full response arrived.
    Reset,
    /// The server closed the connection after the request went out and before any byte of a
    /// response (a FIN on HTTP/1.1, GOAWAY on HTTP/2), and the connection had not sat idle
    /// long enough for that to be a keep-alive timeout: the request was dropped.
    ClosedWithoutResponse,
    /// No full response within the per-request timeout.
    Timeout,
    /// The TLS handshake failed.
    Tls,
    /// The response status is inside `errorRanges`.
    Status,
    /// Malformed HTTP or another protocol-level failure.
    Protocol,
}

/// Everything measured for one version during one load run (warmup excluded).
///
/// Latency histograms are in microseconds. Memory is flat whatever the run length.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// Latency of every request that got a response or timed out. In the open model it is
    /// measured from the scheduled send time, so coordinated omission is corrected.
    pub latency: Histogram<u64>,
    /// Open model only: latency from the actual send time (the uncorrected service time).
    pub service_time: Option<Histogram<u64>>,
    /// Requests finished, successful or not.
    pub requests: u64,
    /// Requests that count as errors (status in `errorRanges` or no status at all).
    pub errors: u64,
    /// How many responses carried each status code.
    pub status_counts: BTreeMap<u16, u64>,
    /// How many errors of each kind.
    pub error_kinds: BTreeMap<ErrorKind, u64>,
    /// Response bytes received (headers excluded).
    pub bytes_received: u64,
    /// Request body bytes sent.
    pub bytes_sent: u64,
    /// Wall time of the measured part of the run.
    pub elapsed: Duration,
    /// Open model only: the target total rate in requests per second.
    pub target_qps: Option<f64>,
    /// Latencies above [`MAX_LATENCY_US`], recorded at the ceiling (saturating count). Any
    /// makes the latency SLOs inconclusive: the histogram understates them.
    pub latency_out_of_range: u64,
    /// Requests sent a second time, on a new connection, because the server had closed
    /// their kept-alive connection after it sat idle (a keep-alive timeout race).
    pub resends: u64,
    /// The most connections open at once (the open model opens more when it falls behind).
    pub peak_connections: u32,
    /// Open model only: set when the load generator could not keep to the planned rate
    /// because every connection it may open was busy.
    pub saturation: Option<Saturation>,
    /// Custom metrics by name (from a metrics provider such as Prometheus). Each covers
    /// the whole window since the start, so a newer one replaces an older one.
    pub custom: BTreeMap<String, crate::custom::CustomEvidence>,
}

/// The load generator itself fell behind the open model's timetable: every one of the
/// `max_connections` it may open was busy, so requests waited inside it for a connection and
/// the corrected latency holds that wait. The service was not measured at the planned rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Saturation {
    /// Connections the planned rate needs at the measured mean service time (Little's law:
    /// rate × mean service time), rounded up.
    pub connections_needed: u64,
    /// Connections the run was allowed to open.
    pub max_connections: u32,
    /// Measured requests that waited for a free connection while all were open.
    pub late_requests: u64,
}

impl Saturation {
    /// The sentence reports give: `load generator saturated: 14 connections needed at the
    /// measured service time, 8 allowed (maxConnections)`.
    pub fn describe(&self) -> String {
        format!(
            "load generator saturated: {} connections needed at the measured service time, {} allowed (maxConnections)",
            self.connections_needed, self.max_connections
        )
    }
}

impl Default for Measurement {
    fn default() -> Self {
        Self {
            latency: new_latency_histogram(),
            service_time: None,
            requests: 0,
            errors: 0,
            status_counts: BTreeMap::new(),
            error_kinds: BTreeMap::new(),
            bytes_received: 0,
            bytes_sent: 0,
            elapsed: Duration::ZERO,
            target_qps: None,
            latency_out_of_range: 0,
            resends: 0,
            peak_connections: 0,
            saturation: None,
            custom: BTreeMap::new(),
        }
    }
}

/// Why two measurements cannot be merged, or a serialized one cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    /// The histograms have different bounds or precision: adding them would not be exact.
    #[error("the latency histograms have different bounds or precision")]
    Incompatible(#[source] hdrhistogram::AdditionError),
    /// One has a service-time histogram (open model) and the other none (closed model).
    #[error("one measurement is of the open model and the other of the closed model")]
    MixedModels,
    /// A histogram is not base64.
    #[error("a histogram is not base64")]
    Base64(#[source] base64::DecodeError),
    /// A histogram is not in the HdrHistogram V2 encoding.
    #[error("a histogram is not in the HdrHistogram V2 encoding")]
    Encoding(#[source] hdrhistogram::serialization::DeserializeError),
}

impl Measurement {
    /// Adds `other` to this measurement exactly: histograms bucket by bucket, counts summed,
    /// the longer elapsed time and the larger peak kept (the evidence of several recorders
    /// that ran at the same time). Rates add up. A saturation of either is kept (the larger
    /// need), since a merged latency holds its wait too.
    pub fn merge(&mut self, other: &Measurement) -> Result<(), EvidenceError> {
        self.combine(other)?;
        self.elapsed = self.elapsed.max(other.elapsed);
        self.target_qps = match (self.target_qps, other.target_qps) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        self.peak_connections += other.peak_connections;
        self.saturation = match (self.saturation, other.saturation) {
            (Some(a), Some(b)) => Some(Saturation {
                connections_needed: a.connections_needed.max(b.connections_needed),
                max_connections: a.max_connections + b.max_connections,
                late_requests: a.late_requests + b.late_requests,
            }),
            (a, b) => a.or(b),
        };
        Ok(())
    }

    /// Adds the evidence of `later`, measured by the same load right after this one (the
    /// next iteration of the loop): counts and histograms add up, so do the seconds; the
    /// rate and the connections are the same load's.
    pub fn append(&mut self, later: &Measurement) -> Result<(), EvidenceError> {
        self.combine(later)?;
        self.elapsed += later.elapsed;
        self.target_qps = self.target_qps.or(later.target_qps);
        self.peak_connections = self.peak_connections.max(later.peak_connections);
        self.saturation = match (self.saturation, later.saturation) {
            (Some(a), Some(b)) => Some(Saturation {
                connections_needed: a.connections_needed.max(b.connections_needed),
                max_connections: a.max_connections.max(b.max_connections),
                late_requests: a.late_requests + b.late_requests,
            }),
            (a, b) => a.or(b),
        };
        Ok(())
    }

    /// What [`Measurement::merge`] and [`Measurement::append`] share: histograms and counts.
    fn combine(&mut self, other: &Measurement) -> Result<(), EvidenceError> {
        let service_time = match (&self.service_time, &other.service_time) {
            (Some(a), Some(b)) => {
                let mut sum = a.clone();
                sum.add(b).map_err(EvidenceError::Incompatible)?;
                Some(sum)
            }
            (None, None) => None,
            _ if self.requests == 0 && self.service_time.is_none() => other.service_time.clone(),
            _ if other.requests == 0 => self.service_time.clone(),
            _ => return Err(EvidenceError::MixedModels),
        };
        let mut latency = self.latency.clone();
        latency
            .add(&other.latency)
            .map_err(EvidenceError::Incompatible)?;
        self.latency = latency;
        self.service_time = service_time;
        self.requests += other.requests;
        self.errors += other.errors;
        for (status, n) in &other.status_counts {
            *self.status_counts.entry(*status).or_default() += n;
        }
        for (kind, n) in &other.error_kinds {
            *self.error_kinds.entry(*kind).or_default() += n;
        }
        self.bytes_received += other.bytes_received;
        self.bytes_sent += other.bytes_sent;
        self.latency_out_of_range += other.latency_out_of_range;
        self.resends += other.resends;
        for (name, ev) in &other.custom {
            self.custom.insert(name.clone(), ev.clone());
        }
        Ok(())
    }

    /// The measurement as plain, serializable data.
    pub fn to_data(&self) -> MeasurementData {
        MeasurementData {
            latency: encode_histogram(&self.latency),
            service_time: self.service_time.as_ref().map(encode_histogram),
            requests: self.requests,
            errors: self.errors,
            status_counts: self.status_counts.clone(),
            error_kinds: self.error_kinds.clone(),
            bytes_received: self.bytes_received,
            bytes_sent: self.bytes_sent,
            elapsed_seconds: self.elapsed.as_secs_f64(),
            target_qps: self.target_qps,
            latency_out_of_range: self.latency_out_of_range,
            resends: self.resends,
            peak_connections: self.peak_connections,
            saturation: self.saturation,
        }
    }

    /// Reads a measurement back from [`MeasurementData`].
    pub fn from_data(data: &MeasurementData) -> Result<Self, EvidenceError> {
        Ok(Self {
            latency: decode_histogram(&data.latency)?,
            service_time: data
                .service_time
                .as_deref()
                .map(decode_histogram)
                .transpose()?,
            requests: data.requests,
            errors: data.errors,
            status_counts: data.status_counts.clone(),
            error_kinds: data.error_kinds.clone(),
            bytes_received: data.bytes_received,
            bytes_sent: data.bytes_sent,
            elapsed: Duration::try_from_secs_f64(data.elapsed_seconds).unwrap_or_default(),
            target_qps: data.target_qps,
            latency_out_of_range: data.latency_out_of_range,
            resends: data.resends,
            peak_connections: data.peak_connections,
            saturation: data.saturation,
            custom: BTreeMap::new(),
        })
    }
}

/// A [`Measurement`] as plain data: what a load pod sends and a merger reads. Histograms are
/// base64 of the HdrHistogram V2 encoding (uncompressed, as `V2Serializer` writes it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeasurementData {
    /// The latency histogram (µs).
    pub latency: String,
    /// Open model: the service-time histogram (µs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_time: Option<String>,
    /// Requests finished.
    pub requests: u64,
    /// Requests that count as errors.
    pub errors: u64,
    /// Responses per status code.
    #[serde(default)]
    pub status_counts: BTreeMap<u16, u64>,
    /// Errors per kind.
    #[serde(default)]
    pub error_kinds: BTreeMap<ErrorKind, u64>,
    /// Response bytes received.
    #[serde(default)]
    pub bytes_received: u64,
    /// Request body bytes sent.
    #[serde(default)]
    pub bytes_sent: u64,
    /// Measured wall time, seconds.
    pub elapsed_seconds: f64,
    /// Open model: the target rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_qps: Option<f64>,
    /// Latencies beyond the histogram's ceiling.
    #[serde(default)]
    pub latency_out_of_range: u64,
    /// Keep-alive race resends.
    #[serde(default)]
    pub resends: u64,
    /// Most connections open at once.
    #[serde(default)]
    pub peak_connections: u32,
    /// Set when the load generator was saturated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saturation: Option<Saturation>,
}

/// Base64 of a histogram's HdrHistogram V2 encoding.
pub fn encode_histogram(hist: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    // Writing into a Vec cannot fail, and a histogram of u64 counts always encodes.
    V2Serializer::new()
        .serialize(hist, &mut bytes)
        .expect("a histogram encodes into memory");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Reads a histogram written by [`encode_histogram`] (or any V2 encoder).
pub fn decode_histogram(text: &str) -> Result<Histogram<u64>, EvidenceError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(EvidenceError::Base64)?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(EvidenceError::Encoding)
}

/// A deterministic spread of `n` latencies in µs, 0.1 ms to a few seconds, for the unit
/// tests of merging and encoding (here and in [`crate::parallel`]).
#[cfg(test)]
pub(crate) fn latencies(seed: u64, n: u64) -> Vec<u64> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            (100.0 * (u * 10.0).exp()) as u64 + 1
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(values: &[u64], errors: u64) -> Measurement {
        let mut m = Measurement::default();
        for &v in values {
            record_latency(&mut m.latency, v);
        }
        m.requests = values.len() as u64;
        m.errors = errors;
        m
    }

    #[test]
    fn merged_percentiles_equal_one_histogram_fed_every_sample() {
        let a = latencies(1, 5000);
        let b = latencies(2, 3000);
        let c = latencies(3, 7);
        let mut merged = measured(&a, 3);
        merged.merge(&measured(&b, 4)).unwrap();
        merged.merge(&measured(&c, 0)).unwrap();
        let all: Vec<u64> = a.iter().chain(&b).chain(&c).copied().collect();
        let one = measured(&all, 7);
        assert_eq!(merged.requests, one.requests);
        assert_eq!(merged.errors, 7);
        for q in [0.0, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
            assert_eq!(
                merged.latency.value_at_quantile(q),
                one.latency.value_at_quantile(q),
                "q = {q}"
            );
        }
        assert_eq!(merged.latency.mean(), one.latency.mean());
        assert_eq!(merged.latency, one.latency);
    }

    #[test]
    fn a_measurement_survives_its_v2_encoding_exactly() {
        let mut m = measured(&latencies(9, 2000), 12);
        m.service_time = Some(m.latency.clone());
        m.status_counts.insert(200, 1988);
        m.status_counts.insert(503, 12);
        m.error_kinds.insert(ErrorKind::Status, 12);
        m.elapsed = Duration::from_millis(1500);
        m.target_qps = Some(100.0);
        m.saturation = Some(Saturation {
            connections_needed: 9,
            max_connections: 8,
            late_requests: 40,
        });
        let json = serde_json::to_string(&m.to_data()).unwrap();
        let data: MeasurementData = serde_json::from_str(&json).unwrap();
        let back = Measurement::from_data(&data).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn open_and_closed_model_evidence_does_not_merge() {
        let mut open = measured(&[1000, 2000], 0);
        open.service_time = Some(open.latency.clone());
        let closed = measured(&[1000], 0);
        assert!(matches!(
            open.merge(&closed),
            Err(EvidenceError::MixedModels)
        ));
        // Empty evidence merges into either.
        let mut empty = Measurement::default();
        empty.merge(&open).unwrap();
        assert_eq!(empty.requests, 2);
    }

    #[test]
    fn a_histogram_that_is_not_v2_is_refused() {
        assert!(matches!(
            decode_histogram("not base64!"),
            Err(EvidenceError::Base64(_))
        ));
        assert!(matches!(
            decode_histogram("aGVsbG8gd29ybGQ="),
            Err(EvidenceError::Encoding(_))
        ));
    }
}
