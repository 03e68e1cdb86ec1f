//! Confidence intervals for the metrics an SLO can judge.
//!
//! Every interval here is two-sided at a confidence level `c` (0.95 by default): each end is
//! wrong with probability at most `(1 - c) / 2`, so a verdict against one limit is wrong with
//! at most that probability.
//!
//! - **Error rate**: the Wilson score interval ([`wilson`]). Unlike the textbook `p ± z·se`
//!   interval it never leaves `[0, 1]` and stays useful when no error at all was seen.
//! - **Percentile** (p50, p95, p99.9 …): a distribution-free order-statistic interval
//!   ([`percentile_interval`]). The number of samples below the true q-quantile is
//!   Binomial(n, q), so the sorted samples at two ranks chosen from that binomial bracket the
//!   true quantile with the wanted confidence, whatever the latency distribution looks like.
//!   Ranks map to histogram values conservatively (lower end down, upper end up to the edge
//!   of its HdrHistogram bucket). When n is too small for the upper rank to exist, the upper
//!   end is unbounded.
//! - **Mean and standard deviation**: a bootstrap over the histogram ([`bootstrap`]).
//!   Latencies are skewed with heavy right tails, where the normal `mean ± z·se` interval is
//!   too short on the right. The studentized ("bootstrap-t") interval for the mean corrects
//!   for that skew; the standard deviation gets the percentile bootstrap. Resampling draws
//!   whole histogram groups with a fixed seed, so the same histogram always gives the same
//!   interval.

use hdrhistogram::Histogram;
use rand_distr::{Binomial, Distribution};
use rand_pcg::Pcg64;
use rand_pcg::rand_core::SeedableRng;
use statrs::distribution::{Binomial as BinomialDist, ContinuousCDF, DiscreteCDF, Normal};

/// Bootstrap resamples drawn for each histogram.
pub const BOOTSTRAP_RESAMPLES: usize = 1000;
/// Seed of the bootstrap generator: fixed so a result document can be reproduced exactly.
pub const BOOTSTRAP_SEED: u64 = 0x510_6a7e;
/// Relative width of the groups the bootstrap resamples (1 %): far below any SLO's margin,
/// and it bounds the work per resample to a few hundred groups however long the run.
const BOOTSTRAP_GROUP_WIDTH: f64 = 0.01;

/// A confidence interval whose ends may be unbounded (`±inf`).
///
/// This stays inside the core: the result document only ever holds finite intervals.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    /// Lower end; may be `-inf`.
    pub lower: f64,
    /// Upper end; may be `+inf`.
    pub upper: f64,
}

impl Bounds {
    /// Whether both ends are finite numbers.
    pub fn is_finite(&self) -> bool {
        self.lower.is_finite() && self.upper.is_finite()
    }
}

/// The standard normal quantile `z` with `P(|Z| ≤ z) = confidence` (1.96 at 0.95).
pub fn z_two_sided(confidence: f64) -> f64 {
    standard_normal().inverse_cdf(1.0 - (1.0 - confidence) / 2.0)
}

fn standard_normal() -> Normal {
    Normal::standard()
}

/// Wilson score interval for a proportion: `events` out of `n` trials.
///
/// Returns `None` when `n` is 0 (nothing to estimate).
pub fn wilson(events: u64, n: u64, confidence: f64) -> Option<Bounds> {
    if n == 0 {
        return None;
    }
    let n_f = n as f64;
    let p = events as f64 / n_f;
    let z = z_two_sided(confidence);
    let z2 = z * z;
    let denom = 1.0 + z2 / n_f;
    let centre = (p + z2 / (2.0 * n_f)) / denom;
    let half = z / denom * (p * (1.0 - p) / n_f + z2 / (4.0 * n_f * n_f)).sqrt();
    // At p = 0 or 1 the formula gives the end exactly; clamping only removes rounding noise.
    let lower = if events == 0 {
        0.0
    } else {
        (centre - half).max(0.0)
    };
    let upper = if events == n {
        1.0
    } else {
        (centre + half).min(1.0)
    };
    Some(Bounds { lower, upper })
}

/// Ranks (1-based, in the sorted sample) that bracket the `q`-quantile of a sample of `n`.
///
/// With `B ~ Binomial(n, q)` the number of samples below the true quantile,
/// `P(X(l) ≤ ξq ≤ X(u)) = P(l ≤ B ≤ u − 1)`. `l − 1` is the largest `k` with
/// `P(B ≤ k) ≤ α/2` and `u − 1` the smallest `k` with `P(B ≤ k) ≥ 1 − α/2`. A rank of `None`
/// means that end does not exist in a sample this small (the interval is unbounded there).
pub fn order_statistic_ranks(n: u64, q: f64, confidence: f64) -> (Option<u64>, Option<u64>) {
    if n == 0 {
        return (None, None);
    }
    let tail = (1.0 - confidence) / 2.0;
    let Ok(binomial) = BinomialDist::new(q.clamp(0.0, 1.0), n) else {
        return (None, None);
    };
    let cdf = |k: u64| binomial.cdf(k);
    // Smallest k with cdf(k) > tail; then l − 1 = k − 1, so l = k. cdf is increasing in k.
    let first_above = |target: f64, strict: bool| -> u64 {
        let (mut lo, mut hi) = (0u64, n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let c = cdf(mid);
            let ok = if strict { c > target } else { c >= target };
            if ok { hi = mid } else { lo = mid + 1 }
        }
        lo
    };
    // If even P(B ≤ 0) > tail, no rank ≥ 1 works and the lower end is unbounded.
    let k_low = first_above(tail, true);
    let lower = (k_low >= 1).then_some(k_low);
    // cdf(n) = 1 always, so the search finds some k ≤ n; u = k + 1 may exceed n.
    let k_up = first_above(1.0 - tail, false);
    let upper = (k_up < n).then_some(k_up + 1);
    (lower, upper)
}

/// Smallest sample size for which the upper order-statistic rank of the `q`-quantile exists:
/// `1 − q^n ≥ 1 − α/2`, i.e. `n ≥ ln(α/2) / ln(q)`.
pub fn min_n_for_upper_bound(q: f64, confidence: f64) -> u64 {
    let tail = (1.0 - confidence) / 2.0;
    if q <= 0.0 {
        return 1;
    }
    if q >= 1.0 {
        return u64::MAX;
    }
    (tail.ln() / q.ln()).ceil().max(1.0) as u64
}

/// The latency value (µs) of the sample at 1-based `rank` in the histogram's sorted order:
/// the whole HdrHistogram bucket it fell in, as `(lowest, highest)` equivalent values.
fn value_at_rank(hist: &Histogram<u64>, rank: u64) -> Option<(u64, u64)> {
    let mut seen = 0u64;
    for item in hist.iter_recorded() {
        seen += item.count_at_value();
        if seen >= rank {
            let v = item.value_iterated_to();
            return Some((hist.lowest_equivalent(v), hist.highest_equivalent(v)));
        }
    }
    None
}

/// Order-statistic confidence interval of the `q`-quantile (0 < q ≤ 1) of a latency
/// histogram in microseconds, returned in milliseconds.
///
/// Returns `None` for an empty histogram. A missing lower rank gives 0 (latency is never
/// negative); a missing upper rank gives `+inf`.
pub fn percentile_interval(hist: &Histogram<u64>, q: f64, confidence: f64) -> Option<Bounds> {
    let n = hist.len();
    if n == 0 {
        return None;
    }
    let (l, u) = order_statistic_ranks(n, q, confidence);
    let lower = match l {
        Some(rank) => value_at_rank(hist, rank).map_or(0.0, |(low, _)| low as f64 / 1000.0),
        None => 0.0,
    };
    let upper = match u {
        Some(rank) => value_at_rank(hist, rank).map_or(f64::INFINITY, |(_, high)| {
            // highest_equivalent is inclusive; + 1 µs makes the end cover the whole bucket.
            (high + 1) as f64 / 1000.0
        }),
        None => f64::INFINITY,
    };
    Some(Bounds { lower, upper })
}

/// Bootstrap intervals of a latency histogram's mean and standard deviation, in ms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BootstrapIntervals {
    /// Studentized bootstrap interval of the mean.
    pub mean: Bounds,
    /// Percentile bootstrap interval of the standard deviation.
    pub stddev: Bounds,
}

/// A group of nearby histogram values resampled as one: count and its mean value in ms.
#[derive(Debug, Clone, Copy)]
struct Group {
    count: u64,
    value_ms: f64,
}

/// Merges the histogram's recorded values into groups at most 1 % wide.
fn groups(hist: &Histogram<u64>) -> Vec<Group> {
    let mut out: Vec<Group> = Vec::new();
    let mut start = 0.0f64;
    let mut sum = 0.0f64;
    let mut count = 0u64;
    for item in hist.iter_recorded() {
        let c = item.count_at_value();
        let v = hist.median_equivalent(item.value_iterated_to()) as f64 / 1000.0;
        if count > 0 && v > start * (1.0 + BOOTSTRAP_GROUP_WIDTH) {
            out.push(Group {
                count,
                value_ms: sum / count as f64,
            });
            count = 0;
            sum = 0.0;
        }
        if count == 0 {
            start = v;
        }
        count += c;
        sum += v * c as f64;
    }
    if count > 0 {
        out.push(Group {
            count,
            value_ms: sum / count as f64,
        });
    }
    out
}

/// Mean and sample standard deviation of grouped data.
fn moments(groups: &[Group], counts: impl Iterator<Item = u64>) -> (f64, f64, u64) {
    let mut n = 0u64;
    let mut sum = 0.0;
    let mut sum_sq = 0.0;
    for (g, c) in groups.iter().zip(counts) {
        n += c;
        sum += g.value_ms * c as f64;
        sum_sq += g.value_ms * g.value_ms * c as f64;
    }
    if n == 0 {
        return (0.0, 0.0, 0);
    }
    let mean = sum / n as f64;
    let var = if n > 1 {
        ((sum_sq - n as f64 * mean * mean) / (n as f64 - 1.0)).max(0.0)
    } else {
        0.0
    };
    (mean, var.sqrt(), n)
}

/// Empirical quantile (linear interpolation between order statistics) of sorted data.
fn quantile_sorted(sorted: &[f64], p: f64) -> f64 {
    let pos = p * (sorted.len() - 1) as f64;
    let i = pos.floor() as usize;
    let frac = pos - i as f64;
    match sorted.get(i + 1) {
        Some(next) => sorted[i] + frac * (next - sorted[i]),
        None => sorted[i],
    }
}

/// Bootstrap intervals of the mean (bootstrap-t) and standard deviation (percentile) of a
/// latency histogram in µs, at `confidence`; results in ms.
///
/// Each resample draws n values with replacement from the histogram's groups (a multinomial
/// draw, done as a chain of binomials so a resample costs one draw per group, not per
/// request). Returns `None` with fewer than two samples or fewer than half of the resamples
/// usable (a resample with zero spread has no studentized value).
pub fn bootstrap(hist: &Histogram<u64>, confidence: f64) -> Option<BootstrapIntervals> {
    let groups = groups(hist);
    let (mean, sd, n) = moments(&groups, groups.iter().map(|g| g.count));
    if n < 2 {
        return None;
    }
    if groups.len() == 1 {
        // Every request fell within 1 % of one value: the spread is below what the
        // histogram resolves, so the interval is the value's own bucket.
        let low = hist.lowest_equivalent(hist.min()) as f64 / 1000.0;
        let high = (hist.highest_equivalent(hist.max()) + 1) as f64 / 1000.0;
        return Some(BootstrapIntervals {
            mean: Bounds {
                lower: low,
                upper: high,
            },
            stddev: Bounds {
                lower: 0.0,
                upper: high - low,
            },
        });
    }
    let se = sd / (n as f64).sqrt();
    let mut rng = Pcg64::seed_from_u64(BOOTSTRAP_SEED);
    let mut t_stats = Vec::with_capacity(BOOTSTRAP_RESAMPLES);
    let mut sds = Vec::with_capacity(BOOTSTRAP_RESAMPLES);
    let mut counts = vec![0u64; groups.len()];
    for _ in 0..BOOTSTRAP_RESAMPLES {
        let mut remaining_n = n;
        let mut remaining_count = n;
        for (slot, g) in counts.iter_mut().zip(&groups) {
            let draw = if remaining_n == 0 || g.count >= remaining_count {
                remaining_n
            } else {
                let p = g.count as f64 / remaining_count as f64;
                Binomial::new(remaining_n, p).map_or(0, |b| b.sample(&mut rng))
            };
            *slot = draw;
            remaining_n -= draw;
            remaining_count -= g.count;
        }
        let (m_b, sd_b, _) = moments(&groups, counts.iter().copied());
        sds.push(sd_b);
        if sd_b > 0.0 {
            t_stats.push((m_b - mean) / (sd_b / (n as f64).sqrt()));
        }
    }
    if t_stats.len() < BOOTSTRAP_RESAMPLES / 2 {
        return None;
    }
    t_stats.sort_by(f64::total_cmp);
    sds.sort_by(f64::total_cmp);
    let tail = (1.0 - confidence) / 2.0;
    let t_low = quantile_sorted(&t_stats, tail);
    let t_high = quantile_sorted(&t_stats, 1.0 - tail);
    Some(BootstrapIntervals {
        // Studentized: the upper end uses the lower t quantile and vice versa.
        mean: Bounds {
            lower: (mean - t_high * se).max(0.0),
            upper: mean - t_low * se,
        },
        stddev: Bounds {
            lower: quantile_sorted(&sds, tail),
            upper: quantile_sorted(&sds, 1.0 - tail),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::new_latency_histogram;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn z_matches_tables() {
        assert!(close(z_two_sided(0.95), 1.959_964, 1e-6));
        assert!(close(z_two_sided(0.99), 2.575_829, 1e-6));
        assert!(close(z_two_sided(0.90), 1.644_854, 1e-6));
    }

    #[test]
    fn wilson_zero_of_hundred_at_95() {
        // Known value: 0/100 → [0, 0.0370].
        let b = wilson(0, 100, 0.95).unwrap();
        assert_eq!(b.lower, 0.0);
        assert!(close(b.upper, 0.036_994, 1e-5), "{}", b.upper);
    }

    #[test]
    fn wilson_ten_of_hundred_at_95() {
        // Known value: 10/100 → [0.0552, 0.1744].
        let b = wilson(10, 100, 0.95).unwrap();
        assert!(close(b.lower, 0.055_2, 1e-4), "{}", b.lower);
        assert!(close(b.upper, 0.174_4, 1e-4), "{}", b.upper);
    }

    #[test]
    fn wilson_all_events_reaches_one() {
        let b = wilson(20, 20, 0.95).unwrap();
        assert_eq!(b.upper, 1.0);
        assert!(b.lower < 1.0 && b.lower > 0.8);
        assert!(wilson(0, 0, 0.95).is_none());
    }

    /// Exact binomial CDF by summation, independent of statrs.
    fn exact_cdf(n: u64, q: f64, k: u64) -> f64 {
        let mut log_c = 0.0f64; // ln C(n, 0)
        let mut total = 0.0;
        for i in 0..=k {
            if i > 0 {
                log_c += ((n - i + 1) as f64).ln() - (i as f64).ln();
            }
            total += (log_c + i as f64 * q.ln() + (n - i) as f64 * (1.0 - q).ln()).exp();
        }
        total
    }

    #[test]
    fn order_statistic_ranks_n1000_p95() {
        let (l, u) = order_statistic_ranks(1000, 0.95, 0.95);
        let (l, u) = (l.unwrap(), u.unwrap());
        // Normal approximation: 950 ± 1.96 · 6.89 → about 936 .. 964; exact: 936 and 964.
        assert_eq!((l, u), (936, 964));
        // Coverage P(l ≤ B ≤ u − 1) is at least 95 %, and each end is as tight as allowed.
        assert!(exact_cdf(1000, 0.95, l - 1) <= 0.025);
        assert!(exact_cdf(1000, 0.95, l) > 0.025);
        assert!(exact_cdf(1000, 0.95, u - 1) >= 0.975);
        assert!(exact_cdf(1000, 0.95, u - 2) < 0.975);
        let coverage = exact_cdf(1000, 0.95, u - 1) - exact_cdf(1000, 0.95, l - 1);
        assert!(coverage >= 0.95, "{coverage}");
    }

    #[test]
    fn order_statistic_upper_rank_needs_enough_samples() {
        // p99.9 at 95 %: ln(0.025)/ln(0.999) ≈ 3687.03, so 3688 samples before an upper end exists.
        assert_eq!(min_n_for_upper_bound(0.999, 0.95), 3688);
        assert_eq!(order_statistic_ranks(3687, 0.999, 0.95).1, None);
        assert_eq!(order_statistic_ranks(3688, 0.999, 0.95).1, Some(3688));
        assert_eq!(order_statistic_ranks(10, 0.5, 0.95), (Some(2), Some(9)));
    }

    #[test]
    fn percentile_interval_brackets_known_values() {
        // 1000 samples: 1 ms, 2 ms … 1000 ms. True p95 ≈ 950 ms.
        let mut h = new_latency_histogram();
        for i in 1..=1000u64 {
            h.record(i * 1000).unwrap();
        }
        let b = percentile_interval(&h, 0.95, 0.95).unwrap();
        assert!(b.lower <= 936.0 && b.lower > 935.0, "{b:?}");
        assert!(b.upper >= 964.0 && b.upper < 965.0, "{b:?}");
    }

    #[test]
    fn bootstrap_mean_interval_covers_and_is_skewed_right() {
        // Exponential-like latencies: many fast, a long slow tail.
        let mut h = new_latency_histogram();
        for i in 0..2000u64 {
            let u = (i as f64 + 0.5) / 2000.0;
            let ms = -10.0 * (1.0 - u).ln();
            h.record((ms * 1000.0) as u64 + 1).unwrap();
        }
        let mean = h.mean() / 1000.0;
        let b = bootstrap(&h, 0.95).unwrap();
        assert!(b.mean.lower < mean && mean < b.mean.upper, "{b:?} {mean}");
        // Right skew: the interval reaches further above the mean than below it.
        assert!(b.mean.upper - mean > mean - b.mean.lower, "{b:?} {mean}");
        // And it is about as wide as ±1.96·sd/√n.
        let half = 1.96 * h.stdev() / 1000.0 / (2000f64).sqrt();
        assert!(((b.mean.upper - b.mean.lower) / (2.0 * half) - 1.0).abs() < 0.25);
        // Same histogram, same interval: the seed is fixed.
        assert_eq!(bootstrap(&h, 0.95).unwrap(), b);
        let sd = h.stdev() / 1000.0;
        assert!(b.stddev.lower < sd && sd < b.stddev.upper, "{b:?} {sd}");
    }

    #[test]
    fn bootstrap_needs_two_samples() {
        let mut h = new_latency_histogram();
        assert!(bootstrap(&h, 0.95).is_none());
        h.record(5000).unwrap();
        assert!(bootstrap(&h, 0.95).is_none());
        h.record(5000).unwrap();
        let b = bootstrap(&h, 0.95).unwrap();
        assert!(b.mean.lower <= 5.0 && b.mean.upper > 5.0);
    }
}
