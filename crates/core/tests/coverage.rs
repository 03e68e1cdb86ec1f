//! Coverage study of every interval a verdict uses.
//!
//! For each metric, distribution and sample size it draws many samples with a fixed seed,
//! records them as the load engine does (a latency histogram in µs, errors as a count), asks
//! [`estimate`] for the metric's bounds and counts how often each one-sided bound holds the
//! true value. A bound that is absent (too few samples for the method) holds it by
//! definition: the SLO is inconclusive then, never satisfied.
//!
//! The test fails when a bound covers less than the stated level minus three Monte Carlo
//! standard errors. `make stats` prints the table (the README's method section shows it).

use std::fmt::Write as _;

use rand_distr::{Binomial, Distribution, Exp, LogNormal};
use rand_pcg::Pcg64;
use rand_pcg::rand_core::SeedableRng;
use slogate_core::measure::Measurement;
use slogate_core::metrics::Metric;
use slogate_core::verdict::estimate;
use statrs::distribution::{ContinuousCDF, Normal};

/// The level every bound is asked for.
const CONFIDENCE: f64 = 0.95;
/// Seed of the whole study; each cell derives its own from it.
const SEED: u64 = 0x00c0_7e4a;
/// Sample sizes studied.
const SIZES: [u64; 6] = [30, 100, 300, 1000, 3000, 10_000];
/// Replications per cell. The bootstrap metrics cost a resampling per replication, so the
/// largest sizes get fewer (their Monte Carlo error is wider and so is their tolerance).
fn replications(metric: Metric, n: u64) -> u64 {
    let full = std::env::var("SLOGATE_STUDY_REPLICATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000u64);
    match metric {
        Metric::LatencyMean | Metric::LatencyStddev => match n {
            0..=100 => full,
            101..=300 => full / 2,
            301..=1000 => full / 4,
            _ => full / 10,
        },
        _ => full,
    }
}

/// A latency distribution in milliseconds with its true moments and quantiles.
#[derive(Clone, Copy)]
enum Dist {
    /// Log-normal with median 20 ms and this sigma.
    LogNormal(f64),
    /// 5 ms plus an exponential with mean 20 ms.
    Exponential,
    /// 90 % log-normal around 10 ms, 10 % around 100 ms (sigma 0.2 each): a cache miss mode.
    Bimodal,
    /// Log-normal with this median (ms) and sigma: a shifted version.
    LogNormalAt(f64, f64),
}

const DISTS: [Dist; 5] = [
    Dist::LogNormal(0.5),
    Dist::LogNormal(1.0),
    Dist::LogNormal(1.5),
    Dist::Exponential,
    Dist::Bimodal,
];

const BIMODAL_SLOW_SHARE: f64 = 0.1;
const BIMODAL_SIGMA: f64 = 0.2;

impl Dist {
    fn name(self) -> String {
        match self {
            Dist::LogNormal(s) => format!("lognormal σ={s}"),
            Dist::Exponential => "5 ms + exponential".to_owned(),
            Dist::Bimodal => "bimodal 90/10".to_owned(),
            Dist::LogNormalAt(m, s) => format!("lognormal median {m} σ={s}"),
        }
    }

    fn sample(self, rng: &mut Pcg64) -> f64 {
        match self {
            Dist::LogNormal(s) => LogNormal::new(20f64.ln(), s).unwrap().sample(rng),
            Dist::LogNormalAt(m, s) => LogNormal::new(m.ln(), s).unwrap().sample(rng),
            Dist::Exponential => 5.0 + Exp::new(1.0 / 20.0).unwrap().sample(rng),
            Dist::Bimodal => {
                let u: f64 = rand_distr::Uniform::new(0.0, 1.0).unwrap().sample(rng);
                let median: f64 = if u < BIMODAL_SLOW_SHARE { 100.0 } else { 10.0 };
                LogNormal::new(median.ln(), BIMODAL_SIGMA)
                    .unwrap()
                    .sample(rng)
            }
        }
    }

    /// (mean, standard deviation) of the distribution.
    fn moments(self) -> (f64, f64) {
        let lognormal = |median: f64, s: f64| {
            let mean = median * (s * s / 2.0).exp();
            let second = median * median * (2.0 * s * s).exp();
            (mean, second)
        };
        let (mean, second) = match self {
            Dist::LogNormal(s) => lognormal(20.0, s),
            Dist::LogNormalAt(m, s) => lognormal(m, s),
            Dist::Exponential => (25.0, 25.0 * 25.0 + 20.0 * 20.0),
            Dist::Bimodal => {
                let (m1, s1) = lognormal(10.0, BIMODAL_SIGMA);
                let (m2, s2) = lognormal(100.0, BIMODAL_SIGMA);
                let w = BIMODAL_SLOW_SHARE;
                ((1.0 - w) * m1 + w * m2, (1.0 - w) * s1 + w * s2)
            }
        };
        (mean, (second - mean * mean).sqrt())
    }

    fn cdf(self, x: f64) -> f64 {
        let z = Normal::standard();
        let lognormal = |median: f64, s: f64| {
            if x <= 0.0 {
                0.0
            } else {
                z.cdf((x.ln() - median.ln()) / s)
            }
        };
        match self {
            Dist::LogNormal(s) => lognormal(20.0, s),
            Dist::LogNormalAt(m, s) => lognormal(m, s),
            Dist::Exponential => (1.0 - (-(x - 5.0) / 20.0).exp()).max(0.0),
            Dist::Bimodal => {
                let w = BIMODAL_SLOW_SHARE;
                (1.0 - w) * lognormal(10.0, BIMODAL_SIGMA) + w * lognormal(100.0, BIMODAL_SIGMA)
            }
        }
    }

    fn quantile(self, q: f64) -> f64 {
        let (mut lo, mut hi) = (0.0f64, 1e7f64);
        for _ in 0..200 {
            let mid = (lo + hi) / 2.0;
            if self.cdf(mid) < q {
                lo = mid
            } else {
                hi = mid
            }
        }
        (lo + hi) / 2.0
    }

    fn truth(self, metric: Metric) -> f64 {
        match metric {
            Metric::LatencyMean => self.moments().0,
            Metric::LatencyStddev => self.moments().1,
            Metric::LatencyPercentile(p) => self.quantile(p / 100.0),
            _ => unreachable!("only latency metrics have a distribution"),
        }
    }
}

/// What one cell of the study measures.
#[derive(Clone, Copy)]
enum Population {
    Latency(Dist),
    /// Each request is an error with this probability.
    Errors(f64),
}

impl Population {
    fn name(self) -> String {
        match self {
            Population::Latency(d) => d.name(),
            Population::Errors(p) => format!("Bernoulli p={p}"),
        }
    }
}

struct Cell {
    metric: Metric,
    population: Population,
    n: u64,
    reps: u64,
    seed: u64,
}

/// Coverage of one cell: how often the upper and the lower bound hold the truth.
#[derive(Clone, Copy, Default)]
struct Coverage {
    upper: f64,
    lower: f64,
}

fn run(cell: &Cell) -> Coverage {
    let mut rng = Pcg64::seed_from_u64(cell.seed);
    let (mut upper_ok, mut lower_ok) = (0u64, 0u64);
    let truth = match cell.population {
        Population::Latency(d) => d.truth(cell.metric),
        Population::Errors(p) => p,
    };
    for _ in 0..cell.reps {
        let mut m = Measurement {
            requests: cell.n,
            ..Measurement::default()
        };
        match cell.population {
            Population::Latency(d) => {
                for _ in 0..cell.n {
                    let us = (d.sample(&mut rng) * 1000.0).round().max(1.0) as u64;
                    m.latency.saturating_record(us);
                }
            }
            Population::Errors(p) => {
                m.errors = Binomial::new(cell.n, p).unwrap().sample(&mut rng);
                m.latency.saturating_record(1000);
            }
        }
        let est = estimate(cell.metric, &m, CONFIDENCE);
        let (lower, upper) = est
            .bounds
            .map_or((f64::NEG_INFINITY, f64::INFINITY), |b| (b.lower, b.upper));
        upper_ok += u64::from(truth <= upper);
        lower_ok += u64::from(truth >= lower);
    }
    Coverage {
        upper: upper_ok as f64 / cell.reps as f64,
        lower: lower_ok as f64 / cell.reps as f64,
    }
}

fn cells() -> Vec<Cell> {
    let mut out = Vec::new();
    let latency_metrics = [
        Metric::LatencyMean,
        Metric::LatencyStddev,
        Metric::LatencyPercentile(50.0),
        Metric::LatencyPercentile(95.0),
        Metric::LatencyPercentile(99.0),
        Metric::LatencyPercentile(99.9),
    ];
    let mut push = |metric: Metric, population: Population, n: u64| {
        let seed = SEED.wrapping_add(out.len() as u64 * 0x9e37_79b9);
        out.push(Cell {
            metric,
            population,
            n,
            reps: replications(metric, n),
            seed,
        });
    };
    for p in [0.002, 0.01, 0.05] {
        for n in SIZES {
            push(Metric::ErrorRate, Population::Errors(p), n);
        }
    }
    for metric in latency_metrics {
        for d in DISTS {
            for n in SIZES {
                push(metric, Population::Latency(d), n);
            }
        }
    }
    out
}

/// Runs `run` on every cell, spread over all cores, and returns the results in the cells'
/// order: no figure of the study depends on how many cores there are.
fn on_all_cores<C: Sync, R: Send>(cells: &[C], run: impl Fn(&C) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<(usize, R)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(cell) = cells.get(i) else { break };
                        done.push((i, run(cell)));
                    }
                    done
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Runs every cell on all cores.
fn study() -> Vec<(Cell, Coverage)> {
    let cells = cells();
    let results = on_all_cores(&cells, |cell| {
        let c = run(cell);
        eprintln!(
            "{} | {} | n={} | {:.3} / {:.3}",
            cell.metric,
            cell.population.name(),
            cell.n,
            c.upper,
            c.lower
        );
        c
    });
    cells.into_iter().zip(results).collect()
}

/// Three Monte Carlo standard errors below the level.
fn tolerance(reps: u64) -> f64 {
    3.0 * (CONFIDENCE * (1.0 - CONFIDENCE) / reps as f64).sqrt()
}

fn table(results: &[(Cell, Coverage)]) -> String {
    let mut out = String::new();
    let _ = write!(out, "| metric | distribution |");
    for n in SIZES {
        let _ = write!(out, " n={n} |");
    }
    out.push('\n');
    out.push_str("|---|---|");
    for _ in SIZES {
        out.push_str("---|");
    }
    out.push('\n');
    for row in results.chunks(SIZES.len()) {
        let first = &row[0].0;
        let _ = write!(out, "| {} | {} |", first.metric, first.population.name());
        for (_, c) in row {
            let _ = write!(out, " {:.3} / {:.3} |", c.upper, c.lower);
        }
        out.push('\n');
    }
    out
}

#[test]
fn every_verdict_bound_covers_its_level() {
    let results = study();
    println!(
        "One-sided coverage at {}: upper bound / lower bound (each should be ≥ {}).\n",
        CONFIDENCE, CONFIDENCE
    );
    println!("{}", table(&results));
    let failures: Vec<String> = results
        .iter()
        .filter_map(|(cell, c)| {
            let floor = CONFIDENCE - tolerance(cell.reps);
            (c.upper < floor || c.lower < floor).then(|| {
                format!(
                    "{} on {} at n={}: upper {:.3}, lower {:.3} (floor {:.3}, {} replications)",
                    cell.metric,
                    cell.population.name(),
                    cell.n,
                    c.upper,
                    c.lower,
                    floor,
                    cell.reps
                )
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "coverage below the level:\n{}",
        failures.join("\n")
    );
}

/// Two-sample study: a candidate and a baseline drawn independently, and how often each
/// one-sided bound of the relative SLO's contrast holds the true contrast.
mod two_sample {
    use super::*;
    use slogate_core::stats::{
        Contrast, mean_contrast_bounds, newcombe_difference, percentile_contrast_bounds,
    };

    /// Sizes per version.
    pub(super) const SIZES: [u64; 3] = [100, 1000, 10_000];

    #[derive(Clone, Copy)]
    pub(super) enum Pair {
        /// Candidate and baseline latencies from these distributions.
        Latency { candidate: Dist, baseline: Dist },
        /// Error rates of candidate and baseline.
        Errors { candidate: f64, baseline: f64 },
    }

    impl Pair {
        pub(super) fn name(self) -> String {
            match self {
                Pair::Latency {
                    candidate,
                    baseline,
                } => format!("{} vs {}", candidate.name(), baseline.name()),
                Pair::Errors {
                    candidate,
                    baseline,
                } => format!("p={candidate} vs p={baseline}"),
            }
        }
    }

    #[derive(Clone, Copy)]
    pub(super) enum What {
        ErrorDifference,
        Percentile(f64, Contrast),
        Mean(Contrast),
    }

    impl What {
        pub(super) fn name(self) -> String {
            let c = |c: Contrast| match c {
                Contrast::Ratio => "ratio",
                Contrast::Difference => "difference",
            };
            match self {
                What::ErrorDifference => "http/error-rate difference".to_owned(),
                What::Percentile(p, k) => format!("http/latency-p{p} {}", c(k)),
                What::Mean(k) => format!("http/latency-mean {}", c(k)),
            }
        }

        fn metric(self) -> Metric {
            match self {
                What::ErrorDifference => Metric::ErrorRate,
                What::Percentile(p, _) => Metric::LatencyPercentile(p),
                What::Mean(_) => Metric::LatencyMean,
            }
        }
    }

    pub(super) struct Cell2 {
        pub(super) what: What,
        pub(super) pair: Pair,
        pub(super) n: u64,
        pub(super) reps: u64,
        seed: u64,
    }

    fn sample(d: Dist, n: u64, rng: &mut Pcg64) -> Measurement {
        let mut m = Measurement {
            requests: n,
            ..Measurement::default()
        };
        for _ in 0..n {
            let us = (d.sample(rng) * 1000.0).round().max(1.0) as u64;
            m.latency.saturating_record(us);
        }
        m
    }

    pub(super) fn run(cell: &Cell2) -> Coverage {
        let mut rng = Pcg64::seed_from_u64(cell.seed);
        let (mut upper_ok, mut lower_ok) = (0u64, 0u64);
        for _ in 0..cell.reps {
            let (truth, bounds) = match (cell.pair, cell.what) {
                (
                    Pair::Errors {
                        candidate,
                        baseline,
                    },
                    What::ErrorDifference,
                ) => {
                    let xc = Binomial::new(cell.n, candidate).unwrap().sample(&mut rng);
                    let xb = Binomial::new(cell.n, baseline).unwrap().sample(&mut rng);
                    (
                        candidate - baseline,
                        newcombe_difference(xc, cell.n, xb, cell.n, CONFIDENCE),
                    )
                }
                (
                    Pair::Latency {
                        candidate,
                        baseline,
                    },
                    what,
                ) => {
                    let c = sample(candidate, cell.n, &mut rng);
                    let b = sample(baseline, cell.n, &mut rng);
                    let (tc, tb) = (
                        candidate.truth(what.metric()),
                        baseline.truth(what.metric()),
                    );
                    match what {
                        What::Percentile(p, k) => (
                            k.of(tc, tb).unwrap(),
                            percentile_contrast_bounds(
                                &c.latency,
                                &b.latency,
                                p / 100.0,
                                k,
                                CONFIDENCE,
                            ),
                        ),
                        What::Mean(k) => (
                            k.of(tc, tb).unwrap(),
                            mean_contrast_bounds(&c.latency, &b.latency, k, CONFIDENCE).ok(),
                        ),
                        What::ErrorDifference => unreachable!("errors have no distribution"),
                    }
                }
                (Pair::Errors { .. }, _) => unreachable!("errors are judged on their rate"),
            };
            let (lower, upper) =
                bounds.map_or((f64::NEG_INFINITY, f64::INFINITY), |b| (b.lower, b.upper));
            upper_ok += u64::from(truth <= upper);
            lower_ok += u64::from(truth >= lower);
        }
        Coverage {
            upper: upper_ok as f64 / cell.reps as f64,
            lower: lower_ok as f64 / cell.reps as f64,
        }
    }

    pub(super) fn cells() -> Vec<Cell2> {
        let equal = Pair::Latency {
            candidate: Dist::LogNormal(1.0),
            baseline: Dist::LogNormal(1.0),
        };
        let shifted = Pair::Latency {
            candidate: Dist::LogNormalAt(26.0, 0.5),
            baseline: Dist::LogNormal(0.5),
        };
        let skewed = Pair::Latency {
            candidate: Dist::Bimodal,
            baseline: Dist::Exponential,
        };
        let mut out = Vec::new();
        let mut push = |what: What, pair: Pair, n: u64| {
            let seed = SEED ^ 0x2_5a3e_u64.wrapping_add(out.len() as u64 * 0x9e37_79b9);
            // Each mean replication resamples two histograms: half the one-sample count at
            // the smallest size, where one resample costs as much as at the largest.
            let reps = match (what, n) {
                (What::Mean(_), 0..=100) => replications(what.metric(), n) / 2,
                _ => replications(what.metric(), n),
            };
            out.push(Cell2 {
                what,
                pair,
                n,
                reps,
                seed,
            });
        };
        for (candidate, baseline) in [(0.002, 0.002), (0.01, 0.002), (0.05, 0.01)] {
            for n in SIZES {
                push(
                    What::ErrorDifference,
                    Pair::Errors {
                        candidate,
                        baseline,
                    },
                    n,
                );
            }
        }
        let whats = [
            What::Percentile(50.0, Contrast::Ratio),
            What::Percentile(95.0, Contrast::Ratio),
            What::Percentile(95.0, Contrast::Difference),
            What::Percentile(99.0, Contrast::Ratio),
            // The difference of means is the same resampling with another studentization;
            // the ratio (what `maxIncrease: 10%` judges) alone keeps `make stats` short.
            What::Mean(Contrast::Ratio),
        ];
        for what in whats {
            for pair in [equal, shifted, skewed] {
                for n in SIZES {
                    push(what, pair, n);
                }
            }
        }
        out
    }
}

#[test]
fn every_two_sample_bound_covers_its_level() {
    let cells = two_sample::cells();
    let results: Vec<(usize, Coverage)> = on_all_cores(&cells, two_sample::run)
        .into_iter()
        .enumerate()
        .collect();
    let mut out = String::new();
    let _ = write!(out, "| relative SLO | candidate vs baseline |");
    for n in two_sample::SIZES {
        let _ = write!(out, " n={n} each |");
    }
    out.push_str("\n|---|---|");
    for _ in two_sample::SIZES {
        out.push_str("---|");
    }
    out.push('\n');
    let mut failures = Vec::new();
    for row in results.chunks(two_sample::SIZES.len()) {
        let cell = &cells[row[0].0];
        let _ = write!(out, "| {} | {} |", cell.what.name(), cell.pair.name());
        for (i, c) in row {
            let cell = &cells[*i];
            let _ = write!(out, " {:.3} / {:.3} |", c.upper, c.lower);
            let floor = CONFIDENCE - tolerance(cell.reps);
            if c.upper < floor || c.lower < floor {
                failures.push(format!(
                    "{} on {} at n={}: upper {:.3}, lower {:.3} (floor {:.3}, {} replications)",
                    cell.what.name(),
                    cell.pair.name(),
                    cell.n,
                    c.upper,
                    c.lower,
                    floor,
                    cell.reps
                ));
            }
        }
        out.push('\n');
    }
    println!("Two-sample one-sided coverage at {CONFIDENCE}: upper bound / lower bound.\n");
    println!("{out}");
    assert!(
        failures.is_empty(),
        "coverage below the level:\n{}",
        failures.join("\n")
    );
}

/// Repeated looks: a rollout judges its cumulative evidence after each of K iterations, and
/// the loop passes wrongly when ANY look calls an SLO satisfied that is not. Each loop here
/// draws K iterations of n requests, judges the cumulative sample after each with
/// `judge_slo`, and counts the loops in which some look says satisfied while the true value
/// lies just beyond the limit: at the fixed-sample level c at every look (naive) and at the
/// per-look level of [`Looks`] (Bonferroni), which must keep the loop's rate within 1 − c.
mod repeated_looks {
    use super::*;
    use slogate_core::looks::Looks;
    use slogate_core::result::SloVerdict;
    use slogate_core::spec::SloSpec;
    use slogate_core::verdict::judge_slo;

    /// Loops of each cell in which `judge_slo` judges every look, not only those whose
    /// bounds are within the limit.
    const CHECKED_LOOPS: u64 = 10;

    /// Planned looks and requests per iteration studied, as (K, n) columns.
    pub(super) const PLANS: [(u32, u64); 4] = [(5, 100), (5, 1000), (10, 100), (10, 1000)];

    pub(super) struct LoopCell {
        pub(super) metric: Metric,
        pub(super) population: Population,
        pub(super) looks: u32,
        pub(super) per_iteration: u64,
        pub(super) reps: u64,
        seed: u64,
    }

    /// Share of loops with a false "satisfied" at some look: naive level, Bonferroni level.
    #[derive(Clone, Copy, Default)]
    pub(super) struct FalsePass {
        pub(super) naive: f64,
        pub(super) bonferroni: f64,
    }

    pub(super) fn run(cell: &LoopCell) -> FalsePass {
        let mut rng = Pcg64::seed_from_u64(cell.seed);
        let truth = match cell.population {
            Population::Latency(d) => d.truth(cell.metric),
            Population::Errors(p) => p,
        };
        // Just on the wrong side: the true value is above the upper limit, so a look that
        // calls the SLO satisfied is wrong.
        let limit = truth * (1.0 - 1e-9);
        let slo = SloSpec::absolute(&cell.metric.to_string(), Some(limit), None);
        let plan = Looks::new(CONFIDENCE, cell.looks);
        let per_look = plan.per_look();
        let (mut naive_passes, mut bonferroni_passes) = (0u64, 0u64);
        // A bootstrap look costs thousands of resamples; the others are cheap.
        let cheap = !matches!(cell.metric, Metric::LatencyMean | Metric::LatencyStddev);
        for rep in 0..cell.reps {
            let mut m = Measurement::default();
            let (mut naive, mut bonferroni) = (false, false);
            for _ in 0..cell.looks {
                m.requests += cell.per_iteration;
                match cell.population {
                    Population::Latency(d) => {
                        for _ in 0..cell.per_iteration {
                            let us = (d.sample(&mut rng) * 1000.0).round().max(1.0) as u64;
                            m.latency.saturating_record(us);
                        }
                    }
                    Population::Errors(p) => {
                        m.errors += Binomial::new(cell.per_iteration, p)
                            .unwrap()
                            .sample(&mut rng);
                        m.latency.saturating_record(1000);
                    }
                }
                if bonferroni {
                    // Both outcomes of this loop are known (a Bonferroni pass implies a
                    // naive one); the remaining iterations only keep the draws in step.
                    continue;
                }
                // `judge_slo` calls an upper limit satisfied when the upper bound is within
                // it. For an inconclusive error rate or percentile its reason estimates the
                // requests a re-run needs (bisections over sample sizes), which costs far
                // more than the bounds, so there the bounds pick the looks that can pass
                // and `judge_slo` judges those; in the first loops of a cell it judges
                // every look, which checks that the two agree. A bootstrap costs the same
                // either way, so the mean is judged by `judge_slo` alone.
                let satisfied = |level: f64| {
                    if !cheap {
                        return judge_slo(&slo, "v", &m, level).verdict == SloVerdict::Satisfied;
                    }
                    let bounded = estimate(cell.metric, &m, level)
                        .bounds
                        .is_some_and(|b| b.upper <= limit);
                    if bounded || rep < CHECKED_LOOPS {
                        let verdict = judge_slo(&slo, "v", &m, level).verdict;
                        assert_eq!(
                            verdict == SloVerdict::Satisfied,
                            bounded,
                            "{} at {level}: judge_slo says {verdict:?}",
                            cell.metric
                        );
                    }
                    bounded
                };
                let at_c = satisfied(CONFIDENCE);
                naive |= at_c;
                // Every bound widens with the level (Clopper–Pearson and order statistics
                // by construction; the bootstrap draws the same first resamples with the
                // same seed, so its tail quantile only moves out; Cantelli's k grows), so a
                // look not satisfied at c is not satisfied at the stricter per-look level.
                // The bootstrap is judged at that level only where c said satisfied; the
                // cheap methods are judged at both, which checks the premise.
                if at_c || cheap {
                    let strict = satisfied(per_look);
                    assert!(
                        at_c || !strict,
                        "{} satisfied at {per_look} but not at {CONFIDENCE}",
                        cell.metric
                    );
                    bonferroni |= strict;
                }
            }
            naive_passes += u64::from(naive);
            bonferroni_passes += u64::from(bonferroni);
        }
        FalsePass {
            naive: naive_passes as f64 / cell.reps as f64,
            bonferroni: bonferroni_passes as f64 / cell.reps as f64,
        }
    }

    pub(super) fn cells() -> Vec<LoopCell> {
        let full = std::env::var("SLOGATE_STUDY_REPLICATIONS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000u64);
        let rows = [
            (Metric::ErrorRate, Population::Errors(0.01)),
            (Metric::ErrorRate, Population::Errors(0.05)),
            (
                Metric::LatencyPercentile(95.0),
                Population::Latency(Dist::LogNormal(1.0)),
            ),
            (
                Metric::LatencyPercentile(95.0),
                Population::Latency(Dist::Exponential),
            ),
            (
                Metric::LatencyMean,
                Population::Latency(Dist::LogNormal(0.5)),
            ),
            (Metric::LatencyMean, Population::Latency(Dist::Exponential)),
        ];
        let mut out = Vec::new();
        for (metric, population) in rows {
            for (looks, per_iteration) in PLANS {
                // A mean loop bootstraps every look: fewer loops, the more samples it holds.
                let reps = match (metric, per_iteration) {
                    (Metric::LatencyMean, 0..=100) => full / 5,
                    (Metric::LatencyMean, _) => full * 3 / 50,
                    _ => full,
                };
                let seed = SEED ^ 0x100c_u64.wrapping_add(out.len() as u64 * 0x9e37_79b9);
                out.push(LoopCell {
                    metric,
                    population,
                    looks,
                    per_iteration,
                    reps,
                    seed,
                });
            }
        }
        out
    }
}

#[test]
fn repeated_looks_keep_the_loop_within_its_level() {
    use repeated_looks::{FalsePass, PLANS};
    let started = std::time::Instant::now();
    let cells = repeated_looks::cells();
    let results: Vec<(usize, FalsePass)> = on_all_cores(&cells, |cell| {
        let t = std::time::Instant::now();
        let r = repeated_looks::run(cell);
        eprintln!(
            "{} | {} | K={} n={} | {:.3} / {:.3} | {} loops in {:.1} s",
            cell.metric,
            cell.population.name(),
            cell.looks,
            cell.per_iteration,
            r.naive,
            r.bonferroni,
            cell.reps,
            t.elapsed().as_secs_f64()
        );
        r
    })
    .into_iter()
    .enumerate()
    .collect();
    let budget = 1.0 - CONFIDENCE;
    let mut out = String::new();
    let _ = write!(out, "| metric | distribution |");
    for (k, n) in PLANS {
        let _ = write!(out, " K={k}, n={n} |");
    }
    out.push_str("\n|---|---|");
    for _ in PLANS {
        out.push_str("---|");
    }
    out.push('\n');
    let mut failures = Vec::new();
    for row in results.chunks(PLANS.len()) {
        let cell = &cells[row[0].0];
        let _ = write!(out, "| {} | {} |", cell.metric, cell.population.name());
        for (i, r) in row {
            let cell = &cells[*i];
            let _ = write!(out, " {:.3} / {:.3} |", r.naive, r.bonferroni);
            let ceiling = budget + 3.0 * (budget * (1.0 - budget) / cell.reps as f64).sqrt();
            if r.bonferroni > ceiling {
                failures.push(format!(
                    "{} on {} over {} looks of {}: {:.3} of loops passed wrongly (ceiling {:.3}, {} loops)",
                    cell.metric,
                    cell.population.name(),
                    cell.looks,
                    cell.per_iteration,
                    r.bonferroni,
                    ceiling,
                    cell.reps
                ));
            }
        }
        out.push('\n');
    }
    println!(
        "False-pass rate of the whole loop (any look satisfied while the SLO is not), with {CONFIDENCE} bounds at every look / with the Bonferroni per-look level (should be ≤ {budget:.2}).\n"
    );
    println!("{out}");
    println!("({:.0} s)", started.elapsed().as_secs_f64());
    assert!(
        failures.is_empty(),
        "the loop's false-pass rate exceeds its level:\n{}",
        failures.join("\n")
    );
}
