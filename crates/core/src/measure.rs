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
    /// Requests sent a second time, on a new connection, because the server had closed
    /// their kept-alive connection after it sat idle (a keep-alive timeout race).
    pub resends: u64,
    /// The most connections open at once (the open model opens more when it falls behind).
    pub peak_connections: u32,
    /// Open model only: set when the load generator could not keep to the planned rate
    /// because every connection it may open was busy.
    pub saturation: Option<Saturation>,
}

/// The load generator itself fell behind the open model's timetable: every one of the
/// `max_connections` it may open was busy, so requests waited inside it for a connection and
/// the corrected latency holds that wait. The service was not measured at the planned rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
        }
    }
}
