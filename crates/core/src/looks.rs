//! Confidence levels for a rollout that judges its evidence more than once.
//!
//! A progressive rollout judges the evidence gathered so far (cumulative since the start of
//! the load) after each of `K` planned iterations, its **looks**: the candidate's weight
//! goes up after a look that passes, the run is rolled back at a look that fails, and the
//! last look decides. Each look's verdict is right with probability at least `c` (see
//! [`crate::stats`]), but the loop is wrong when **any** of its looks is: judged at the
//! fixed-sample level `c` every time, a candidate whose SLO is not met gets `K` chances
//! to be called satisfied, and the chance that one of them does grows with `K` (the
//! coverage study in `crates/core/tests/coverage.rs` measures it: 10% to 20% instead of
//! 5% over 10 looks at 95%).
//!
//! [`Looks`] splits the error budget `1 − c` evenly across the planned looks (Bonferroni):
//! each look computes its bounds at `1 − (1 − c) / K` (0.995 for 0.95 over 10 looks). A look
//! calls an SLO satisfied wrongly only when its upper bound misses the true value, which
//! happens with probability at most `(1 − c) / K`; by the union bound the chance that any
//! of the `K` looks does is at most `1 − c`, **whatever the dependence between the looks**
//! (cumulative samples make them strongly dependent) and whenever the loop stops. The
//! same holds for a wrong "violated" through the lower bounds. The price is wider bounds at
//! every look: a look needs somewhat more requests to decide than a single judgement at `c`
//! would (for a normal statistic, `z` grows from 1.645 to 2.576 at 10 looks).
//!
//! The guarantee is for the planned number of looks: a loop must not look more often than
//! it planned, while looking less often only spends less of the budget.

use crate::stats;

/// The confidence plan of a loop of looks: the level the whole loop holds and how many
/// times it will judge its evidence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Looks {
    /// Planned looks (iterations judged); at least 1.
    pub planned: u32,
    /// Level the whole loop holds (0.95 by default): the chance that no look of the loop
    /// calls an SLO wrongly is at least this.
    pub confidence: f64,
}

impl Looks {
    /// A loop of `planned` looks holding `confidence` as a whole. A plan of 0 looks is
    /// taken as one look (a single judgement).
    pub fn new(confidence: f64, planned: u32) -> Self {
        Self {
            planned: planned.max(1),
            confidence,
        }
    }

    /// The level each look's bounds are computed at: `1 − (1 − c) / K`.
    pub fn per_look(&self) -> f64 {
        1.0 - (1.0 - self.confidence) / f64::from(self.planned.max(1))
    }

    /// How the level is split, as written in reports: `"single"` for one look,
    /// `"bonferroni"` otherwise.
    pub fn method(&self) -> &'static str {
        if self.planned <= 1 {
            "single"
        } else {
            "bonferroni"
        }
    }

    /// Whether the bootstrap-based metrics (mean, standard deviation, relative mean) can be
    /// bounded at the per-look level; when not, their SLOs are inconclusive at every look.
    /// The other metrics have no limit on the level.
    pub fn bootstrap_supported(&self) -> bool {
        stats::bootstrap_resamples(self.per_look()).is_some()
    }

    /// The most looks a loop at `confidence` can plan while the bootstrap-based metrics can
    /// still be bounded at every look (50 at 0.95, 10 at 0.99); 0 when even a single look
    /// at `confidence` is beyond the bootstrap.
    pub fn most_bootstrap_looks(confidence: f64) -> u32 {
        if !Looks::new(confidence, 1).bootstrap_supported() {
            return 0;
        }
        let room = (1.0 - confidence) / (1.0 - stats::highest_bootstrap_confidence());
        // Plans whose per-look level the bootstrap resolves, checked one by one.
        let mut k = room.floor().clamp(1.0, f64::from(u32::MAX)) as u32;
        while k > 1 && !Looks::new(confidence, k).bootstrap_supported() {
            k -= 1;
        }
        while k < u32::MAX && Looks::new(confidence, k + 1).bootstrap_supported() {
            k += 1;
        }
        k
    }

    /// One sentence for reports: the level of each look and what the loop holds.
    pub fn describe(&self) -> String {
        let whole = percent(self.confidence);
        if self.planned <= 1 {
            return format!("the single look uses {whole} bounds");
        }
        format!(
            "each of the {} planned looks uses {} bounds, so the whole loop holds {whole} (Bonferroni split across looks)",
            self.planned,
            percent(self.per_look())
        )
    }
}

/// A level as a percentage with up to three decimals, trailing zeros dropped (95%, 99.5%,
/// 99.75%, 96.667%).
fn percent(level: f64) -> String {
    let s = format!("{:.3}", level * 100.0);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}%")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::new_latency_histogram;

    #[test]
    fn per_look_level_splits_the_budget() {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(close(Looks::new(0.95, 10).per_look(), 0.995));
        assert!(close(Looks::new(0.95, 20).per_look(), 0.9975));
        assert!(close(Looks::new(0.95, 5).per_look(), 0.99));
        assert!(close(Looks::new(0.9, 1).per_look(), 0.9));
        // The union bound: K looks at the per-look level spend exactly 1 − c.
        let l = Looks::new(0.95, 7);
        assert!(close(7.0 * (1.0 - l.per_look()), 0.05));
        // No look planned is one look, never a division by zero.
        assert_eq!(Looks::new(0.95, 0).planned, 1);
        assert!(close(Looks::new(0.95, 0).per_look(), 0.95));
    }

    #[test]
    fn method_and_description_name_the_split() {
        assert_eq!(Looks::new(0.95, 1).method(), "single");
        assert_eq!(Looks::new(0.95, 10).method(), "bonferroni");
        assert_eq!(
            Looks::new(0.95, 10).describe(),
            "each of the 10 planned looks uses 99.5% bounds, so the whole loop holds 95% (Bonferroni split across looks)"
        );
        assert_eq!(
            Looks::new(0.95, 20).describe(),
            "each of the 20 planned looks uses 99.75% bounds, so the whole loop holds 95% (Bonferroni split across looks)"
        );
        assert_eq!(
            Looks::new(0.95, 1).describe(),
            "the single look uses 95% bounds"
        );
        assert_eq!(
            Looks::new(0.9, 3).describe(),
            "each of the 3 planned looks uses 96.667% bounds, so the whole loop holds 90% (Bonferroni split across looks)"
        );
    }

    #[test]
    fn the_bootstrap_bounds_the_mean_at_every_look_of_twenty() {
        // 20 looks at 95 % need 99.75 % bounds at each: 40,000 resamples.
        let looks = Looks::new(0.95, 20);
        assert!(looks.bootstrap_supported());
        let mut h = new_latency_histogram();
        for i in 0..2000u64 {
            h.record(10_000 + (i % 50) * 200).unwrap();
        }
        let wide = stats::mean_bounds(&h, looks.per_look()).unwrap();
        let narrow = stats::mean_bounds(&h, 0.95).unwrap();
        assert!(wide.lower < narrow.lower && narrow.upper < wide.upper);
        assert!(stats::stddev_bounds(&h, looks.per_look()).is_ok());
        let mut other = new_latency_histogram();
        for i in 0..2000u64 {
            other.record(10_500 + (i % 40) * 250).unwrap();
        }
        let ratio =
            stats::mean_contrast_bounds(&other, &h, stats::Contrast::Ratio, looks.per_look())
                .unwrap();
        // True ratio of the means: 15.375 / 14.9.
        let truth = 15.375 / 14.9;
        assert!(ratio.lower < truth && truth < ratio.upper, "{ratio:?}");
        let at_c = stats::mean_contrast_bounds(&other, &h, stats::Contrast::Ratio, 0.95).unwrap();
        assert!(ratio.lower < at_c.lower && at_c.upper < ratio.upper);
        assert_eq!(Looks::most_bootstrap_looks(0.95), 50);
        assert_eq!(Looks::most_bootstrap_looks(0.99), 10);
        assert!(!Looks::new(0.95, 51).bootstrap_supported());
        assert_eq!(Looks::most_bootstrap_looks(0.9995), 0);
    }
}
