//! The experiment loop in a report: one line per iteration, and the weights over time as
//! a step chart for HTML.

use serde::Serialize;
use slogate_core::result::{ExperimentResult, IterationResult};
use slogate_core::rollout::{DeploymentPattern, IterationVerdict};

/// The loop as a reader sees it.
#[derive(Debug, Serialize)]
pub(crate) struct LoopView {
    /// `Progressive, 5 iterations of 10 s, candidate at most 75% (+20% per iteration)`.
    pub plan: String,
    /// How the confidence is shared across the looks.
    pub looks: String,
    /// One line per iteration judged.
    pub lines: Vec<String>,
    /// The weights over time; absent when no weights were written.
    pub chart: Option<WeightsChart>,
}

/// A step chart of each version's weight after each iteration.
#[derive(Debug, Serialize)]
pub(crate) struct WeightsChart {
    pub width: u32,
    pub height: u32,
    pub left: u32,
    pub right: u32,
    pub top: u32,
    pub bottom: u32,
    pub lines: Vec<WeightLine>,
    pub x_ticks: Vec<Tick>,
    pub y_ticks: Vec<Tick>,
}

/// One version's weights as a polyline.
#[derive(Debug, Serialize)]
pub(crate) struct WeightLine {
    pub name: String,
    /// `s0`, `s1`… the series colour.
    pub class: String,
    pub points: String,
    /// Where its legend entry goes.
    pub legend_y: u32,
}

/// An axis label.
#[derive(Debug, Serialize)]
pub(crate) struct Tick {
    pub pos: String,
    pub label: String,
}

const WIDTH: u32 = 640;
const HEIGHT: u32 = 220;
const LEFT: u32 = 48;
const RIGHT: u32 = 520;
const TOP: u32 = 16;
const BOTTOM: u32 = 190;

/// The loop's view, when the document has a loop.
pub(crate) fn loop_view(result: &ExperimentResult) -> Option<LoopView> {
    let strategy = result.strategy.as_ref()?;
    let mut plan = format!(
        "{:?}, {} iteration{} of {} s",
        strategy.deployment_pattern,
        strategy.iterations_planned,
        if strategy.iterations_planned == 1 {
            ""
        } else {
            "s"
        },
        strategy.interval_seconds
    );
    if let (DeploymentPattern::Progressive, Some(w)) =
        (strategy.deployment_pattern, strategy.weights)
    {
        plan.push_str(&format!(
            ", candidate at most {}% (+{}% per passing iteration)",
            w.max_candidate_weight, w.max_candidate_weight_increment
        ));
    }
    let looks =
        slogate_core::looks::Looks::new(result.confidence, strategy.iterations_planned).describe();
    let lines = result
        .iterations
        .iter()
        .map(|it| line(it, strategy.iterations_planned))
        .collect();
    Some(LoopView {
        plan,
        looks,
        lines,
        chart: chart(&result.iterations),
    })
}

/// `2/5  pass          candidate 40%, current 60%  (1,200 requests)  reason`.
fn line(it: &IterationResult, planned: u32) -> String {
    let verdict = match (it.verdict, it.rollback) {
        (_, true) => "fail, rolled back",
        (IterationVerdict::Pass, _) => "pass",
        (IterationVerdict::Fail, _) => "fail",
        (IterationVerdict::Inconclusive, _) => "inconclusive",
    };
    let weights = if it.weights.is_empty() {
        String::new()
    } else {
        let w: Vec<String> = it
            .weights
            .iter()
            .map(|(name, w)| format!("{name} {w}%"))
            .collect();
        format!(" → {}", w.join(", "))
    };
    format!(
        "{}/{planned} {}: {verdict}{weights} ({} requests): {}",
        it.index,
        crate::format::timestamp(it.at),
        crate::format::count(it.requests),
        it.reason
    )
}

fn chart(iterations: &[IterationResult]) -> Option<WeightsChart> {
    let names: Vec<&String> = iterations.first()?.weights.keys().collect();
    if names.is_empty() {
        return None;
    }
    let steps = iterations.len() as f64;
    let x = |i: f64| f64::from(LEFT) + (f64::from(RIGHT - LEFT)) * i / steps;
    let y = |w: u32| f64::from(BOTTOM) - f64::from(BOTTOM - TOP) * f64::from(w.min(100)) / 100.0;
    let lines = names
        .iter()
        .enumerate()
        .map(|(series, name)| {
            // A step chart: each iteration's weight holds until the next one's.
            let mut points = Vec::new();
            for (i, it) in iterations.iter().enumerate() {
                let w = it.weights.get(*name).copied().unwrap_or(0);
                points.push(format!("{:.1},{:.1}", x(i as f64), y(w)));
                points.push(format!("{:.1},{:.1}", x(i as f64 + 1.0), y(w)));
            }
            WeightLine {
                name: (*name).clone(),
                class: format!("s{}", series % 6),
                points: points.join(" "),
                legend_y: TOP + 14 * series as u32 + 8,
            }
        })
        .collect();
    let x_ticks = iterations
        .iter()
        .enumerate()
        .map(|(i, it)| Tick {
            pos: format!("{:.1}", (x(i as f64) + x(i as f64 + 1.0)) / 2.0),
            label: if it.rollback {
                format!("{} ↩", it.index)
            } else {
                it.index.to_string()
            },
        })
        .collect();
    let y_ticks = [0, 25, 50, 75, 100]
        .into_iter()
        .map(|w| Tick {
            pos: format!("{:.1}", y(w)),
            label: format!("{w}%"),
        })
        .collect();
    Some(WeightsChart {
        width: WIDTH,
        height: HEIGHT,
        left: LEFT,
        right: RIGHT,
        top: TOP,
        bottom: BOTTOM,
        lines,
        x_ticks,
        y_ticks,
    })
}
