//! Confidence bounds for the metrics an SLO can judge.
//!
//! An SLO's limit is one-sided ("p95 ≤ 200 ms"), so every metric gets two **one-sided
//! bounds at the confidence level `c`** (0.95 by default): the true value is at most the
//! upper bound with probability at least `c`, and at least the lower bound with probability
//! at least `c`. An upper limit is satisfied when the upper bound is within it and violated
//! when the lower bound is beyond it, so each verdict is wrong with probability at most
//! `1 − c`. Together the two bounds form a two-sided interval at level `2c − 1`.
//!
//! - **Error rate**: exact Clopper–Pearson bounds ([`clopper_pearson`]), from the beta
//!   quantiles of the binomial. They hold for every n and every rate, including 0 or 1 error.
//! - **Percentile** (p50, p95, p99.9 …): distribution-free order-statistic bounds
//!   ([`percentile_bounds`]). The number of samples below the true q-quantile is
//!   Binomial(n, q), so the sample at a rank chosen from that binomial bounds the quantile
//!   whatever the latency distribution. Ranks map to histogram values conservatively (lower
//!   bound down, upper bound up to the edge of its HdrHistogram bucket). When n is too small
//!   for a rank to exist, that bound is unbounded.
//! - **Mean** ([`mean_bounds`]): a studentized bootstrap ("bootstrap-t") over the histogram.
//!   Every resample counts, including those without spread (a floor on their standard error
//!   stands in for the spread the histogram cannot resolve); dropping them, as a naive
//!   bootstrap-t does, removes exactly the resamples that miss the slow outliers and
//!   collapses the upper bound. Below [`MEAN_MIN_SAMPLES`] samples there are no bounds: the
//!   SLO is inconclusive. When the sample is so skewed that fewer than
//!   [`MEAN_SKEW_FACTOR`]·g1² samples were seen (Cochran's rule, g1 the sample skewness),
//!   the bootstrap's normal-theory studentization cannot be trusted, and from
//!   [`MEAN_CANTELLI_MIN_SAMPLES`] samples on the bounds are Cantelli's instead: `mean ± k·s/√n` with `k = √(c / (1 − c))` (4.36 at 0.95), which
//!   hold for any distribution with that spread. They are wide (about 2.6 times the
//!   bootstrap's), so a mean far from its limit is still decided on a small skewed sample,
//!   and one near it needs more requests.
//! - **Standard deviation** ([`stddev_bounds`]): a lower bound only, from a bootstrap-t of
//!   `ln s` studentized with the sample kurtosis. No upper bound studied (percentile
//!   bootstrap, bootstrap-t of `ln s`) holds its level on log-normal latencies up to
//!   n = 10,000, so an upper limit on it is never satisfied: judge a percentile instead.
//!   Below [`STDDEV_MIN_SAMPLES`] samples, or fewer than [`STDDEV_KURTOSIS_FACTOR`] times
//!   the sample kurtosis, there are no bounds.
//!
//! The bootstrap draws `max(2000, 100 / (1 − c))` resamples ([`bootstrap_resamples`]) with a
//! fixed seed, so the same histogram always gives the same bounds, and the `1 − c` tail
//! holds at least 100 resamples. Levels that would need more than
//! [`BOOTSTRAP_MAX_RESAMPLES`] are refused ([`Unsupported::LevelTooHigh`]).
//!
//! **Relative SLOs** compare a candidate with the baseline on a [`Contrast`] (difference or
//! ratio), with two-sample one-sided bounds at the same level:
//!
//! - error rate: Newcombe's hybrid score interval of the difference of two proportions
//!   ([`newcombe_difference`]);
//! - percentile: each version's order-statistic bounds at `1 − (1 − c)/2`, combined
//!   (Bonferroni, [`percentile_contrast_bounds`]): distribution-free at every n;
//! - mean: a two-sample bootstrap-t, each version resampled on its own
//!   ([`mean_contrast_bounds`]).
//!
//! The coverage of every bound is measured by `crates/core/tests/coverage.rs` (`make stats`).

use hdrhistogram::Histogram;
use rand_distr::{Binomial, Distribution, Uniform};
use rand_pcg::Pcg64;
use rand_pcg::rand_core::SeedableRng;
use statrs::distribution::{Beta, Binomial as BinomialDist, ContinuousCDF, DiscreteCDF, Normal};

/// Fewest bootstrap resamples drawn for a histogram.
pub const BOOTSTRAP_MIN_RESAMPLES: usize = 2000;
/// Resamples the `1 − c` tail must hold for its quantile to be estimated at all.
pub const BOOTSTRAP_TAIL_RESAMPLES: f64 = 100.0;
/// Most bootstrap resamples drawn; a level needing more is refused. 100,000 resolve 99.9 %,
/// the per-look level of a loop of up to 50 looks at 95 % ([`crate::looks`]).
pub const BOOTSTRAP_MAX_RESAMPLES: usize = 100_000;
/// Seed of the bootstrap generator: fixed so a result document can be reproduced exactly.
pub const BOOTSTRAP_SEED: u64 = 0x510_6a7e;
/// Fewest samples for bounds of the mean (the coverage study's smallest supported size).
pub const MEAN_MIN_SAMPLES: u64 = 30;
/// Cochran's rule for the mean: at least this many times the squared sample skewness.
pub const MEAN_SKEW_FACTOR: f64 = 25.0;
/// Fewest samples for Cantelli's bounds of a mean too skewed for the bootstrap: below it, a
/// heavy-tailed sample often has not yet seen the tail that sets the mean and its spread
/// (log-normal σ = 1.5 at n = 30 covers only about 93 %).
pub const MEAN_CANTELLI_MIN_SAMPLES: u64 = 100;
/// Fewest samples for bounds of the standard deviation.
pub const STDDEV_MIN_SAMPLES: u64 = 30;
/// Samples needed for the standard deviation, per unit of sample kurtosis.
pub const STDDEV_KURTOSIS_FACTOR: f64 = 10.0;
/// Relative width of the groups the bootstrap resamples (2 %): each group keeps its exact
/// count and mean, so the mean is unchanged and the spread loses at most 0.02²/12 of its
/// relative variance; it bounds the work per resample to a few hundred groups however
/// long the run.
const BOOTSTRAP_GROUP_WIDTH: f64 = 0.02;
/// Relative resolution of the latency histogram (3 significant digits): the smallest spread
/// it can show, used as the floor of a resample's standard deviation.
const HISTOGRAM_RESOLUTION: f64 = 1e-3;

/// One-sided confidence bounds whose ends may be unbounded (`±inf`).
///
/// This stays inside the core: the result document only ever holds finite bounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    /// Lower bound at the level; may be `-inf`.
    pub lower: f64,
    /// Upper bound at the level; may be `+inf`.
    pub upper: f64,
}

impl Bounds {
    /// Whether both ends are finite numbers.
    pub fn is_finite(&self) -> bool {
        self.lower.is_finite() && self.upper.is_finite()
    }
}

/// Why a method gives no bounds for a histogram.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Unsupported {
    /// The sample is smaller than the method supports; `needed` samples would do.
    TooFewSamples {
        /// Smallest sample size the method would judge (for this sample's shape).
        needed: u64,
    },
    /// The level is beyond what the resample count can resolve.
    LevelTooHigh {
        /// Highest level the method supports.
        highest: f64,
    },
}

/// The standard normal quantile `z` with `P(Z ≤ z) = p` (1.645 at 0.95).
pub fn z_one_sided(p: f64) -> f64 {
    Normal::standard().inverse_cdf(p)
}

/// Exact one-sided Clopper–Pearson bounds at `confidence` for a proportion: `events` out of
/// `n` trials. The lower bound is the `1 − c` quantile of Beta(x, n − x + 1), the upper the
/// `c` quantile of Beta(x + 1, n − x).
///
/// Returns `None` when `n` is 0 (nothing to estimate).
pub fn clopper_pearson(events: u64, n: u64, confidence: f64) -> Option<Bounds> {
    if n == 0 {
        return None;
    }
    let (x, n_f) = (events.min(n) as f64, n as f64);
    let lower = if events == 0 {
        0.0
    } else {
        Beta::new(x, n_f - x + 1.0).map_or(0.0, |b| b.inverse_cdf(1.0 - confidence))
    };
    let upper = if events >= n {
        1.0
    } else {
        Beta::new(x + 1.0, n_f - x).map_or(1.0, |b| b.inverse_cdf(confidence))
    };
    Some(Bounds {
        lower: lower.clamp(0.0, 1.0),
        upper: upper.clamp(0.0, 1.0),
    })
}

/// Ranks (1-based, in the sorted sample) of the one-sided bounds of the `q`-quantile of a
/// sample of `n` at `confidence`.
///
/// With `B ~ Binomial(n, q)` the number of samples below the true quantile,
/// `P(X(l) ≤ ξq) = P(B ≥ l)` and `P(X(u) ≥ ξq) = P(B ≤ u − 1)`. `l` is the largest rank with
/// `P(B ≤ l − 1) ≤ 1 − c` and `u` the smallest with `P(B ≤ u − 1) ≥ c`. A rank of `None`
/// means that bound does not exist in a sample this small (it is unbounded).
pub fn order_statistic_ranks(n: u64, q: f64, confidence: f64) -> (Option<u64>, Option<u64>) {
    if n == 0 {
        return (None, None);
    }
    let Ok(binomial) = BinomialDist::new(q.clamp(0.0, 1.0), n) else {
        return (None, None);
    };
    let cdf = |k: u64| binomial.cdf(k);
    // Smallest k in 0..=n whose cdf passes `target`; cdf is increasing in k and cdf(n) = 1.
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
    // The largest k with cdf(k) ≤ 1 − c is first_above(1 − c) − 1, and l = k + 1.
    let k_low = first_above(1.0 - confidence, true);
    let lower = (k_low >= 1).then_some(k_low);
    let k_up = first_above(confidence, false);
    let upper = (k_up < n).then_some(k_up + 1);
    (lower, upper)
}

/// Smallest sample size for which the upper order-statistic bound of the `q`-quantile
/// exists: `1 − q^n ≥ c`, i.e. `n ≥ ln(1 − c) / ln(q)`. With `1 − q` in place of `q` it is the
/// size from which the lower bound exists.
pub fn min_n_for_upper_bound(q: f64, confidence: f64) -> u64 {
    if q <= 0.0 {
        return 1;
    }
    if q >= 1.0 {
        return u64::MAX;
    }
    ((1.0 - confidence).ln() / q.ln()).ceil().max(1.0) as u64
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

/// One-sided order-statistic bounds of the `q`-quantile (0 < q ≤ 1) of a latency histogram
/// in microseconds, returned in milliseconds.
///
/// Returns `None` for an empty histogram. A missing lower rank gives 0 (latency is never
/// negative); a missing upper rank gives `+inf`.
pub fn percentile_bounds(hist: &Histogram<u64>, q: f64, confidence: f64) -> Option<Bounds> {
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
            // highest_equivalent is inclusive; + 1 µs makes the bound cover the whole bucket.
            (high + 1) as f64 / 1000.0
        }),
        None => f64::INFINITY,
    };
    Some(Bounds { lower, upper })
}

/// Share of latencies at or below `limit_ms` estimated from a histogram: `(k + ½) / (n + 1)`
/// with `k` the samples whose whole bucket is at or below it. The half sample keeps the
/// estimate off 0 and 1, where a sample that saw nothing beyond the limit would claim the
/// tail is empty.
pub fn fraction_at_or_below(hist: &Histogram<u64>, limit_ms: f64) -> f64 {
    let n = hist.len();
    let below: u64 = hist
        .iter_recorded()
        .filter(|item| {
            let high = hist.highest_equivalent(item.value_iterated_to());
            (high + 1) as f64 / 1000.0 <= limit_ms
        })
        .map(|item| item.count_at_value())
        .sum();
    (below as f64 + 0.5) / (n as f64 + 1.0)
}

/// How many bootstrap resamples a level needs: `max(2000, 100 / (1 − c))`, or `None` when
/// that is more than [`BOOTSTRAP_MAX_RESAMPLES`].
pub fn bootstrap_resamples(confidence: f64) -> Option<usize> {
    // The relative nudge keeps a level like 1 − 0.05/50, rounded a hair below 0.999, at
    // exactly the count 0.999 needs.
    let needed = (BOOTSTRAP_TAIL_RESAMPLES / (1.0 - confidence) * (1.0 - 1e-12)).ceil();
    (needed.is_finite() && needed <= BOOTSTRAP_MAX_RESAMPLES as f64)
        .then(|| (needed as usize).max(BOOTSTRAP_MIN_RESAMPLES))
}

/// The highest level the bootstrap supports (0.999).
pub fn highest_bootstrap_confidence() -> f64 {
    1.0 - BOOTSTRAP_TAIL_RESAMPLES / BOOTSTRAP_MAX_RESAMPLES as f64
}

/// A group of nearby histogram values resampled as one: count and its mean value in ms.
#[derive(Debug, Clone, Copy)]
struct Group {
    count: u64,
    value_ms: f64,
}

/// Merges the histogram's recorded values into groups at most 2 % wide.
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

/// Moments of grouped data with `counts` per group.
#[derive(Debug, Clone, Copy)]
struct Moments {
    n: u64,
    mean: f64,
    /// Sample standard deviation (n − 1 in the denominator).
    sd: f64,
    /// Sample skewness g1 (moment estimator); 0 without spread.
    skewness: f64,
    /// Sample kurtosis m4 / m2² (3 for a normal distribution); 1 without spread.
    kurtosis: f64,
}

fn moments(groups: &[Group], counts: &[u64]) -> Moments {
    let n: u64 = counts.iter().sum();
    if n == 0 {
        return Moments {
            n,
            mean: 0.0,
            sd: 0.0,
            skewness: 0.0,
            kurtosis: 1.0,
        };
    }
    let n_f = n as f64;
    let mean = groups
        .iter()
        .zip(counts)
        .map(|(g, &c)| g.value_ms * c as f64)
        .sum::<f64>()
        / n_f;
    let (mut m2, mut m3, mut m4) = (0.0, 0.0, 0.0);
    for (g, &c) in groups.iter().zip(counts) {
        let d = g.value_ms - mean;
        let d2 = d * d;
        let w = c as f64;
        m2 += w * d2;
        m3 += w * d2 * d;
        m4 += w * d2 * d2;
    }
    let (m2, m3, m4) = (m2 / n_f, m3 / n_f, m4 / n_f);
    let sd = if n > 1 {
        (m2 * n_f / (n_f - 1.0)).sqrt()
    } else {
        0.0
    };
    let (skewness, kurtosis) = if m2 > 0.0 {
        (m3 / m2.powf(1.5), m4 / (m2 * m2))
    } else {
        (0.0, 1.0)
    };
    Moments {
        n,
        mean,
        sd,
        skewness,
        kurtosis,
    }
}

/// Draws one resample of `n` values from `groups` into `counts`: a multinomial draw, as a
/// chain of binomials (one draw per group) or, when the sample is smaller than the number
/// of groups, as `n` single draws.
fn resample(groups: &[Group], cumulative: &[u64], n: u64, rng: &mut Pcg64, counts: &mut [u64]) {
    if (n as usize) < groups.len() {
        counts.fill(0);
        let pick = Uniform::new(0, n).expect("n > 0");
        for _ in 0..n {
            let r = pick.sample(rng);
            let i = cumulative.partition_point(|&c| c <= r);
            counts[i] += 1;
        }
        return;
    }
    let mut remaining_n = n;
    let mut remaining_count = n;
    for (slot, g) in counts.iter_mut().zip(groups) {
        let draw = if remaining_n == 0 || g.count >= remaining_count {
            remaining_n
        } else {
            let p = g.count as f64 / remaining_count as f64;
            Binomial::new(remaining_n, p).map_or(0, |b| b.sample(rng))
        };
        *slot = draw;
        remaining_n -= draw;
        remaining_count -= g.count;
    }
}

/// The studentized statistic of each of `resamples` bootstrap resamples, sorted.
fn bootstrap_t(
    groups: &[Group],
    n: u64,
    resamples: usize,
    statistic: impl Fn(&Moments) -> (f64, f64),
    centre: f64,
) -> Vec<f64> {
    let mut rng = Pcg64::seed_from_u64(BOOTSTRAP_SEED);
    let cumulative: Vec<u64> = groups
        .iter()
        .scan(0u64, |acc, g| {
            *acc += g.count;
            Some(*acc)
        })
        .collect();
    let mut counts = vec![0u64; groups.len()];
    let mut t = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        resample(groups, &cumulative, n, &mut rng, &mut counts);
        let (value, se) = statistic(&moments(groups, &counts));
        t.push((value - centre) / se);
    }
    t.sort_by(f64::total_cmp);
    t
}

/// The `(t_low, t_high)` studentized quantiles for one-sided bounds at `confidence`, each
/// taken at the order statistic on the conservative side.
fn t_quantiles(sorted: &[f64], confidence: f64) -> (f64, f64) {
    let b = sorted.len();
    let k = (((1.0 - confidence) * b as f64).floor() as usize).max(1);
    (sorted[k - 1], sorted[b - k])
}

fn check_level(confidence: f64) -> Result<usize, Unsupported> {
    bootstrap_resamples(confidence).ok_or(Unsupported::LevelTooHigh {
        highest: highest_bootstrap_confidence(),
    })
}

/// One-sided bounds of the mean of a latency histogram in µs, in ms: bootstrap-t, or
/// Cantelli's distribution-free bounds ([`cantelli_k`]) when the sample has fewer than
/// `25·g1²` samples (then the mean is too dominated by the few slowest requests for the
/// bootstrap's studentization to hold its level).
///
/// Refuses samples below [`MEAN_MIN_SAMPLES`] and levels above
/// [`highest_bootstrap_confidence`].
pub fn mean_bounds(hist: &Histogram<u64>, confidence: f64) -> Result<Bounds, Unsupported> {
    mean_bounds_by(hist, confidence).map(|(bounds, _)| bounds)
}

/// How [`mean_bounds_by`] bounded a mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeanMethod {
    /// The studentized bootstrap over the histogram.
    BootstrapT,
    /// Cantelli's distribution-free bounds, for a sample too skewed for the bootstrap.
    Cantelli,
}

impl MeanMethod {
    /// The method's name in the result document.
    pub fn name(self) -> &'static str {
        match self {
            MeanMethod::BootstrapT => "bootstrap-t",
            MeanMethod::Cantelli => "cantelli",
        }
    }
}

/// [`mean_bounds`] and the method that gave them.
pub fn mean_bounds_by(
    hist: &Histogram<u64>,
    confidence: f64,
) -> Result<(Bounds, MeanMethod), Unsupported> {
    let groups = groups(hist);
    let counts: Vec<u64> = groups.iter().map(|g| g.count).collect();
    let m = moments(&groups, &counts);
    if m.n < MEAN_MIN_SAMPLES {
        return Err(Unsupported::TooFewSamples {
            needed: MEAN_MIN_SAMPLES,
        });
    }
    let resamples = check_level(confidence)?;
    let by_shape = (MEAN_SKEW_FACTOR * m.skewness * m.skewness).ceil() as u64;
    if m.n < by_shape {
        if m.n < MEAN_CANTELLI_MIN_SAMPLES {
            return Err(Unsupported::TooFewSamples {
                needed: by_shape.min(MEAN_CANTELLI_MIN_SAMPLES),
            });
        }
        let half_width = cantelli_k(confidence) * m.sd / (m.n as f64).sqrt();
        let bounds = Bounds {
            lower: (m.mean - half_width).max(0.0),
            upper: m.mean + half_width,
        };
        return Ok((bounds, MeanMethod::Cantelli));
    }
    if groups.len() == 1 {
        // Every request fell within 1 % of one value: the spread is below what the
        // histogram resolves, so the bounds are the value's own buckets.
        let bounds = Bounds {
            lower: hist.lowest_equivalent(hist.min()) as f64 / 1000.0,
            upper: (hist.highest_equivalent(hist.max()) + 1) as f64 / 1000.0,
        };
        return Ok((bounds, MeanMethod::BootstrapT));
    }
    let root_n = (m.n as f64).sqrt();
    let floor = m.mean * HISTOGRAM_RESOLUTION;
    let t = bootstrap_t(
        &groups,
        m.n,
        resamples,
        |b| (b.mean, b.sd.max(floor) / root_n),
        m.mean,
    );
    let (t_low, t_high) = t_quantiles(&t, confidence);
    let se = m.sd / root_n;
    // Studentized: the upper bound uses the lower t quantile and vice versa.
    let bounds = Bounds {
        lower: (m.mean - t_high * se).max(0.0),
        upper: m.mean - t_low * se,
    };
    Ok((bounds, MeanMethod::BootstrapT))
}

/// Cantelli's one-sided multiplier: `P(X̄ − μ ≥ k·σ/√n) ≤ 1 / (1 + k²)` for any
/// distribution with standard deviation σ, so `k = √(c / (1 − c))` gives level `c`.
pub fn cantelli_k(confidence: f64) -> f64 {
    (confidence / (1.0 - confidence)).sqrt()
}

/// One-sided bootstrap-t lower bound of the standard deviation of a latency histogram in µs,
/// in ms: the statistic is `ln s`, whose standard error is about `√((kurtosis − 1) / (4n))`.
/// The upper bound is always unbounded, so an upper limit on the standard deviation is
/// never satisfied (only violated or inconclusive).
///
/// Refuses samples below [`STDDEV_MIN_SAMPLES`] or below [`STDDEV_KURTOSIS_FACTOR`] times
/// the sample kurtosis, and levels above [`highest_bootstrap_confidence`].
pub fn stddev_bounds(hist: &Histogram<u64>, confidence: f64) -> Result<Bounds, Unsupported> {
    let groups = groups(hist);
    let counts: Vec<u64> = groups.iter().map(|g| g.count).collect();
    let m = moments(&groups, &counts);
    let by_shape = (STDDEV_KURTOSIS_FACTOR * m.kurtosis).ceil() as u64;
    let needed = STDDEV_MIN_SAMPLES.max(by_shape);
    if m.n < needed {
        return Err(Unsupported::TooFewSamples { needed });
    }
    let resamples = check_level(confidence)?;
    let floor = m.mean * HISTOGRAM_RESOLUTION;
    if groups.len() == 1 {
        let width = (hist.highest_equivalent(hist.max()) + 1 - hist.lowest_equivalent(hist.min()))
            as f64
            / 1000.0;
        return Ok(Bounds {
            lower: 0.0,
            upper: width,
        });
    }
    let n_f = m.n as f64;
    let se_log =
        |mo: &Moments| ((mo.kurtosis - 1.0).max(HISTOGRAM_RESOLUTION) / (4.0 * n_f)).sqrt();
    let t = bootstrap_t(
        &groups,
        m.n,
        resamples,
        |b| (b.sd.max(floor).ln(), se_log(b)),
        m.sd.max(floor).ln(),
    );
    let (_, t_high) = t_quantiles(&t, confidence);
    let se = se_log(&m);
    let log_sd = m.sd.max(floor).ln();
    // No upper bound: the coverage study found every candidate (this one included) below
    // its level on log-normal latencies up to n = 10,000 (a heavy tail's variance is
    // carried by requests a sample rarely holds), so a standard deviation is never
    // claimed to be small. The lower bound holds its level.
    Ok(Bounds {
        lower: (log_sd - t_high * se).exp(),
        upper: f64::INFINITY,
    })
}

/// How a relative SLO compares a candidate's value with the baseline's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contrast {
    /// `candidate − baseline`, in the metric's unit (`maxIncrease: 5`).
    Difference,
    /// `candidate / baseline` (`maxIncrease: 10%` is a ratio of at most 1.1).
    Ratio,
}

impl Contrast {
    /// The contrast of two values; a ratio over a baseline of 0 is `None`.
    pub fn of(self, candidate: f64, baseline: f64) -> Option<f64> {
        match self {
            Contrast::Difference => Some(candidate - baseline),
            Contrast::Ratio => (baseline > 0.0).then(|| candidate / baseline),
        }
    }
}

/// One-sided Wilson score bounds at `z` for `x` events in `n`.
fn wilson(x: u64, n: u64, z: f64) -> (f64, f64) {
    let (x, n) = (x as f64, n as f64);
    let p = x / n;
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Newcombe's hybrid score bounds (his method 10) of the difference of two proportions,
/// `x1/n1 − x2/n2` (candidate minus baseline), one-sided at `confidence`: each proportion's
/// Wilson bounds at the one-sided `z_c`, combined by square-and-add. `None` when either
/// version has no request.
pub fn newcombe_difference(x1: u64, n1: u64, x2: u64, n2: u64, confidence: f64) -> Option<Bounds> {
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let z = z_one_sided(confidence);
    let (p1, p2) = (x1.min(n1) as f64 / n1 as f64, x2.min(n2) as f64 / n2 as f64);
    let (l1, u1) = wilson(x1.min(n1), n1, z);
    let (l2, u2) = wilson(x2.min(n2), n2, z);
    let d = p1 - p2;
    Some(Bounds {
        lower: (d - ((p1 - l1).powi(2) + (u2 - p2).powi(2)).sqrt()).max(-1.0),
        upper: (d + ((u1 - p1).powi(2) + (p2 - l2).powi(2)).sqrt()).min(1.0),
    })
}

/// One-sided bounds at `confidence` of the contrast of the `q`-quantiles of two latency
/// histograms (µs; bounds of a difference in ms), from the order-statistic bounds of each
/// at level `1 − (1 − c)/2` (Bonferroni): the contrast's upper bound is the candidate's
/// upper bound against the baseline's lower bound, and the other way round. Each of the two
/// holds with probability `1 − (1 − c)/2`, so both hold, and the contrast's bound with them,
/// with probability at least `c`, whatever the two distributions. `None` when either
/// histogram is empty; an end is unbounded while a sample is too small for its rank.
pub fn percentile_contrast_bounds(
    candidate: &Histogram<u64>,
    baseline: &Histogram<u64>,
    q: f64,
    contrast: Contrast,
    confidence: f64,
) -> Option<Bounds> {
    let each = 1.0 - (1.0 - confidence) / 2.0;
    let c = percentile_bounds(candidate, q, each)?;
    let b = percentile_bounds(baseline, q, each)?;
    Some(match contrast {
        Contrast::Difference => Bounds {
            lower: c.lower - b.upper,
            upper: c.upper - b.lower,
        },
        Contrast::Ratio => Bounds {
            lower: if b.upper.is_finite() && b.upper > 0.0 {
                c.lower / b.upper
            } else {
                0.0
            },
            upper: if b.lower > 0.0 {
                c.upper / b.lower
            } else {
                f64::INFINITY
            },
        },
    })
}

/// The samples a version needs for the two-sample bound of a percentile contrast to exist
/// at all: both order-statistic ranks at level `1 − (1 − c)/2`.
pub fn percentile_contrast_min_samples(q: f64, confidence: f64) -> u64 {
    let each = 1.0 - (1.0 - confidence) / 2.0;
    min_n_for_upper_bound(q, each).max(min_n_for_upper_bound(1.0 - q, each))
}

/// One-sided two-sample bootstrap-t bounds of the contrast of two means (candidate against
/// baseline, histograms in µs, a difference in ms).
///
/// Each histogram is resampled on its own (the versions are independent samples) and the
/// contrast studentized: the difference by its Welch standard error
/// `√(s₁²/n₁ + s₂²/n₂)`, the ratio on the log scale by its delta-method standard error
/// `√(s₁²/(n₁m₁²) + s₂²/(n₂m₂²))`. Each version must meet the one-sample rules of
/// [`mean_bounds`] (at least [`MEAN_MIN_SAMPLES`] and `25·g1²` samples).
pub fn mean_contrast_bounds(
    candidate: &Histogram<u64>,
    baseline: &Histogram<u64>,
    contrast: Contrast,
    confidence: f64,
) -> Result<Bounds, Unsupported> {
    let gc = groups(candidate);
    let gb = groups(baseline);
    let mc = moments(&gc, &gc.iter().map(|g| g.count).collect::<Vec<_>>());
    let mb = moments(&gb, &gb.iter().map(|g| g.count).collect::<Vec<_>>());
    let needed = |m: &Moments| {
        MEAN_MIN_SAMPLES.max((MEAN_SKEW_FACTOR * m.skewness * m.skewness).ceil() as u64)
    };
    let need = needed(&mc).max(needed(&mb));
    if mc.n < need || mb.n < need {
        return Err(Unsupported::TooFewSamples { needed: need });
    }
    let resamples = check_level(confidence)?;
    let floor_c = mc.mean * HISTOGRAM_RESOLUTION;
    let floor_b = mb.mean * HISTOGRAM_RESOLUTION;
    // The statistic and its standard error for a pair of moments.
    let stat = |c: &Moments, b: &Moments| -> (f64, f64) {
        let (nc, nb) = (c.n as f64, b.n as f64);
        let (sc, sb) = (c.sd.max(floor_c), b.sd.max(floor_b));
        match contrast {
            Contrast::Difference => (c.mean - b.mean, (sc * sc / nc + sb * sb / nb).sqrt()),
            Contrast::Ratio => (
                (c.mean.max(floor_c) / b.mean.max(floor_b)).ln(),
                (sc * sc / (nc * c.mean.max(floor_c).powi(2))
                    + sb * sb / (nb * b.mean.max(floor_b).powi(2)))
                .sqrt(),
            ),
        }
    };
    let (centre, se) = stat(&mc, &mb);
    let mut rng = Pcg64::seed_from_u64(BOOTSTRAP_SEED);
    let cumulative = |g: &[Group]| -> Vec<u64> {
        g.iter()
            .scan(0u64, |acc, g| {
                *acc += g.count;
                Some(*acc)
            })
            .collect()
    };
    let (cum_c, cum_b) = (cumulative(&gc), cumulative(&gb));
    let (mut counts_c, mut counts_b) = (vec![0u64; gc.len()], vec![0u64; gb.len()]);
    let mut t = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        resample(&gc, &cum_c, mc.n, &mut rng, &mut counts_c);
        resample(&gb, &cum_b, mb.n, &mut rng, &mut counts_b);
        let (value, se_star) = stat(&moments(&gc, &counts_c), &moments(&gb, &counts_b));
        t.push((value - centre) / se_star);
    }
    t.sort_by(f64::total_cmp);
    let (t_low, t_high) = t_quantiles(&t, confidence);
    let (lower, upper) = (centre - t_high * se, centre - t_low * se);
    Ok(match contrast {
        Contrast::Difference => Bounds { lower, upper },
        Contrast::Ratio => Bounds {
            lower: lower.exp(),
            upper: upper.exp(),
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

    fn hist_ms(values: &[f64]) -> Histogram<u64> {
        let mut h = new_latency_histogram();
        for v in values {
            h.record((v * 1000.0) as u64).unwrap();
        }
        h
    }

    #[test]
    fn z_matches_tables() {
        assert!(close(z_one_sided(0.95), 1.644_854, 1e-6));
        assert!(close(z_one_sided(0.975), 1.959_964, 1e-6));
        assert!(close(z_one_sided(0.8), 0.841_621, 1e-6));
    }

    #[test]
    fn clopper_pearson_known_values() {
        // 0 of 100 at one-sided 95 %: 1 − 0.05^(1/100) = 0.02951.
        let b = clopper_pearson(0, 100, 0.95).unwrap();
        assert_eq!(b.lower, 0.0);
        assert!(close(b.upper, 0.029_513, 1e-5), "{}", b.upper);
        // 10 of 100: each bound is where the binomial tail beyond 10 is exactly 5 %.
        let b = clopper_pearson(10, 100, 0.95).unwrap();
        assert!(close(1.0 - exact_cdf(100, b.lower, 9), 0.05, 1e-6), "{b:?}");
        assert!(close(exact_cdf(100, b.upper, 10), 0.05, 1e-6), "{b:?}");
        assert!(b.lower > 0.05 && b.upper < 0.17, "{b:?}");
        let b = clopper_pearson(20, 20, 0.95).unwrap();
        assert_eq!(b.upper, 1.0);
        assert!(
            close(b.lower, 0.05f64.powf(1.0 / 20.0), 1e-6),
            "{}",
            b.lower
        );
        assert!(clopper_pearson(0, 0, 0.95).is_none());
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
    fn one_errors_lower_bound_holds_the_level_for_every_rate() {
        // Wilson's lower end with 1-2 errors sat above the true rate up to 16 % of the time.
        // Clopper-Pearson's lower bound is above p exactly when at least k errors occur, so
        // its miss rate is an exact binomial tail, at most 1 − c for every p.
        for n in [30u64, 100, 1000] {
            for i in 1..200 {
                let p = i as f64 / 200.0 * 0.1;
                let misses: f64 = (1..=n.min(40))
                    .filter(|&x| clopper_pearson(x, n, 0.95).unwrap().lower > p)
                    .map(|x| exact_cdf(n, p, x) - exact_cdf(n, p, x - 1))
                    .sum();
                assert!(misses <= 0.05 + 1e-9, "n={n} p={p}: {misses}");
            }
        }
    }

    #[test]
    fn order_statistic_ranks_are_one_sided_at_the_level() {
        let (l, u) = order_statistic_ranks(1000, 0.95, 0.95);
        let (l, u) = (l.unwrap(), u.unwrap());
        // Normal approximation: 950 ± 1.645 · 6.89 → about 939 .. 961.
        assert_eq!((l, u), (938, 962));
        // P(B ≤ l − 1) ≤ 5 % and P(B ≤ u − 1) ≥ 95 %, each as tight as allowed.
        assert!(exact_cdf(1000, 0.95, l - 1) <= 0.05);
        assert!(exact_cdf(1000, 0.95, l) > 0.05);
        assert!(exact_cdf(1000, 0.95, u - 1) >= 0.95);
        assert!(exact_cdf(1000, 0.95, u - 2) < 0.95);
    }

    #[test]
    fn order_statistic_upper_rank_needs_enough_samples() {
        // p99.9 at one-sided 95 %: ln(0.05)/ln(0.999) ≈ 2994.2, so 2995 samples.
        assert_eq!(min_n_for_upper_bound(0.999, 0.95), 2995);
        assert_eq!(order_statistic_ranks(2994, 0.999, 0.95).1, None);
        assert_eq!(order_statistic_ranks(2995, 0.999, 0.95).1, Some(2995));
        // P(B ≤ 1) = 0.011 ≤ 5 % < P(B ≤ 2) = 0.055; P(B ≤ 7) = 0.945 < 95 % ≤ P(B ≤ 8).
        assert_eq!(order_statistic_ranks(10, 0.5, 0.95), (Some(2), Some(9)));
    }

    #[test]
    fn percentile_bounds_bracket_known_values() {
        // 1000 samples: 1 ms, 2 ms … 1000 ms. True p95 ≈ 950 ms.
        let values: Vec<f64> = (1..=1000).map(f64::from).collect();
        let b = percentile_bounds(&hist_ms(&values), 0.95, 0.95).unwrap();
        assert!(b.lower <= 938.0 && b.lower > 937.0, "{b:?}");
        assert!(b.upper >= 962.0 && b.upper < 963.0, "{b:?}");
    }

    #[test]
    fn mean_of_5_5_50_is_not_satisfied_below_20() {
        // The naive bootstrap-t dropped the resamples without spread and gave [5, 20].
        let h = hist_ms(&[5.0, 5.0, 50.0]);
        assert_eq!(
            mean_bounds(&h, 0.95),
            Err(Unsupported::TooFewSamples { needed: 30 })
        );
        // Ten times the same shape: resamples without the slow ones count now, so the upper
        // bound reaches far above the observed mean of 20 ms.
        let mut values = vec![5.0; 20];
        values.extend([50.0; 10]);
        let b = mean_bounds(&hist_ms(&values), 0.95).unwrap();
        assert!(b.upper > 26.0, "{b:?}");
    }

    #[test]
    fn two_requests_in_one_bucket_never_bound_the_mean() {
        let h = hist_ms(&[5.0, 5.0]);
        assert!(matches!(
            mean_bounds(&h, 0.95),
            Err(Unsupported::TooFewSamples { .. })
        ));
        assert!(matches!(
            stddev_bounds(&h, 0.95),
            Err(Unsupported::TooFewSamples { .. })
        ));
    }

    #[test]
    fn one_outlier_in_thirty_is_too_skewed_for_the_mean() {
        let mut values = vec![5.0; 29];
        values.push(500.0);
        // g1 ≈ 5.2: Cochran's rule asks for 25 · 27 ≈ 680 samples, and 30 are too few even
        // for the distribution-free bounds.
        assert_eq!(
            mean_bounds(&hist_ms(&values), 0.95),
            Err(Unsupported::TooFewSamples {
                needed: MEAN_CANTELLI_MIN_SAMPLES
            })
        );
        // Four times the same shape: Cantelli's bounds, mean ± 4.36 · s/√120 with mean
        // 21.5 ms and s ≈ 90 ms.
        let values: Vec<f64> = values.iter().copied().cycle().take(120).collect();
        let (b, method) = mean_bounds_by(&hist_ms(&values), 0.95).unwrap();
        assert_eq!(method, MeanMethod::Cantelli);
        assert!(b.upper > 50.0, "{b:?}");
        assert_eq!(b.lower, 0.0, "{b:?}");
    }

    #[test]
    fn a_skewed_sample_far_below_its_limit_is_still_bounded_below_it() {
        // 100 requests around 4 ms with a slow first one: too skewed for the bootstrap, but
        // the distribution-free upper bound is still far below a 50 ms limit.
        let mut values: Vec<f64> = (0..99).map(|i| 3.0 + f64::from(i % 5) * 0.5).collect();
        values.push(120.0);
        let b = mean_bounds(&hist_ms(&values), 0.95).unwrap();
        assert!(b.upper < 15.0, "{b:?}");
        assert!((cantelli_k(0.95) - 4.3589).abs() < 1e-3);
    }

    #[test]
    fn bootstrap_refuses_levels_its_resamples_cannot_resolve() {
        // 0.999999 would need 10⁸ resamples for 100 in its tail.
        let values: Vec<f64> = (0..1000).map(|i| 10.0 + f64::from(i % 10)).collect();
        let h = hist_ms(&values);
        assert_eq!(
            mean_bounds(&h, 0.999_999),
            Err(Unsupported::LevelTooHigh { highest: 0.999 })
        );
        assert!(stddev_bounds(&h, 0.999_999).is_err());
        assert_eq!(bootstrap_resamples(0.95), Some(2000));
        assert_eq!(bootstrap_resamples(0.995), Some(20_000));
        assert_eq!(bootstrap_resamples(0.9975), Some(40_000));
        assert_eq!(bootstrap_resamples(1.0 - 0.05 / 50.0), Some(100_000));
        assert_eq!(bootstrap_resamples(0.9991), None);
        assert!(mean_bounds(&h, 0.99).is_ok());
        assert!(mean_bounds(&h, 0.999).is_ok());
    }

    #[test]
    fn bootstrap_mean_bounds_cover_and_are_skewed_right() {
        // Exponential-like latencies: many fast, a long slow tail.
        let values: Vec<f64> = (0..2000)
            .map(|i| 0.001 - 10.0 * (1.0 - (f64::from(i) + 0.5) / 2000.0).ln())
            .collect();
        let h = hist_ms(&values);
        let mean = h.mean() / 1000.0;
        let b = mean_bounds(&h, 0.95).unwrap();
        assert!(b.lower < mean && mean < b.upper, "{b:?} {mean}");
        // Right skew: the upper bound reaches further above the mean than the lower below.
        assert!(b.upper - mean > mean - b.lower, "{b:?} {mean}");
        // And about as far as 1.645·sd/√n.
        let half = 1.645 * h.stdev() / 1000.0 / (2000f64).sqrt();
        assert!(((b.upper - b.lower) / (2.0 * half) - 1.0).abs() < 0.25);
        // Same histogram, same bounds: the seed is fixed.
        assert_eq!(mean_bounds(&h, 0.95).unwrap(), b);
        let sd = h.stdev() / 1000.0;
        let s = stddev_bounds(&h, 0.95).unwrap();
        assert!(s.lower < sd && sd * 0.8 < s.lower, "{s:?} {sd}");
    }

    #[test]
    fn stddev_upper_limit_is_never_satisfied() {
        // The percentile bootstrap's upper end covered 0.33 to 0.94 on log-normal latencies:
        // no upper bound is claimed at all.
        let values: Vec<f64> = (0..5000).map(|i| 10.0 + f64::from(i % 7)).collect();
        let s = stddev_bounds(&hist_ms(&values), 0.95).unwrap();
        assert_eq!(s.upper, f64::INFINITY);
        assert!(s.lower > 1.5, "{s:?}");
    }
}
