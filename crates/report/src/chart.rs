//! Pictures of the latency histogram: text bars for markdown, and the geometry of the inline
//! SVG chart of the html report (the template only draws what is computed here).

use serde::Serialize;
use slogate_core::result::{HistogramBucket, SloResult, VersionResult};

use crate::{escape, format};

/// Most rows a text histogram shows; finer histograms are merged into wider buckets.
const TEXT_ROWS: usize = 20;
/// Width of the longest text bar, in characters.
const TEXT_BAR: usize = 32;
/// Distinct series colours the html stylesheet defines (`.s0` … `.s5`).
const SERIES_COLOURS: usize = 6;

/// A bucket that can be drawn: finite bounds, upper above lower, not below zero.
fn drawable(b: &HistogramBucket) -> bool {
    b.lower_ms.is_finite() && b.upper_ms.is_finite() && b.lower_ms >= 0.0 && b.upper_ms > b.lower_ms
}

/// The drawable buckets from the first non-empty one to the last, in latency order.
fn occupied_range(buckets: &[HistogramBucket]) -> Vec<HistogramBucket> {
    let mut sorted: Vec<HistogramBucket> =
        buckets.iter().filter(|b| drawable(b)).cloned().collect();
    sorted.sort_by(|a, b| a.lower_ms.total_cmp(&b.lower_ms));
    let first = sorted.iter().position(|b| b.count > 0);
    let last = sorted.iter().rposition(|b| b.count > 0);
    match (first, last) {
        (Some(first), Some(last)) => sorted[first..=last].to_vec(),
        _ => Vec::new(),
    }
}

/// Merges neighbouring buckets so at most `rows` remain, keeping the bounds exact.
fn rebin(buckets: Vec<HistogramBucket>, rows: usize) -> Vec<HistogramBucket> {
    if buckets.len() <= rows {
        return buckets;
    }
    let group = buckets.len().div_ceil(rows);
    buckets
        .chunks(group)
        .map(|chunk| HistogramBucket {
            lower_ms: chunk[0].lower_ms,
            upper_ms: chunk[chunk.len() - 1].upper_ms,
            count: chunk.iter().map(|b| b.count).sum(),
        })
        .collect()
}

/// The histogram of one version as text rows: `0.5 – 1 ms  ████▍   312  3.1%`.
/// Empty when the version has no latency samples.
pub(crate) fn text_histogram(buckets: &[HistogramBucket]) -> Vec<String> {
    let rows = rebin(occupied_range(buckets), TEXT_ROWS);
    let total: u64 = rows.iter().map(|b| b.count).sum();
    let max = rows.iter().map(|b| b.count).max().unwrap_or(0);
    if total == 0 {
        return Vec::new();
    }
    let lows: Vec<String> = rows.iter().map(|b| format::short_ms(b.lower_ms)).collect();
    let highs: Vec<String> = rows.iter().map(|b| format::short_ms(b.upper_ms)).collect();
    let counts: Vec<String> = rows.iter().map(|b| format::count(b.count)).collect();
    let low_w = lows.iter().map(String::len).max().unwrap_or(0);
    let high_w = highs.iter().map(String::len).max().unwrap_or(0);
    let count_w = counts.iter().map(String::len).max().unwrap_or(0);
    rows.iter()
        .enumerate()
        .map(|(i, b)| {
            let share = b.count as f64 / total as f64;
            format!(
                "{:>low_w$} – {:<high_w$} ms  {:<TEXT_BAR$}  {:>count_w$}  {:>6}",
                lows[i],
                highs[i],
                bar(b.count, max),
                counts[i],
                format::percent(share),
            )
        })
        .collect()
}

/// A bar of eighth-blocks, `count / max` of [`TEXT_BAR`] long; never invisible for a
/// non-empty bucket.
fn bar(count: u64, max: u64) -> String {
    if count == 0 || max == 0 {
        return String::new();
    }
    let eighths = ((count as f64 / max as f64) * (TEXT_BAR * 8) as f64)
        .round()
        .max(1.0) as usize;
    let mut s = "█".repeat(eighths / 8);
    const PARTS: [&str; 8] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
    s.push_str(PARTS[eighths % 8]);
    s
}

/// Everything the html template needs to draw the histogram chart. Coordinates are already
/// formatted numbers in SVG user units, always finite.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Chart {
    /// False when no version has a latency sample: the report says so instead of drawing.
    pub has_data: bool,
    pub width: u32,
    pub height: u32,
    pub left: String,
    pub right: String,
    pub top: String,
    pub bottom: String,
    /// Where x-axis tick marks end, below the axis.
    pub tick_end: String,
    /// Middle of the plot, for the axis titles.
    pub center_x: String,
    pub center_y: String,
    pub bars: Vec<Bar>,
    pub x_ticks: Vec<Tick>,
    pub y_ticks: Vec<Tick>,
    pub limits: Vec<LimitMarker>,
    pub legend: Vec<LegendItem>,
}

/// One bucket of one version.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Bar {
    pub x: String,
    pub y: String,
    pub width: String,
    pub height: String,
    /// Colour class index (`s0` …).
    pub series: usize,
    pub version: String,
    /// Tooltip: bounds, count and share.
    pub title: String,
}

/// An axis tick: its position along the axis and its label.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Tick {
    pub pos: String,
    pub label: String,
}

/// A vertical line at an SLO latency limit, with its label.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LimitMarker {
    pub x: String,
    pub label_x: String,
    pub label_y: String,
    /// `start` or `end`: labels near the right edge grow leftwards.
    pub anchor: &'static str,
    pub label: String,
}

/// A legend entry: colour swatch and version name.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LegendItem {
    pub x: String,
    pub text_x: String,
    pub series: usize,
    pub label: String,
}

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 320.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = WIDTH - 16.0;
const TOP: f64 = 36.0;
const BOTTOM: f64 = HEIGHT - 48.0;

/// A coordinate as SVG text; non-finite values (which the arithmetic below avoids) fall back
/// to 0 so nothing like `NaN` can reach the page.
fn coord(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.1}")
    } else {
        "0".to_owned()
    }
}

/// The 1-2-5 sequence value at or below `v` (`round_up` false) or at or above it.
fn nice(v: f64, round_up: bool) -> f64 {
    let decade = 10f64.powf(v.log10().floor());
    let steps = [1.0, 2.0, 5.0, 10.0];
    if round_up {
        steps
            .iter()
            .map(|s| s * decade)
            .find(|&s| s >= v * (1.0 - 1e-9))
            .unwrap_or(10.0 * decade)
    } else {
        steps
            .iter()
            .rev()
            .map(|s| s * decade)
            .find(|&s| s <= v * (1.0 + 1e-9))
            .unwrap_or(decade)
    }
}

/// Latency limits worth a marker: upper or lower limits on latency statistics that are
/// positions on the latency axis (not the standard deviation).
fn latency_limits(slos: &[SloResult]) -> Vec<(String, f64)> {
    let mut limits: Vec<(String, f64)> = Vec::new();
    for slo in slos {
        // A relative SLO's limit is a ratio or a difference, not a place on the axis.
        if slo.comparison.is_some() {
            continue;
        }
        let Some(stat) = slo.metric.strip_prefix("http/latency-") else {
            continue;
        };
        if stat == "stddev" {
            continue;
        }
        let stat = escape::text(stat);
        let marks = [(slo.upper_limit, "≤"), (slo.lower_limit, "≥")];
        for (limit, op) in marks {
            let Some(value) = limit.filter(|v| v.is_finite() && *v > 0.0) else {
                continue;
            };
            let label = format!("{stat} {op} {} ms", format::short_ms(value));
            if !limits.iter().any(|(l, v)| *l == label && *v == value) {
                limits.push((label, value));
            }
        }
    }
    limits.sort_by(|a, b| a.1.total_cmp(&b.1));
    limits
}

/// Lays out the histogram chart: one series per version (share of that version's requests
/// per bucket, so versions with different request counts compare), a log latency axis, and
/// a marker at each latency limit.
pub(crate) fn svg_chart(versions: &[VersionResult], slos: &[SloResult]) -> Chart {
    let series: Vec<(String, Vec<HistogramBucket>, u64)> = versions
        .iter()
        .map(|v| {
            let buckets: Vec<HistogramBucket> = occupied_range(&v.histogram)
                .into_iter()
                .filter(|b| b.count > 0)
                .collect();
            let total = buckets.iter().map(|b| b.count).sum();
            (escape::text(&v.name), buckets, total)
        })
        .collect();
    let limits = latency_limits(slos);
    let mut chart = Chart {
        has_data: series.iter().any(|(_, _, total)| *total > 0),
        width: WIDTH as u32,
        height: HEIGHT as u32,
        left: coord(LEFT),
        right: coord(RIGHT),
        top: coord(TOP),
        bottom: coord(BOTTOM),
        tick_end: coord(BOTTOM + 4.0),
        center_x: coord((LEFT + RIGHT) / 2.0),
        center_y: coord((TOP + BOTTOM) / 2.0),
        bars: Vec::new(),
        x_ticks: Vec::new(),
        y_ticks: Vec::new(),
        limits: Vec::new(),
        legend: Vec::new(),
    };
    if !chart.has_data {
        return chart;
    }

    // A zero lower bound has no place on a log axis: such a bucket starts at half its upper.
    let start = |b: &HistogramBucket| {
        if b.lower_ms > 0.0 {
            b.lower_ms
        } else {
            b.upper_ms / 2.0
        }
    };
    let bounds = series
        .iter()
        .flat_map(|(_, buckets, _)| buckets.iter().flat_map(|b| [start(b), b.upper_ms]))
        .chain(limits.iter().map(|(_, v)| *v));
    let (lo, hi) = bounds.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    // Headroom on both sides, so a bar or a limit never sits on the frame.
    let lo = nice(lo / 1.2, false);
    let mut hi = nice(hi * 1.2, true);
    if hi <= lo {
        hi = nice(lo * 1.5, true);
    }
    let (log_lo, log_span) = (lo.log10(), hi.log10() - lo.log10());
    let sx = |v: f64| LEFT + (v.max(lo).log10() - log_lo) / log_span * (RIGHT - LEFT);

    let max_share = series
        .iter()
        .flat_map(|(_, buckets, total)| buckets.iter().map(move |b| b.count as f64 / *total as f64))
        .fold(0.0, f64::max);
    let y_step = nice(max_share / 5.0, true);
    let y_top = (max_share / y_step).ceil().max(1.0) * y_step;
    let sy = |share: f64| BOTTOM - share / y_top * (BOTTOM - TOP);

    for (index, (name, buckets, total)) in series.iter().enumerate() {
        for b in buckets {
            let share = b.count as f64 / *total as f64;
            let x = sx(start(b));
            let width = (sx(b.upper_ms) - x).max(1.0);
            // A non-empty bucket stays visible however small its share.
            let height = (BOTTOM - sy(share)).max(1.0);
            chart.bars.push(Bar {
                x: coord(x),
                y: coord(BOTTOM - height),
                width: coord(width),
                height: coord(height),
                series: index % SERIES_COLOURS,
                version: name.clone(),
                title: format!(
                    "{name}: {} – {} ms: {} requests ({})",
                    format::short_ms(b.lower_ms),
                    format::short_ms(b.upper_ms),
                    format::count(b.count),
                    format::percent(share)
                ),
            });
        }
    }

    let decades = log_span;
    let mut tick = lo;
    while tick <= hi * (1.0 + 1e-9) {
        let mantissa = tick / 10f64.powf(tick.log10().floor());
        // Many decades: label only powers of ten, so labels never collide.
        if decades <= 4.0 || (mantissa - 1.0).abs() < 1e-6 {
            chart.x_ticks.push(Tick {
                pos: coord(sx(tick)),
                label: format::short_ms(tick),
            });
        }
        tick = nice(tick * 1.000_001, true);
    }
    let mut share = 0.0;
    while share <= y_top * (1.0 + 1e-9) {
        chart.y_ticks.push(Tick {
            pos: coord(sy(share)),
            label: format::percent(share),
        });
        share += y_step;
    }

    for (i, (label, value)) in limits.into_iter().enumerate() {
        let x = sx(value);
        let near_right = x > LEFT + (RIGHT - LEFT) * 0.7;
        chart.limits.push(LimitMarker {
            x: coord(x),
            label_x: coord(if near_right { x - 4.0 } else { x + 4.0 }),
            // Stagger labels so neighbouring limits stay readable.
            label_y: coord(TOP + 12.0 + 14.0 * (i % 4) as f64),
            anchor: if near_right { "end" } else { "start" },
            label,
        });
    }

    let mut x = LEFT;
    for (index, (name, _, total)) in series.iter().enumerate() {
        let label = format!("{name} ({} requests)", format::count(*total));
        chart.legend.push(LegendItem {
            x: coord(x),
            text_x: coord(x + 16.0),
            series: index % SERIES_COLOURS,
            label: label.clone(),
        });
        // About 7 user units per character at the legend's font size.
        x += 16.0 + 7.0 * label.chars().count() as f64 + 24.0;
    }
    chart
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(lower_ms: f64, upper_ms: f64, count: u64) -> HistogramBucket {
        HistogramBucket {
            lower_ms,
            upper_ms,
            count,
        }
    }

    #[test]
    fn rebinning_keeps_counts_and_bounds() {
        let fine: Vec<_> = (0..50)
            .map(|i| bucket(i as f64, i as f64 + 1.0, 1))
            .collect();
        let rows = rebin(fine, 20);
        assert!(rows.len() <= 20);
        assert_eq!(rows.iter().map(|b| b.count).sum::<u64>(), 50);
        assert_eq!(rows[0].lower_ms, 0.0);
        assert_eq!(rows[rows.len() - 1].upper_ms, 50.0);
    }

    #[test]
    fn text_rows_trim_empty_ends_and_skip_broken_buckets() {
        let rows = text_histogram(&[
            bucket(0.5, 1.0, 0),
            bucket(1.0, 2.0, 30),
            bucket(f64::NAN, 3.0, 99),
            bucket(2.0, 4.0, 10),
            bucket(4.0, 8.0, 0),
        ]);
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert!(rows[0].starts_with("1 – 2 ms  ████"), "{}", rows[0]);
        assert!(rows[1].ends_with("10     25%"), "{}", rows[1]);
    }

    #[test]
    fn nice_values_follow_one_two_five() {
        assert_eq!(nice(0.7, false), 0.5);
        assert_eq!(nice(0.7, true), 1.0);
        assert_eq!(nice(130.0, true), 200.0);
        assert_eq!(nice(20.0, true), 20.0);
    }
}
