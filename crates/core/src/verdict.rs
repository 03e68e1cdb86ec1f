//! SLO verdicts: each SLO of each version, then the experiment as a whole.
//!
//! An SLO is judged on the confidence interval of its metric (see [`crate::stats`]), not on
//! the observed value alone:
//!
//! - **satisfied** when the whole interval is within the limits,
//! - **violated** when the whole interval is beyond a limit,
//! - **inconclusive** when the interval straddles a limit. The interval's half-width shrinks
//!   like `1/√n`, so about `n · (half-width / distance to limit)²` requests would decide it
//!   (for the error rate: the smallest sample whose Wilson interval around the same rate
//!   clears the limit); that figure is reported as `requestsNeeded`.
//!
//! Some metrics have no interval: request and error counts are exact, and the latency
//! minimum and maximum are what was seen; they are judged on the observed value.
//!
//! **An error-rate upper limit of exactly 0** (the tutorials' `limitErrorRate=0.0`) is judged
//! on the error count: no sample, however large, gives an interval that ends at 0, so an
//! interval rule could never be satisfied. Zero errors satisfies it; any error violates it.
//!
//! The experiment passes only when every SLO is satisfied. An inconclusive SLO fails the
//! experiment under the default policy ([`InconclusivePolicy::Fail`]); under
//! [`InconclusivePolicy::Pass`] it passes when its observed value is within the limits.

use crate::measure::{Measurement, Saturation};
use crate::metrics::Metric;
use crate::result::{OverallVerdict, SloResult, SloVerdict};
use crate::spec::{InconclusivePolicy, SloSpec};
use crate::stats::{self, Bounds};

/// A metric's value for one version with its confidence interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// Observed value; `None` when it cannot be computed.
    pub observed: Option<f64>,
    /// Confidence interval; `None` when the metric has none (exact or too few samples).
    pub bounds: Option<Bounds>,
    /// The interval method, as written in the result document.
    pub method: &'static str,
    /// Whether the observed value is exact, so the verdict is judged on it directly.
    pub exact: bool,
}

/// Computes a metric's observed value and confidence interval for one version.
pub fn estimate(metric: Metric, m: &Measurement, confidence: f64) -> Estimate {
    let observed = metric.value(m);
    let (bounds, method, exact) = match metric {
        Metric::RequestCount | Metric::ErrorCount => (None, "exact", true),
        Metric::LatencyMin | Metric::LatencyMax => (None, "observed", true),
        Metric::ErrorRate => (
            stats::wilson(m.errors, m.requests, confidence),
            "wilson",
            false,
        ),
        Metric::LatencyPercentile(p) => (
            stats::percentile_interval(&m.latency, p / 100.0, confidence),
            "order-statistic",
            false,
        ),
        Metric::LatencyMean => (
            stats::bootstrap(&m.latency, confidence).map(|b| b.mean),
            "bootstrap-t",
            false,
        ),
        Metric::LatencyStddev => (
            stats::bootstrap(&m.latency, confidence).map(|b| b.stddev),
            "bootstrap-percentile",
            false,
        ),
    };
    Estimate {
        observed,
        bounds,
        method,
        exact,
    }
}

/// Judges one SLO for one version from its measurement.
///
/// `slo.metric` must parse (the spec was validated); an unknown name is judged
/// inconclusive with the parse error as the reason rather than panicking. When the load
/// generator was saturated ([`Measurement::saturation`]) every latency SLO is inconclusive:
/// the latency holds time requests waited inside the generator, and the service was not
/// measured at the planned rate.
pub fn judge_slo(slo: &SloSpec, version: &str, m: &Measurement, confidence: f64) -> SloResult {
    let result = judge_measured(slo, version, m, confidence);
    match &m.saturation {
        Some(saturation) if slo.metric.parse::<Metric>().is_ok_and(|x| x.is_latency()) => {
            saturated(result, saturation)
        }
        _ => result,
    }
}

/// A latency SLO of a saturated run: inconclusive, whatever its interval said.
fn saturated(mut result: SloResult, saturation: &Saturation) -> SloResult {
    result.verdict = SloVerdict::Inconclusive;
    result.requests_needed = None;
    result.reason = format!(
        "{} of {} cannot be judged: {}, so its latency holds time requests waited inside slogate and the service was not measured at the planned rate.",
        result.metric,
        result.version,
        saturation.describe()
    );
    result
}

fn judge_measured(slo: &SloSpec, version: &str, m: &Measurement, confidence: f64) -> SloResult {
    let mut result = SloResult {
        version: version.to_owned(),
        metric: slo.metric.clone(),
        upper_limit: slo.upper_limit,
        lower_limit: slo.lower_limit,
        observed: None,
        interval: None,
        verdict: SloVerdict::Inconclusive,
        requests_needed: None,
        method: String::new(),
        reason: String::new(),
    };
    let metric = match slo.metric.parse::<Metric>() {
        Ok(metric) => metric,
        Err(err) => {
            result.method = "none".to_owned();
            result.reason = err.to_string();
            return result;
        }
    };
    let est = estimate(metric, m, confidence);
    result.method = est.method.to_owned();
    result.observed = est.observed;
    result.interval = est
        .bounds
        .filter(Bounds::is_finite)
        .map(|b| crate::result::Interval {
            lower: b.lower,
            upper: b.upper,
        });
    let limits = Limits {
        upper: slo.upper_limit,
        lower: slo.lower_limit,
    };
    let subject = format!("{} of {version}", slo.metric);
    let level = percent(confidence);
    let cond = limits.describe(metric);

    let Some(observed) = est.observed else {
        result.reason = if m.requests == 0 {
            format!("{subject} cannot be judged: no request finished.")
        } else {
            format!(
                "{subject} cannot be judged: none of the {} requests got a response.",
                m.requests
            )
        };
        return result;
    };
    let shown = show(metric, observed);

    // A zero error-rate limit is judged on the count (see the module documentation).
    if metric == Metric::ErrorRate && slo.upper_limit == Some(0.0) {
        let ok = m.errors == 0 && limits.lower.is_none_or(|l| observed >= l);
        result.verdict = if ok {
            SloVerdict::Satisfied
        } else {
            SloVerdict::Violated
        };
        result.reason = if m.errors == 0 {
            format!(
                "{subject}: no error in {} requests, and a limit of 0 is judged on the error count.",
                m.requests
            )
        } else {
            format!(
                "{subject}: {} errors in {} requests break the limit of 0, which allows none.",
                m.errors, m.requests
            )
        };
        return result;
    }

    if est.exact {
        let ok = limits.contains(observed);
        result.verdict = if ok {
            SloVerdict::Satisfied
        } else {
            SloVerdict::Violated
        };
        let how = if ok { "within" } else { "outside" };
        result.reason = format!("{subject} is {shown}, {how} the limit {cond}.");
        return result;
    }

    let Some(bounds) = est.bounds else {
        result.reason = format!(
            "{subject} is {shown}, but {} samples are too few for a {level} interval.",
            m.latency.len()
        );
        return result;
    };
    let interval = show_interval(metric, bounds);
    if limits.upper.is_some_and(|u| bounds.lower > u) {
        result.verdict = SloVerdict::Violated;
        result.reason = format!(
            "{subject} is {shown}; its {level} interval {interval} lies wholly above the limit {cond}."
        );
    } else if limits.lower.is_some_and(|l| bounds.upper < l) {
        result.verdict = SloVerdict::Violated;
        result.reason = format!(
            "{subject} is {shown}; its {level} interval {interval} lies wholly below the limit {cond}."
        );
    } else if limits.upper.is_none_or(|u| bounds.upper <= u)
        && limits.lower.is_none_or(|l| bounds.lower >= l)
    {
        result.verdict = SloVerdict::Satisfied;
        result.reason = format!(
            "{subject} is {shown}; its {level} interval {interval} lies wholly within the limit {cond}."
        );
    } else {
        result.verdict = SloVerdict::Inconclusive;
        result.requests_needed = requests_needed(metric, m, observed, bounds, limits, confidence);
        // The figure itself is in `requestsNeeded`, which reports show next to the reason.
        result.reason = format!(
            "{subject} is {shown}; its {level} interval {interval} straddles the limit {cond}, so more requests are needed."
        );
    }
    result
}

/// The limits of one SLO.
#[derive(Debug, Clone, Copy)]
struct Limits {
    upper: Option<f64>,
    lower: Option<f64>,
}

impl Limits {
    fn contains(&self, v: f64) -> bool {
        self.upper.is_none_or(|u| v <= u) && self.lower.is_none_or(|l| v >= l)
    }

    fn describe(&self, metric: Metric) -> String {
        match (self.lower, self.upper) {
            (Some(l), Some(u)) => format!("{} .. {}", show(metric, l), show(metric, u)),
            (None, Some(u)) => format!("≤ {}", show(metric, u)),
            (Some(l), None) => format!("≥ {}", show(metric, l)),
            (None, None) => "(none)".to_owned(),
        }
    }
}

/// About how many requests would make the interval clear the limits it straddles.
///
/// The half-width on the limit's side shrinks like `1/√n`, so the interval stops touching
/// the limit once `n' = n · (half-width / |observed − limit|)²`. A percentile whose upper
/// rank does not exist yet needs at least the sample size that creates it. `None` when the
/// observed value sits exactly on the limit (no sample size decides it).
fn requests_needed(
    metric: Metric,
    m: &Measurement,
    observed: f64,
    bounds: Bounds,
    limits: Limits,
    confidence: f64,
) -> Option<u64> {
    if metric == Metric::ErrorRate {
        return error_rate_requests_needed(m, observed, limits, confidence);
    }
    let n = m.requests.max(1) as f64;
    let mut needed: f64 = 0.0;
    let straddled = [
        limits
            .upper
            .filter(|&u| bounds.lower <= u && bounds.upper > u),
        limits
            .lower
            .filter(|&l| bounds.upper >= l && bounds.lower < l),
    ];
    for limit in straddled.into_iter().flatten() {
        let distance = (observed - limit).abs();
        if distance == 0.0 {
            return None;
        }
        // The side of the interval that reaches across the limit.
        let half = if limit >= observed {
            bounds.upper - observed
        } else {
            observed - bounds.lower
        };
        let n_side = if half.is_finite() {
            n * (half / distance).powi(2)
        } else if let Metric::LatencyPercentile(p) = metric {
            let by_rank = stats::min_n_for_upper_bound(p / 100.0, confidence) as f64;
            by_rank * m.requests.max(1) as f64 / m.latency.len().max(1) as f64
        } else {
            return None;
        };
        needed = needed.max(n_side);
    }
    if !needed.is_finite() || needed >= u64::MAX as f64 {
        return None;
    }
    Some((needed.ceil() as u64).max(m.requests + 1))
}

/// For the error rate the Wilson interval can be computed for any sample size, so instead of
/// the `1/√n` rule (which overshoots near a rate of 0, where the width shrinks like `1/n`)
/// this finds the smallest `n'` at which the interval around the same observed rate clears
/// every limit.
fn error_rate_requests_needed(
    m: &Measurement,
    rate: f64,
    limits: Limits,
    confidence: f64,
) -> Option<u64> {
    if limits.upper == Some(rate) || limits.lower == Some(rate) {
        return None;
    }
    let decided = |n: u64| {
        let events = (rate * n as f64).round() as u64;
        stats::wilson(events, n, confidence).is_some_and(|b| {
            let clear_of = |limit: f64| b.upper < limit || b.lower > limit;
            limits.upper.is_none_or(clear_of) && limits.lower.is_none_or(clear_of)
        })
    };
    let mut high = m.requests.max(1).saturating_mul(2);
    while !decided(high) {
        if high > u64::MAX / 4 {
            return None;
        }
        high *= 2;
    }
    let mut low = m.requests;
    while high - low > 1 {
        let mid = low + (high - low) / 2;
        if decided(mid) { high = mid } else { low = mid }
    }
    Some(high.max(m.requests + 1))
}

/// The overall verdict from every SLO result, under the inconclusive `policy`.
pub fn overall(slos: &[SloResult], policy: InconclusivePolicy, confidence: f64) -> OverallVerdict {
    let level = percent(confidence);
    let total = slos.len();
    if total == 0 {
        return OverallVerdict {
            pass: true,
            reason: "No SLOs were given, so there is nothing to violate.".to_owned(),
        };
    }
    let violated: Vec<&SloResult> = slos
        .iter()
        .filter(|s| s.verdict == SloVerdict::Violated)
        .collect();
    let inconclusive: Vec<&SloResult> = slos
        .iter()
        .filter(|s| s.verdict == SloVerdict::Inconclusive)
        .collect();
    let of_total = |k: usize| {
        if total == 1 {
            "The SLO".to_owned()
        } else {
            format!("{k} of {total} SLOs")
        }
    };
    if let Some(first) = violated.first() {
        let verb = if violated.len() == 1 { "is" } else { "are" };
        return OverallVerdict {
            pass: false,
            reason: format!(
                "{} {verb} violated, first {} of {}.",
                of_total(violated.len()),
                first.metric,
                first.version
            ),
        };
    }
    if inconclusive.is_empty() {
        let subject = if total == 1 {
            "The SLO is".to_owned()
        } else {
            format!("All {total} SLOs are")
        };
        return OverallVerdict {
            pass: true,
            reason: format!("{subject} satisfied at {level} confidence."),
        };
    }
    let verb = if inconclusive.len() == 1 { "is" } else { "are" };
    let needed = inconclusive.iter().filter_map(|s| s.requests_needed).max();
    let more = match needed {
        Some(n) => format!("; about {n} requests per version would decide"),
        None => String::new(),
    };
    match policy {
        InconclusivePolicy::Fail => OverallVerdict {
            pass: false,
            reason: format!(
                "{} {verb} inconclusive at {level} confidence, which counts as a failure{more}.",
                of_total(inconclusive.len())
            ),
        },
        InconclusivePolicy::Pass => {
            let observed_ok = inconclusive.iter().all(|s| {
                s.observed.is_some_and(|v| {
                    s.upper_limit.is_none_or(|u| v <= u) && s.lower_limit.is_none_or(|l| v >= l)
                })
            });
            OverallVerdict {
                pass: observed_ok,
                reason: if observed_ok {
                    format!(
                        "{} {verb} inconclusive at {level} confidence, but the observed values are within the limits and the policy lets that pass.",
                        of_total(inconclusive.len())
                    )
                } else {
                    format!(
                        "{} {verb} inconclusive at {level} confidence with an observed value outside its limit.",
                        of_total(inconclusive.len())
                    )
                },
            }
        }
    }
}

/// `0.95` → `95%`, `0.999` → `99.9%`.
fn percent(confidence: f64) -> String {
    let p = (confidence * 1000.0).round() / 10.0;
    format!("{p}%")
}

/// A value for a reason sentence: latencies in ms, rates and counts plain, at most four
/// significant digits.
fn show(metric: Metric, v: f64) -> String {
    let digits = if v == 0.0 || v.abs() >= 1000.0 {
        0
    } else {
        (3 - v.abs().log10().floor() as i32).clamp(0, 9) as usize
    };
    let mut s = format!("{v:.digits$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_owned();
    }
    if metric.is_latency() {
        s.push_str(" ms");
    }
    s
}

fn show_interval(metric: Metric, b: Bounds) -> String {
    let upper = if b.upper.is_finite() {
        show(metric, b.upper)
    } else {
        "unbounded".to_owned()
    };
    format!("[{}, {upper}]", show(metric, b.lower))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slo(metric: &str, upper: Option<f64>, lower: Option<f64>) -> SloSpec {
        SloSpec {
            metric: metric.to_owned(),
            upper_limit: upper,
            lower_limit: lower,
            version: None,
        }
    }

    /// `n` requests with latencies spread evenly over `[base, base + spread)` ms.
    fn measured(n: u64, errors: u64, base_ms: f64, spread_ms: f64) -> Measurement {
        let mut m = Measurement::default();
        for i in 0..n {
            let ms = base_ms + spread_ms * i as f64 / n as f64;
            m.latency.record((ms * 1000.0) as u64).unwrap();
        }
        m.requests = n;
        m.errors = errors;
        m
    }

    #[test]
    fn zero_error_limit_is_judged_on_the_count() {
        let clean = measured(100, 0, 5.0, 1.0);
        let r = judge_slo(&slo("http/error-rate", Some(0.0), None), "v1", &clean, 0.95);
        assert_eq!(r.verdict, SloVerdict::Satisfied, "{}", r.reason);
        assert!(
            r.reason.contains("judged on the error count"),
            "{}",
            r.reason
        );
        // The interval is still reported: [0, 0.037].
        let i = r.interval.unwrap();
        assert_eq!(i.lower, 0.0);
        assert!((i.upper - 0.037).abs() < 1e-3);

        let one_error = measured(100, 1, 5.0, 1.0);
        let r = judge_slo(
            &slo("http/error-rate", Some(0.0), None),
            "v1",
            &one_error,
            0.95,
        );
        assert_eq!(r.verdict, SloVerdict::Violated, "{}", r.reason);
    }

    #[test]
    fn small_error_rate_limit_needs_evidence() {
        // 0 errors in 100: interval [0, 0.037] straddles 1 %.
        let m = measured(100, 0, 5.0, 1.0);
        let r = judge_slo(&slo("http/error-rate", Some(0.01), None), "v1", &m, 0.95);
        assert_eq!(r.verdict, SloVerdict::Inconclusive, "{}", r.reason);
        let needed = r.requests_needed.unwrap();
        // Wilson's upper end for 0 errors is about z²/n: 3.84 / 0.01 ≈ 380 requests.
        assert!((370..=390).contains(&needed), "{needed}");
        let m = measured(needed - 1, 0, 5.0, 1.0);
        let r = judge_slo(&slo("http/error-rate", Some(0.01), None), "v1", &m, 0.95);
        assert_eq!(r.verdict, SloVerdict::Inconclusive, "{}", r.reason);
        // With that many clean requests the interval is inside the limit.
        let m = measured(needed, 0, 5.0, 1.0);
        let r = judge_slo(&slo("http/error-rate", Some(0.01), None), "v1", &m, 0.95);
        assert_eq!(r.verdict, SloVerdict::Satisfied, "{}", r.reason);
    }

    #[test]
    fn latency_percentile_verdicts() {
        // 1000 requests evenly over 10..20 ms: p95 ≈ 19.5 ms.
        let m = measured(1000, 0, 10.0, 10.0);
        let sat = judge_slo(&slo("http/latency-p95", Some(100.0), None), "v1", &m, 0.95);
        assert_eq!(sat.verdict, SloVerdict::Satisfied, "{}", sat.reason);
        assert_eq!(sat.method, "order-statistic");
        let vio = judge_slo(&slo("http/latency-p95", Some(15.0), None), "v1", &m, 0.95);
        assert_eq!(vio.verdict, SloVerdict::Violated, "{}", vio.reason);
        assert!(vio.reason.contains("wholly above"), "{}", vio.reason);
        let inc = judge_slo(&slo("http/latency-p95", Some(19.5), None), "v1", &m, 0.95);
        assert_eq!(inc.verdict, SloVerdict::Inconclusive, "{}", inc.reason);
        assert!(inc.requests_needed.is_some_and(|n| n > 1000));
        let lower = judge_slo(&slo("http/latency-p95", None, Some(50.0)), "v1", &m, 0.95);
        assert_eq!(lower.verdict, SloVerdict::Violated, "{}", lower.reason);
    }

    #[test]
    fn high_percentile_of_small_sample_is_unbounded_and_inconclusive() {
        let m = measured(100, 0, 10.0, 10.0);
        let r = judge_slo(
            &slo("http/latency-p99.9", Some(1000.0), None),
            "v1",
            &m,
            0.95,
        );
        assert_eq!(r.verdict, SloVerdict::Inconclusive, "{}", r.reason);
        assert!(
            r.interval.is_none(),
            "no infinite number reaches the document"
        );
        assert_eq!(r.requests_needed, Some(3688));
        assert!(r.reason.contains("unbounded"), "{}", r.reason);
        assert!(
            r.reason.ends_with("so more requests are needed."),
            "{}",
            r.reason
        );
    }

    #[test]
    fn mean_uses_bootstrap() {
        let m = measured(1000, 0, 10.0, 10.0);
        let r = judge_slo(&slo("http/latency-mean", Some(50.0), None), "v1", &m, 0.95);
        assert_eq!(r.verdict, SloVerdict::Satisfied, "{}", r.reason);
        assert_eq!(r.method, "bootstrap-t");
        let i = r.interval.unwrap();
        assert!(i.lower < 15.0 && 15.0 < i.upper, "{i:?}");
    }

    #[test]
    fn no_response_is_inconclusive_without_nan() {
        let mut m = Measurement {
            requests: 50,
            errors: 50,
            ..Measurement::default()
        };
        let r = judge_slo(&slo("http/latency-p95", Some(100.0), None), "v1", &m, 0.95);
        assert_eq!(r.verdict, SloVerdict::Inconclusive);
        assert!(r.observed.is_none() && r.interval.is_none());
        assert!(r.reason.contains("none of the 50 requests"), "{}", r.reason);
        let e = judge_slo(&slo("http/error-rate", Some(0.0), None), "v1", &m, 0.95);
        assert_eq!(e.verdict, SloVerdict::Violated);
        m.requests = 0;
        m.errors = 0;
        let e = judge_slo(&slo("http/error-rate", Some(0.01), None), "v1", &m, 0.95);
        assert_eq!(e.verdict, SloVerdict::Inconclusive);
        assert!(e.reason.contains("no request finished"), "{}", e.reason);
    }

    #[test]
    fn a_saturated_load_generator_makes_latency_slos_inconclusive_not_violated() {
        let mut m = measured(1000, 0, 200.0, 10.0);
        m.saturation = Some(Saturation {
            connections_needed: 14,
            max_connections: 8,
            late_requests: 900,
        });
        let r = judge_slo(&slo("http/latency-mean", Some(50.0), None), "v1", &m, 0.95);
        assert_eq!(r.verdict, SloVerdict::Inconclusive, "{}", r.reason);
        assert!(
            r.reason
                .contains("load generator saturated: 14 connections needed"),
            "{}",
            r.reason
        );
        let p95 = judge_slo(&slo("http/latency-p95", Some(500.0), None), "v1", &m, 0.95);
        assert_eq!(p95.verdict, SloVerdict::Inconclusive, "never satisfied");
        // The error rate does not depend on the generator's queue.
        let e = judge_slo(&slo("http/error-rate", Some(0.0), None), "v1", &m, 0.95);
        assert_eq!(e.verdict, SloVerdict::Satisfied, "{}", e.reason);
    }

    #[test]
    fn counts_are_exact() {
        let m = measured(100, 3, 1.0, 1.0);
        let r = judge_slo(&slo("http/error-count", Some(2.0), None), "v1", &m, 0.95);
        assert_eq!(r.verdict, SloVerdict::Violated);
        assert_eq!(r.method, "exact");
        let r = judge_slo(
            &slo("http/request-count", None, Some(100.0)),
            "v1",
            &m,
            0.95,
        );
        assert_eq!(r.verdict, SloVerdict::Satisfied);
    }

    fn result(verdict: SloVerdict, observed: f64, upper: f64) -> SloResult {
        SloResult {
            version: "v1".into(),
            metric: "http/latency-p95".into(),
            upper_limit: Some(upper),
            lower_limit: None,
            observed: Some(observed),
            interval: None,
            verdict,
            requests_needed: Some(5000),
            method: "order-statistic".into(),
            reason: String::new(),
        }
    }

    #[test]
    fn overall_policy() {
        use SloVerdict::*;
        let fail = InconclusivePolicy::Fail;
        let pass = InconclusivePolicy::Pass;
        let all_ok = [result(Satisfied, 1.0, 2.0), result(Satisfied, 1.0, 2.0)];
        let v = overall(&all_ok, fail, 0.95);
        assert!(v.pass);
        assert_eq!(v.reason, "All 2 SLOs are satisfied at 95% confidence.");
        let one_bad = [result(Satisfied, 1.0, 2.0), result(Violated, 3.0, 2.0)];
        let v = overall(&one_bad, pass, 0.95);
        assert!(!v.pass);
        assert!(
            v.reason.starts_with("1 of 2 SLOs is violated"),
            "{}",
            v.reason
        );
        let unsure = [result(Satisfied, 1.0, 2.0), result(Inconclusive, 1.9, 2.0)];
        let v = overall(&unsure, fail, 0.95);
        assert!(!v.pass);
        assert!(v.reason.contains("about 5000 requests"), "{}", v.reason);
        assert!(overall(&unsure, pass, 0.95).pass);
        let unsure_over = [result(Inconclusive, 2.1, 2.0)];
        assert!(!overall(&unsure_over, pass, 0.95).pass);
        assert!(overall(&[], fail, 0.95).pass);
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(show(Metric::LatencyMean, 12.3456), "12.35 ms");
        assert_eq!(show(Metric::ErrorRate, 0.036994), "0.03699");
        assert_eq!(show(Metric::ErrorRate, 0.0), "0");
        assert_eq!(show(Metric::LatencyMax, 1234.6), "1235 ms");
        assert_eq!(percent(0.999), "99.9%");
    }
}
