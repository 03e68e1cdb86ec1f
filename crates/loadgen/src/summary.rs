//! The summary of one load run, for `slogate load`: counts, achieved rate, latency statistics
//! and percentiles in milliseconds, histogram buckets, status and error distributions, bytes.
//!
//! The JSON form is a stable, documented shape (`schemas/load-summary.schema.json`); the text
//! form is for people.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;
use slogate_core::measure::{ErrorKind, Measurement};
use slogate_core::metrics::Protocol;

use crate::LoadError;

/// The `apiVersion` of the JSON summary.
pub const API_VERSION: &str = "slogate.dev/load-summary/v1";

/// Percentiles reported when none are asked for.
pub const DEFAULT_PERCENTILES: [f64; 6] = [50.0, 75.0, 90.0, 95.0, 99.0, 99.9];

/// Parses a comma-separated percentile list such as `50,95,97.5,p99.9`.
///
/// Each item is a number in (0, 100], optionally written with a leading `p`.
pub fn parse_percentiles(text: &str) -> Result<Vec<f64>, LoadError> {
    let invalid = |reason: String| LoadError::Invalid {
        field: "percentiles".to_owned(),
        reason,
    };
    let mut out = Vec::new();
    for item in text.split(',').map(str::trim) {
        let number = item.strip_prefix(['p', 'P']).unwrap_or(item);
        let value: f64 = number.parse().map_err(|_| {
            invalid(format!(
                "{item:?} is not a percentile; write numbers like 95, 97.5 or p99.9"
            ))
        })?;
        if !(value > 0.0 && value <= 100.0) {
            return Err(invalid(format!("{item:?} is outside (0, 100]")));
        }
        out.push(value);
    }
    if out.is_empty() {
        return Err(invalid("no percentile given".to_owned()));
    }
    Ok(out)
}

/// Everything `slogate load` reports about a run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Always [`API_VERSION`].
    pub api_version: &'static str,
    /// The URL loaded.
    pub url: String,
    /// `grpc` for gRPC calls; absent for HTTP.
    #[serde(skip_serializing_if = "Protocol::is_http")]
    pub protocol: Protocol,
    /// `closed` (as fast as responses come) or `open` (fixed rate).
    pub model: &'static str,
    /// Connections opened at the start.
    pub connections: u32,
    /// The most connections open at once: above `connections` when the open model opened
    /// more to keep to the rate.
    pub peak_connections: u32,
    /// Open model: the target total rate in requests per second.
    pub target_rate: Option<f64>,
    /// Measured requests finished, successful or not.
    pub requests: u64,
    /// Requests that count as errors.
    pub errors: u64,
    /// Requests sent a second time on a new connection because the server had closed their
    /// kept-alive connection after it sat idle (a keep-alive timeout race); never an error.
    pub resends: u64,
    /// Open model: set when the load generator could not keep to the rate.
    pub saturation: Option<SaturationSummary>,
    /// `errors / requests`, 0 when there were no requests.
    pub error_rate: f64,
    /// Wall time of the measured part, in seconds.
    pub elapsed_seconds: f64,
    /// `requests / elapsedSeconds`.
    pub achieved_rate: f64,
    /// Latency statistics; in the open model measured from the scheduled send time.
    pub latency: LatencyStats,
    /// Open model only: latency from the actual send time (uncorrected service time).
    pub service_time: Option<LatencyStats>,
    /// How many responses carried each status code: the HTTP status (`"200"`), or for gRPC
    /// the status code's name (`"OK"`, `"UNAVAILABLE"`).
    pub status_counts: BTreeMap<String, u64>,
    /// How many errors of each kind.
    pub error_kinds: BTreeMap<ErrorKind, u64>,
    /// Response body bytes received.
    pub bytes_received: u64,
    /// Request body bytes sent.
    pub bytes_sent: u64,
}

/// The load generator fell behind the open model's timetable because every connection it may
/// open was busy: the latency holds time requests waited inside it.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SaturationSummary {
    /// Connections the target rate needs at the measured mean service time.
    pub connections_needed: u64,
    /// Connections the run could open (`--max-connections`).
    pub max_connections: u32,
    /// Measured requests that waited for a free connection.
    pub late_requests: u64,
}

/// Latency statistics in milliseconds, from an HdrHistogram of microseconds (3 significant
/// digits: every value is within 0.1 % of the true one). When no request has a latency (every
/// one refused, say) the values are `None`, written as `null`: nothing was measured.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LatencyStats {
    /// Requests with a latency (responses and timeouts).
    pub count: u64,
    /// Smallest latency.
    pub min_ms: Option<f64>,
    /// Mean latency.
    pub mean_ms: Option<f64>,
    /// Standard deviation of latency.
    pub stddev_ms: Option<f64>,
    /// Largest latency.
    pub max_ms: Option<f64>,
    /// The percentiles asked for, in the order asked.
    pub percentiles: Vec<Percentile>,
    /// Buckets with 1-2-5 bounds covering every recorded latency; empty buckets omitted.
    pub histogram: Vec<Bucket>,
}

/// One percentile of latency.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Percentile {
    /// The percentile, e.g. 97.5.
    pub percentile: f64,
    /// The latency at that percentile, in milliseconds; `None` when nothing was measured.
    pub value_ms: Option<f64>,
}

/// One histogram bucket: latencies in `[fromMs, toMs)`.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bucket {
    /// Lower bound, inclusive, in milliseconds.
    pub from_ms: f64,
    /// Upper bound, exclusive, in milliseconds.
    pub to_ms: f64,
    /// Latencies in the bucket.
    pub count: u64,
}

fn ms(us: f64) -> f64 {
    us / 1000.0
}

impl LatencyStats {
    /// Statistics of a microsecond histogram.
    pub fn new(h: &Histogram<u64>, percentiles: &[f64]) -> Self {
        if h.is_empty() {
            return Self {
                count: 0,
                min_ms: None,
                mean_ms: None,
                stddev_ms: None,
                max_ms: None,
                percentiles: percentiles
                    .iter()
                    .map(|&percentile| Percentile {
                        percentile,
                        value_ms: None,
                    })
                    .collect(),
                histogram: Vec::new(),
            };
        }
        Self {
            count: h.len(),
            min_ms: Some(ms(h.min() as f64)),
            mean_ms: Some(ms(h.mean())),
            stddev_ms: Some(ms(h.stdev())),
            max_ms: Some(ms(h.max() as f64)),
            percentiles: percentiles
                .iter()
                .map(|&percentile| Percentile {
                    percentile,
                    value_ms: Some(ms(h.value_at_quantile(percentile / 100.0) as f64)),
                })
                .collect(),
            histogram: buckets(h),
        }
    }

    /// The value at `percentile`, if it was asked for and measured.
    pub fn percentile(&self, percentile: f64) -> Option<f64> {
        self.percentiles
            .iter()
            .find(|p| p.percentile == percentile)
            .and_then(|p| p.value_ms)
    }
}

/// Bucket bounds in microseconds: 1, 2, 5, 10, 20, 50 … up to one hour.
fn bounds_us() -> impl Iterator<Item = u64> {
    (0..10).flat_map(|decade| [1, 2, 5].map(|m| m * 10u64.pow(decade)))
}

fn buckets(h: &Histogram<u64>) -> Vec<Bucket> {
    let edges: Vec<u64> = std::iter::once(0).chain(bounds_us()).collect();
    let mut counts = vec![0u64; edges.len()];
    for v in h.iter_recorded() {
        let value = h.lowest_equivalent(v.value_iterated_to());
        let index = edges.partition_point(|&edge| edge <= value) - 1;
        counts[index] += v.count_at_value();
    }
    counts
        .iter()
        .enumerate()
        .filter(|(_, count)| **count > 0)
        .map(|(i, &count)| Bucket {
            from_ms: ms(edges[i] as f64),
            to_ms: edges.get(i + 1).map_or(f64::INFINITY, |&e| ms(e as f64)),
            count,
        })
        .collect()
}

impl Summary {
    /// Summarises `m`, a run against `url` over `connections` connections (HTTP; see
    /// [`Summary::for_protocol`]).
    pub fn new(m: &Measurement, url: &str, connections: u32, percentiles: &[f64]) -> Self {
        Self::for_protocol(m, Protocol::Http, url, connections, percentiles)
    }

    /// Summarises `m`, a run of `protocol` requests (gRPC statuses are named) against `url`
    /// over `connections` connections.
    pub fn for_protocol(
        m: &Measurement,
        protocol: Protocol,
        url: &str,
        connections: u32,
        percentiles: &[f64],
    ) -> Self {
        let elapsed = m.elapsed.as_secs_f64();
        Self {
            api_version: API_VERSION,
            url: url.to_owned(),
            protocol,
            model: if m.target_qps.is_some() {
                "open"
            } else {
                "closed"
            },
            connections,
            peak_connections: m.peak_connections.max(connections),
            target_rate: m.target_qps,
            requests: m.requests,
            errors: m.errors,
            resends: m.resends,
            saturation: m.saturation.map(|s| SaturationSummary {
                connections_needed: s.connections_needed,
                max_connections: s.max_connections,
                late_requests: s.late_requests,
            }),
            error_rate: if m.requests == 0 {
                0.0
            } else {
                m.errors as f64 / m.requests as f64
            },
            elapsed_seconds: elapsed,
            achieved_rate: if elapsed > 0.0 {
                m.requests as f64 / elapsed
            } else {
                0.0
            },
            latency: LatencyStats::new(&m.latency, percentiles),
            service_time: m
                .service_time
                .as_ref()
                .map(|h| LatencyStats::new(h, percentiles)),
            status_counts: m
                .status_counts
                .iter()
                .map(|(status, count)| {
                    let key = match protocol {
                        Protocol::Http => status.to_string(),
                        Protocol::Grpc => slogate_core::grpc::status_label(*status),
                    };
                    (key, *count)
                })
                .collect(),
            error_kinds: m.error_kinds.clone(),
            bytes_received: m.bytes_received,
            bytes_sent: m.bytes_sent,
        }
    }

    /// The summary as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a summary always serialises")
    }

    /// The summary as text for a terminal.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = write!(
            out,
            "Target:      {} ({} model, {} connections",
            self.url, self.model, self.connections
        );
        if self.peak_connections > self.connections {
            let _ = write!(out, ", up to {} to keep to the rate", self.peak_connections);
        }
        out.push_str(")\n");
        let _ = write!(
            out,
            "Requests:    {} in {:.3} s = {:.1} req/s",
            self.requests, self.elapsed_seconds, self.achieved_rate
        );
        if let Some(target) = self.target_rate {
            let _ = write!(out, " (target {target:.1} req/s)");
        }
        out.push('\n');
        let _ = writeln!(
            out,
            "Errors:      {} ({:.3} %)",
            self.errors,
            self.error_rate * 100.0
        );
        for (kind, count) in &self.error_kinds {
            let _ = writeln!(out, "  {:<24} {count}", kind_name(*kind));
        }
        if self.resends > 0 {
            let _ = writeln!(
                out,
                "Resent:      {} (the server closed an idle kept-alive connection as the request went out; sent again once, not errors)",
                self.resends
            );
        }
        if let Some(s) = &self.saturation {
            let _ = writeln!(
                out,
                "Saturated:   load generator saturated: {} connections needed at the measured service time, {} allowed (--max-connections); {} requests waited for a free connection, so latency holds time spent inside slogate",
                s.connections_needed, s.max_connections, s.late_requests
            );
        }
        let _ = writeln!(out, "Statuses:");
        for (status, count) in &self.status_counts {
            let _ = writeln!(out, "  {status:<16} {count}");
        }
        let _ = writeln!(
            out,
            "Bytes:       {} received, {} sent",
            self.bytes_received, self.bytes_sent
        );
        let title = if self.service_time.is_some() {
            "Latency (ms, from scheduled send):"
        } else {
            "Latency (ms):"
        };
        write_stats(&mut out, title, &self.latency);
        if let Some(service) = &self.service_time {
            write_stats(&mut out, "Service time (ms, from actual send):", service);
        }
        out
    }
}

fn kind_name(kind: ErrorKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn write_stats(out: &mut String, title: &str, s: &LatencyStats) {
    let _ = writeln!(out, "{title}");
    let (Some(min), Some(mean), Some(stddev), Some(max)) =
        (s.min_ms, s.mean_ms, s.stddev_ms, s.max_ms)
    else {
        let _ = writeln!(
            out,
            "  not measured: no request got a response (JSON output gives null)"
        );
        return;
    };
    let _ = writeln!(
        out,
        "  min {min:.3}  mean {mean:.3}  stddev {stddev:.3}  max {max:.3}"
    );
    for p in &s.percentiles {
        if let Some(value) = p.value_ms {
            let _ = writeln!(out, "  p{:<6} {value:.3}", p.percentile);
        }
    }
    if !s.histogram.is_empty() {
        let _ = writeln!(out, "  histogram:");
        let total = s.count.max(1) as f64;
        for b in &s.histogram {
            let _ = writeln!(
                out,
                "    [{:>9} .. {:>9}) {:>10} {:>6.2} %",
                b.from_ms,
                b.to_ms,
                b.count,
                b.count as f64 * 100.0 / total
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slogate_core::measure::new_latency_histogram;

    #[test]
    fn percentile_forms() {
        assert_eq!(
            parse_percentiles("50,75,90,95,99,99.9").unwrap(),
            DEFAULT_PERCENTILES
        );
        assert_eq!(parse_percentiles("97.5, p99.9").unwrap(), [97.5, 99.9]);
        for bad in ["", "abc", "0", "101", "95%", "50,,90", "-1"] {
            assert!(parse_percentiles(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn percentiles_of_a_known_distribution_are_exact_within_precision() {
        // 1..=10_000 µs, one of each: p50 = 5 ms, p97.5 = 9.75 ms, p99.9 = 9.99 ms.
        let mut h = new_latency_histogram();
        for v in 1..=10_000 {
            h.record(v).unwrap();
        }
        let stats = LatencyStats::new(&h, &[50.0, 97.5, 99.9]);
        for (p, expected) in [(50.0, 5.0), (97.5, 9.75), (99.9, 9.99)] {
            let got = stats.percentile(p).unwrap();
            assert!((got - expected).abs() <= expected * 0.001, "p{p}: {got}");
        }
        assert!((stats.mean_ms.unwrap() - 5.0005).abs() < 0.01);
        assert_eq!(stats.histogram.iter().map(|b| b.count).sum::<u64>(), 10_000);
        assert_eq!(stats.histogram.first().unwrap().from_ms, 0.001);
    }

    #[test]
    fn achieved_rate_and_error_rate() {
        let mut m = Measurement {
            requests: 200,
            errors: 10,
            elapsed: std::time::Duration::from_secs(2),
            ..Measurement::default()
        };
        m.latency.record(1500).unwrap();
        let s = Summary::new(&m, "http://x/", 4, &DEFAULT_PERCENTILES);
        assert_eq!(s.achieved_rate, 100.0);
        assert_eq!(s.error_rate, 0.05);
        assert_eq!(s.model, "closed");
        assert!(s.to_text().contains("p99.9"));
    }

    #[test]
    fn latencies_never_measured_are_null_not_zero() {
        // Every request refused: nothing has a latency.
        let m = Measurement {
            requests: 20,
            errors: 20,
            elapsed: std::time::Duration::from_secs(1),
            ..Measurement::default()
        };
        let s = Summary::new(&m, "http://x/", 2, &DEFAULT_PERCENTILES);
        let json: serde_json::Value = serde_json::from_str(&s.to_json()).unwrap();
        for field in ["minMs", "meanMs", "stddevMs", "maxMs"] {
            assert!(
                json["latency"][field].is_null(),
                "{field}: {}",
                json["latency"]
            );
        }
        assert!(json["latency"]["percentiles"][0]["valueMs"].is_null());
        let text = s.to_text();
        assert!(text.contains("not measured"), "{text}");
        assert!(!text.contains("p50"), "{text}");
    }
}
