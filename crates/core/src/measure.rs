//! What the load engine records for one version: the raw material of every metric.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
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
    /// The peer reset or closed the connection before a full response arrived.
    Reset,
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
#[derive(Debug, Clone)]
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
        }
    }
}
