//! Metrics with Iter8-compatible names, computed from a [`Measurement`].
//!
//! Latencies are in milliseconds. A percentile such as `http/latency-p95` is read from the
//! latency HdrHistogram in [`Metric::value`]; `http/latency` itself is the histogram, turned
//! into a few log-spaced buckets for reports by [`histogram_buckets`].
//!
//! A version loaded over gRPC has the same metrics under the `grpc/` prefix
//! (`grpc/error-rate`, `grpc/latency-p95` …): a [`Metric`] is the quantity, a [`Protocol`]
//! names it.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::measure::Measurement;

/// Name of the latency histogram metric (not a single value, so no SLO can use it).
pub const LATENCY_HISTOGRAM: &str = "http/latency";
/// Percentiles every version reports, whatever the SLOs ask.
pub const DEFAULT_PERCENTILES: [f64; 6] = [50.0, 75.0, 90.0, 95.0, 99.0, 99.9];
/// At most this many buckets in a version's report histogram: enough for a picture, small
/// enough that three versions stay a few kilobytes in the result ConfigMap.
pub const MAX_HISTOGRAM_BUCKETS: usize = 60;

/// What a version is loaded with, which prefixes its metric names.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// HTTP/1.1 or HTTP/2 requests: `http/…` metrics, HTTP status codes.
    #[default]
    Http,
    /// gRPC unary calls: `grpc/…` metrics, gRPC status codes.
    Grpc,
}

impl Protocol {
    /// The metric name prefix, `http` or `grpc`.
    pub fn prefix(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Grpc => "grpc",
        }
    }

    /// Whether this is the default, HTTP (for `skip_serializing_if`).
    pub fn is_http(&self) -> bool {
        *self == Protocol::Http
    }

    /// The protocol a metric name's prefix names, if it is `http/` or `grpc/`.
    pub fn of_metric(name: &str) -> Option<Protocol> {
        match name.split_once('/')?.0 {
            "http" => Some(Protocol::Http),
            "grpc" => Some(Protocol::Grpc),
            _ => None,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Http => "HTTP",
            Protocol::Grpc => "gRPC",
        })
    }
}

const PERCENTILE_PREFIX: &str = "http/latency-p";

/// A metric an SLO can judge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    /// `http/request-count`: requests finished, successful or not.
    RequestCount,
    /// `http/error-count`: requests that count as errors.
    ErrorCount,
    /// `http/error-rate`: errors / requests, a fraction in [0, 1].
    ErrorRate,
    /// `http/latency-mean`, ms.
    LatencyMean,
    /// `http/latency-min`, ms.
    LatencyMin,
    /// `http/latency-max`, ms.
    LatencyMax,
    /// `http/latency-stddev`, ms.
    LatencyStddev,
    /// `http/latency-pXX`: the XX-th percentile (0 < XX ≤ 100), ms.
    LatencyPercentile(f64),
}

/// Why a metric name was not understood.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricError {
    /// The name is none of the known metrics.
    #[error(
        "unknown metric {}: expected http/request-count, http/error-count, http/error-rate, \
         http/latency-mean, -min, -max, -stddev or -pXX (e.g. http/latency-p95); grpc/… \
         for a gRPC version",
        crate::quote::quote(.0)
    )]
    Unknown(String),
    /// `http/latency` is the histogram, not one value.
    #[error(
        "\"http/latency\" is the latency histogram, not a value: use http/latency-pXX or http/latency-mean"
    )]
    Histogram,
    /// A `http/latency-pXX` whose XX is not a number in (0, 100].
    #[error(
        "{}: the percentile must be a number greater than 0 and at most 100 (e.g. p95, p97.5, p99.9)",
        crate::quote::quote(.0)
    )]
    BadPercentile(String),
}

impl Metric {
    /// The Iter8-compatible name, e.g. `http/latency-p97.5`.
    pub fn name(&self) -> String {
        self.to_string()
    }

    /// The name under `protocol`'s prefix, e.g. `grpc/latency-p97.5`.
    pub fn name_in(&self, protocol: Protocol) -> String {
        let name = self.to_string();
        match protocol {
            Protocol::Http => name,
            Protocol::Grpc => format!("grpc/{}", &name["http/".len()..]),
        }
    }

    /// Whether the value is a latency in milliseconds.
    pub fn is_latency(&self) -> bool {
        !matches!(
            self,
            Metric::RequestCount | Metric::ErrorCount | Metric::ErrorRate
        )
    }

    /// Whether its bounds come from the bootstrap (mean and standard deviation), whose
    /// resamples limit the confidence it can resolve.
    pub fn uses_bootstrap(&self) -> bool {
        matches!(self, Metric::LatencyMean | Metric::LatencyStddev)
    }

    /// The largest value the metric can take, when it is bounded (error rate: 1).
    pub fn maximum(&self) -> Option<f64> {
        matches!(self, Metric::ErrorRate).then_some(1.0)
    }

    /// The metric's value for one version; `None` when it cannot be computed (no request, or
    /// no request with a latency). Never NaN or infinite.
    pub fn value(&self, m: &Measurement) -> Option<f64> {
        let hist = &m.latency;
        let value = match *self {
            Metric::RequestCount => Some(m.requests as f64),
            Metric::ErrorCount => Some(m.errors as f64),
            Metric::ErrorRate => (m.requests > 0).then(|| m.errors as f64 / m.requests as f64),
            _ if hist.is_empty() => None,
            Metric::LatencyMean => Some(us_to_ms(hist.mean())),
            Metric::LatencyMin => Some(us_to_ms(hist.min() as f64)),
            Metric::LatencyMax => Some(us_to_ms(hist.max() as f64)),
            Metric::LatencyStddev => Some(us_to_ms(hist.stdev())),
            // The percentile: the recorded value at rank ceil(q·n), reported as the upper edge
            // of its HdrHistogram bucket (HdrHistogram's own convention).
            Metric::LatencyPercentile(p) => {
                Some(us_to_ms(hist.value_at_quantile(p / 100.0) as f64))
            }
        };
        value.filter(|v| v.is_finite())
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Metric::RequestCount => f.write_str("http/request-count"),
            Metric::ErrorCount => f.write_str("http/error-count"),
            Metric::ErrorRate => f.write_str("http/error-rate"),
            Metric::LatencyMean => f.write_str("http/latency-mean"),
            Metric::LatencyMin => f.write_str("http/latency-min"),
            Metric::LatencyMax => f.write_str("http/latency-max"),
            Metric::LatencyStddev => f.write_str("http/latency-stddev"),
            // f64's Display is the shortest exact form: 95 → "95", 97.5 → "97.5".
            Metric::LatencyPercentile(p) => write!(f, "{PERCENTILE_PREFIX}{p}"),
        }
    }
}

impl FromStr for Metric {
    type Err = MetricError;

    /// Reads `http/…` and `grpc/…` names alike (the quantity; [`Protocol::of_metric`] tells
    /// the prefix).
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let http;
        let s = match name.strip_prefix("grpc/") {
            Some(rest) => {
                http = format!("http/{rest}");
                http.as_str()
            }
            None => name,
        };
        let renamed = |err: MetricError| match err {
            MetricError::Unknown(_) => MetricError::Unknown(name.to_owned()),
            MetricError::BadPercentile(_) => MetricError::BadPercentile(name.to_owned()),
            MetricError::Histogram => MetricError::Histogram,
        };
        Self::from_http_name(s).map_err(renamed)
    }
}

impl Metric {
    fn from_http_name(s: &str) -> Result<Self, MetricError> {
        Ok(match s {
            "http/request-count" => Metric::RequestCount,
            "http/error-count" => Metric::ErrorCount,
            "http/error-rate" => Metric::ErrorRate,
            "http/latency-mean" => Metric::LatencyMean,
            "http/latency-min" => Metric::LatencyMin,
            "http/latency-max" => Metric::LatencyMax,
            "http/latency-stddev" => Metric::LatencyStddev,
            LATENCY_HISTOGRAM => return Err(MetricError::Histogram),
            _ => {
                let Some(digits) = s.strip_prefix(PERCENTILE_PREFIX) else {
                    return Err(MetricError::Unknown(s.to_owned()));
                };
                // Plain decimal digits only: no sign, exponent, "inf" or "nan".
                let plain = !digits.is_empty()
                    && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
                    && !digits.starts_with('.')
                    && !digits.ends_with('.');
                let p: f64 = digits
                    .parse()
                    .ok()
                    .filter(|p: &f64| plain && *p > 0.0 && *p <= 100.0)
                    .ok_or_else(|| MetricError::BadPercentile(s.to_owned()))?;
                Metric::LatencyPercentile(p)
            }
        })
    }
}

pub(crate) fn us_to_ms(us: f64) -> f64 {
    us / 1000.0
}

/// Every metric value of one version, by name under `protocol`'s prefix: the counts, the
/// error rate, the latency summary, the [`DEFAULT_PERCENTILES`] and whatever `extra` metrics
/// the SLOs name.
///
/// A metric that cannot be computed is left out rather than written as NaN.
pub fn version_metrics(
    m: &Measurement,
    protocol: Protocol,
    extra: &[Metric],
) -> BTreeMap<String, f64> {
    let mut wanted = vec![
        Metric::RequestCount,
        Metric::ErrorCount,
        Metric::ErrorRate,
        Metric::LatencyMean,
        Metric::LatencyMin,
        Metric::LatencyMax,
        Metric::LatencyStddev,
    ];
    wanted.extend(DEFAULT_PERCENTILES.map(Metric::LatencyPercentile));
    wanted.extend_from_slice(extra);
    wanted
        .into_iter()
        .filter_map(|metric| metric.value(m).map(|v| (metric.name_in(protocol), v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in [
            "http/request-count",
            "http/error-count",
            "http/error-rate",
            "http/latency-mean",
            "http/latency-min",
            "http/latency-max",
            "http/latency-stddev",
            "http/latency-p50",
            "http/latency-p95",
            "http/latency-p97.5",
            "http/latency-p99.9",
            "http/latency-p100",
        ] {
            let metric: Metric = name.parse().unwrap();
            assert_eq!(metric.to_string(), name);
        }
        assert_eq!(
            "http/latency-p97.5".parse::<Metric>().unwrap(),
            Metric::LatencyPercentile(97.5)
        );
    }

    #[test]
    fn grpc_names_are_the_same_quantities() {
        for (grpc, http) in [
            ("grpc/error-rate", "http/error-rate"),
            ("grpc/latency-p99.9", "http/latency-p99.9"),
            ("grpc/latency-mean", "http/latency-mean"),
        ] {
            let metric: Metric = grpc.parse().unwrap();
            assert_eq!(metric, http.parse::<Metric>().unwrap());
            assert_eq!(metric.name_in(Protocol::Grpc), grpc);
            assert_eq!(Protocol::of_metric(grpc), Some(Protocol::Grpc));
        }
        assert_eq!(
            "grpc/latency-p0".parse::<Metric>(),
            Err(MetricError::BadPercentile("grpc/latency-p0".into()))
        );
        assert_eq!(
            "grpc/bogus".parse::<Metric>(),
            Err(MetricError::Unknown("grpc/bogus".into()))
        );
        let m = measurement(&[10, 20, 30], 1);
        let all = version_metrics(&m, Protocol::Grpc, &[]);
        assert_eq!(all["grpc/request-count"], 3.0);
        assert!(all.keys().all(|k| k.starts_with("grpc/")), "{all:?}");
    }

    #[test]
    fn bad_names_are_explained() {
        assert_eq!(
            "http/latency".parse::<Metric>(),
            Err(MetricError::Histogram)
        );
        for bad in [
            "http/latency-p0",
            "http/latency-p101",
            "http/latency-p",
            "http/latency-pnan",
            "http/latency-p-5",
            "http/latency-p1e1",
        ] {
            assert!(
                matches!(bad.parse::<Metric>(), Err(MetricError::BadPercentile(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            "http/latency-p95ms".parse::<Metric>(),
            Err(MetricError::BadPercentile(_))
        ));
        assert!(matches!(
            "latency".parse::<Metric>(),
            Err(MetricError::Unknown(_))
        ));
    }

    fn measurement(latencies_ms: &[u64], errors: u64) -> Measurement {
        let mut m = Measurement::default();
        for &ms in latencies_ms {
            m.latency.record(ms * 1000).unwrap();
        }
        m.requests = latencies_ms.len() as u64;
        m.errors = errors;
        m
    }

    #[test]
    fn values_in_milliseconds() {
        let lat: Vec<u64> = (1..=100).collect();
        let m = measurement(&lat, 5);
        let get = |name: &str| name.parse::<Metric>().unwrap().value(&m).unwrap();
        assert_eq!(get("http/request-count"), 100.0);
        assert_eq!(get("http/error-count"), 5.0);
        assert_eq!(get("http/error-rate"), 0.05);
        assert_eq!(get("http/latency-min"), 1.0);
        assert!((get("http/latency-max") - 100.0).abs() < 0.1);
        assert!((get("http/latency-mean") - 50.5).abs() < 0.1);
        assert!((get("http/latency-p95") - 95.0).abs() < 0.1);
        assert!((get("http/latency-p97.5") - 98.0).abs() < 0.1);
    }

    #[test]
    fn nothing_measured_gives_no_nan() {
        let m = Measurement::default();
        let all = version_metrics(&m, Protocol::Http, &[Metric::LatencyPercentile(97.5)]);
        assert_eq!(all.len(), 2, "{all:?}");
        assert_eq!(all["http/request-count"], 0.0);
        assert!(all.values().all(|v| v.is_finite()));
    }

    #[test]
    fn version_metrics_include_slo_percentiles() {
        let m = measurement(&[10, 20, 30], 0);
        let all = version_metrics(&m, Protocol::Http, &[Metric::LatencyPercentile(97.5)]);
        assert!(all.contains_key("http/latency-p97.5"));
        assert!(all.contains_key("http/latency-p99.9"));
        assert!(all.contains_key("http/latency-stddev"));
    }
}
