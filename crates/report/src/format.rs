//! How numbers, durations and times read in every report. One place, so the text, markdown
//! and html reports never disagree about a value.

use jiff::Timestamp;

/// Shown wherever a value is absent or not a finite number.
pub(crate) const MISSING: &str = "n/a";

/// A measured value: three decimals, or three significant digits for small non-zero values
/// (an error rate of 0.0012 must not read as 0.001), with thousands separators.
pub(crate) fn number(v: f64) -> String {
    if !v.is_finite() {
        return MISSING.to_owned();
    }
    let abs = v.abs();
    if abs == 0.0 || abs >= 0.1 {
        return group_thousands(&format!("{v:.3}"));
    }
    // Digits after the point needed to keep three significant ones; zeros past the third
    // decimal say nothing (a limit of 0.01 reads 0.010, not 0.0100).
    let decimals = (2 - abs.log10().floor() as i32).clamp(3, 12) as usize;
    let text = format!("{v:.decimals$}");
    let trimmed = text.trim_end_matches('0');
    let keep = trimmed.len().max(text.len() - (decimals - 3));
    text[..keep].to_owned()
}

/// A value of the named metric: counts as whole numbers, everything else as [`number`].
pub(crate) fn metric_value(metric: &str, v: f64) -> String {
    if is_count(metric) && v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e15 {
        group_thousands(&format!("{v:.0}"))
    } else {
        number(v)
    }
}

/// An optional value of the named metric; [`MISSING`] when absent.
pub(crate) fn metric_value_opt(metric: &str, v: Option<f64>) -> String {
    v.map_or_else(|| MISSING.to_owned(), |v| metric_value(metric, v))
}

/// A whole count with thousands separators: `12,345`.
pub(crate) fn count(n: u64) -> String {
    group_thousands(&n.to_string())
}

/// A fraction as a percentage, at most one decimal: `0.95` → `95%`, `0.995` → `99.5%`.
pub(crate) fn percent(fraction: f64) -> String {
    if !fraction.is_finite() {
        return MISSING.to_owned();
    }
    let text = format!("{:.1}", fraction * 100.0);
    format!("{}%", text.strip_suffix(".0").unwrap_or(&text))
}

/// A duration in seconds for people: `850ms`, `12.3s`, `1m 40s`, `2h 5m`.
pub(crate) fn seconds(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        return MISSING.to_owned();
    }
    if s < 1.0 {
        return format!("{:.0}ms", s * 1000.0);
    }
    if s < 60.0 {
        let text = format!("{s:.1}");
        return format!("{}s", text.strip_suffix(".0").unwrap_or(&text));
    }
    let total = s.round() as u64;
    let (h, m, sec) = (total / 3600, total / 60 % 60, total % 60);
    let mut parts = Vec::new();
    if h > 0 {
        parts.push(format!("{h}h"));
    }
    if m > 0 {
        parts.push(format!("{m}m"));
    }
    if sec > 0 {
        parts.push(format!("{sec}s"));
    }
    parts.join(" ")
}

/// A point in time, to the second, in UTC: `2026-11-23 10:00:00 UTC`.
pub(crate) fn timestamp(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A compact latency for axis labels and histogram rows: about three significant digits,
/// no trailing zeros (`0.25`, `1.5`, `12`, `1,500`).
pub(crate) fn short_ms(v: f64) -> String {
    if !v.is_finite() {
        return MISSING.to_owned();
    }
    let abs = v.abs();
    let decimals = if abs >= 100.0 || abs == 0.0 {
        0
    } else {
        (2 - abs.log10().floor() as i32).clamp(0, 9) as usize
    };
    let text = format!("{v:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    };
    group_thousands(&text)
}

/// The metric name as reports show it: latencies carry their unit, as Iter8 showed them.
pub(crate) fn metric_label(metric: &str) -> String {
    if metric.starts_with("http/latency") || metric.starts_with("grpc/latency") {
        format!("{metric} (msec)")
    } else {
        metric.to_owned()
    }
}

/// Whether a metric counts requests, so its values are whole numbers.
fn is_count(metric: &str) -> bool {
    metric.ends_with("-count")
}

/// Where a metric sits in the metrics table: counts, errors, then latencies from the fastest
/// statistic to the slowest, percentiles in numeric order (p9 before p50), then the rest.
/// gRPC's metrics (`grpc/…`) sit as HTTP's do.
pub(crate) fn metric_order(metric: &str) -> (u8, u64, String) {
    let rank_of = |rank: u8| (rank, 0, metric.to_owned());
    let quantity = metric
        .strip_prefix("http/")
        .or_else(|| metric.strip_prefix("grpc/"))
        .unwrap_or(metric);
    match quantity {
        "request-count" => rank_of(0),
        "error-count" => rank_of(1),
        "error-rate" => rank_of(2),
        "latency-min" => rank_of(3),
        "latency-mean" => rank_of(4),
        "latency-max" => rank_of(6),
        "latency-stddev" => rank_of(7),
        _ if quantity == metric => rank_of(8),
        _ => match quantity
            .strip_prefix("latency-p")
            .and_then(|p| p.parse::<f64>().ok())
        {
            // Percentiles keep three decimals of order (p99.9 after p99), enough for any spec.
            Some(p) if p.is_finite() => (5, (p * 1000.0).round() as u64, metric.to_owned()),
            _ => rank_of(8),
        },
    }
}

/// Inserts `,` every three digits of the integer part of a formatted number.
fn group_thousands(formatted: &str) -> String {
    let (sign, rest) = match formatted.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", formatted),
    };
    let (int, frac) = match rest.find('.') {
        Some(dot) => rest.split_at(dot),
        None => (rest, ""),
    };
    let mut grouped = String::with_capacity(int.len() + int.len() / 3);
    for (i, digit) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    format!("{sign}{grouped}{frac}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_three_significant_digits_when_small() {
        assert_eq!(number(100.0), "100.000");
        assert_eq!(number(12345.678), "12,345.678");
        assert_eq!(number(0.0), "0.000");
        assert_eq!(number(0.0012), "0.0012");
        assert_eq!(number(0.00123), "0.00123");
        assert_eq!(number(0.01), "0.010");
        assert_eq!(number(0.05), "0.050");
        assert_eq!(number(-1234.5), "-1,234.500");
        assert_eq!(number(f64::NAN), "n/a");
        assert_eq!(number(f64::INFINITY), "n/a");
    }

    #[test]
    fn counts_are_whole() {
        assert_eq!(metric_value("http/request-count", 10000.0), "10,000");
        assert_eq!(metric_value("http/latency-mean", 10000.0), "10,000.000");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(0), "0");
    }

    #[test]
    fn percents_durations_and_short_latencies() {
        assert_eq!(percent(0.95), "95%");
        assert_eq!(percent(0.995), "99.5%");
        assert_eq!(seconds(0.25), "250ms");
        assert_eq!(seconds(12.34), "12.3s");
        assert_eq!(seconds(100.0), "1m 40s");
        assert_eq!(seconds(7500.0), "2h 5m");
        assert_eq!(seconds(120.0), "2m");
        assert_eq!(short_ms(0.25), "0.25");
        assert_eq!(short_ms(1.5), "1.5");
        assert_eq!(short_ms(12.0), "12");
        assert_eq!(short_ms(1500.0), "1,500");
    }

    #[test]
    fn metrics_sort_by_meaning_and_percentiles_numerically() {
        let mut names = vec![
            "http/latency-p99.9",
            "http/latency-p9",
            "http/latency-max",
            "http/error-rate",
            "http/latency-p50",
            "http/request-count",
            "http/latency-p99",
            "custom/thing",
        ];
        names.sort_by_key(|m| metric_order(m));
        assert_eq!(
            names,
            [
                "http/request-count",
                "http/error-rate",
                "http/latency-p9",
                "http/latency-p50",
                "http/latency-p99",
                "http/latency-p99.9",
                "http/latency-max",
                "custom/thing",
            ]
        );
    }
}
