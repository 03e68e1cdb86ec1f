//! The result document turned into what a reader sees: sentences, formatted cells and chart
//! geometry. Templates only arrange it; every decision about wording lives here.

use std::collections::BTreeSet;

use serde::Serialize;
use slogate_core::result::{
    BoundsKind, CommitStatus, ContrastKind, ExperimentResult, PromotionOutcome, SloResult,
    SloVerdict, Stage, VersionResult,
};

use crate::chart::{self, Chart};
use crate::format::{self, MISSING};
use crate::table::Table;

/// Everything a report template reads.
#[derive(Debug, Serialize)]
pub(crate) struct View {
    pub name: String,
    pub namespace: Option<String>,
    /// `namespace/name`, or the name alone.
    pub qualified_name: String,
    pub stage: &'static str,
    /// `running`, `completed` or `failed`, for styling.
    pub stage_class: &'static str,
    pub failure: Option<String>,
    /// Warnings about the document itself, e.g. that its run stopped publishing.
    pub notes: Vec<String>,
    /// The run failed, so the verdict headline already states the failure.
    pub failure_in_verdict: bool,
    pub start: String,
    pub end: Option<String>,
    pub took: Option<String>,
    pub confidence: f64,
    pub versions: Vec<VersionView>,
    pub progress: ProgressView,
    pub slo_table: Table,
    pub has_slos: bool,
    /// What the SLO section says when there is no SLO result.
    pub no_slos: &'static str,
    pub metrics_table: Table,
    pub has_metrics: bool,
    /// Custom metrics (from Prometheus): per version, each metric's value and the queries
    /// that were sent.
    pub custom_metrics: Vec<CustomMetricView>,
    pub has_custom_metrics: bool,
    /// Sentences about how the load was generated that change how to read the metrics
    /// (a saturated load generator, requests resent after an idle close).
    pub load_notes: Vec<String>,
    pub verdict: VerdictView,
    /// Relative SLOs side by side: baseline, candidate, change, limit, bounds, verdict.
    pub comparison_table: Table,
    pub has_comparison: bool,
    /// Canary: the winner assessment.
    pub winner: Option<WinnerView>,
    /// The experiment loop: its plan, a line per iteration and the weights over time.
    pub experiment_loop: Option<crate::iterations::LoopView>,
    /// Load from several pods: how many reported, and a line per pod.
    pub load_pods: Option<LoadPodsView>,
    pub promotion: PromotionView,
    /// The finish actions, one line each; empty when the document records none.
    pub actions: Vec<ActionView>,
    pub histograms: Vec<HistogramView>,
    pub has_histograms: bool,
    /// A code fence none of the histogram text can close early.
    pub fence: String,
    pub chart: Chart,
}

/// The load pods of an Indexed Job.
#[derive(Debug, Serialize)]
pub(crate) struct LoadPodsView {
    /// `3 of 3 load pods reported`.
    pub headline: String,
    /// `#0 my-exp-1-0-x7k2p  done  101 requests at 52.3/s`.
    pub lines: Vec<String>,
}

fn load_pods(result: &ExperimentResult) -> Option<LoadPodsView> {
    use slogate_core::parallel::PodState;
    if result.load_pods.is_empty() {
        return None;
    }
    let reported = result
        .load_pods
        .iter()
        .filter(|p| p.state == PodState::Done)
        .count();
    let width = result
        .load_pods
        .iter()
        .map(|p| p.pod.len())
        .max()
        .unwrap_or(0);
    let lines = result
        .load_pods
        .iter()
        .map(|p| {
            let pod = if p.pod.is_empty() {
                "-"
            } else {
                p.pod.as_str()
            };
            let state = match p.state {
                PodState::Done => "done",
                PodState::Failed => "failed",
                PodState::Missing => "missing",
                PodState::Ready => "ready",
            };
            let mut line = format!(
                "#{} {pod:width$}  {state:7}  {} requests at {:.1}/s",
                p.index,
                format::count(p.requests),
                p.achieved_rate
            );
            if let Some(reason) = &p.reason {
                line.push_str(&format!(": {reason}"));
            }
            line
        })
        .collect();
    Some(LoadPodsView {
        headline: format!(
            "{reported} of {} load pods reported",
            result.load_pods.len()
        ),
        lines,
    })
}

/// The winner of a Canary experiment.
#[derive(Debug, Serialize)]
pub(crate) struct WinnerView {
    pub symbol: &'static str,
    /// `candidate`, `current`, or `no winner found`.
    pub headline: String,
    pub sentence: String,
    /// The winner's variables, `promote=candidate, revision=v2`.
    pub variables: Option<String>,
}

/// One custom metric of one version: its value and the queries sent for it.
#[derive(Debug, Serialize)]
pub(crate) struct CustomMetricView {
    pub version: String,
    pub name: String,
    pub kind: &'static str,
    /// The value with its unit, or why there is none.
    pub value: String,
    pub queries: Vec<QueryView>,
}

/// One query as sent.
#[derive(Debug, Serialize)]
pub(crate) struct QueryView {
    /// `numerator`, `denominator` or `query`.
    pub role: String,
    pub query: String,
    /// A markdown code fence the query cannot close early.
    pub fence: String,
}

/// See [`View::custom_metrics`].
fn custom_metrics(versions: &[VersionResult]) -> Vec<CustomMetricView> {
    use slogate_core::custom::CustomValue;
    let mut out = Vec::new();
    for v in versions {
        for m in &v.custom_metrics {
            let unit = m
                .unit
                .as_deref()
                .map(|u| format!(" {u}"))
                .unwrap_or_default();
            let value = match (&m.evidence, m.value) {
                (CustomValue::NoData { reason }, _) => format!("no data: {reason}"),
                (
                    CustomValue::Ratio {
                        numerator,
                        denominator,
                    },
                    Some(x),
                ) => format!(
                    "{} ({} of {})",
                    format::number(x),
                    format::number(*numerator),
                    format::number(*denominator)
                ),
                (CustomValue::Value { .. }, Some(x)) => format!(
                    "{}{unit} (judged on its value; no sampling interval)",
                    format::number(x)
                ),
                (_, Some(x)) => format!("{}{unit}", format::number(x)),
                (_, None) => MISSING.to_owned(),
            };
            out.push(CustomMetricView {
                version: v.name.clone(),
                name: m.name.clone(),
                kind: m.kind.name(),
                value,
                queries: m
                    .queries
                    .iter()
                    .map(|(role, query)| QueryView {
                        role: role.clone(),
                        query: query.clone(),
                        fence: crate::escape::fence_for(query),
                    })
                    .collect(),
            });
        }
    }
    out
}

/// One version in the overview.
#[derive(Debug, Serialize)]
pub(crate) struct VersionView {
    pub name: String,
    /// ` (baseline)` or ` (candidate)` in a Canary experiment, else empty.
    pub role: String,
    /// The name padded to the longest version name, for aligned text.
    pub padded_name: String,
    pub url: String,
}

/// How far the load got.
#[derive(Debug, Serialize)]
pub(crate) struct ProgressView {
    pub requests_done: u64,
    pub requests_planned: Option<u64>,
    pub elapsed_seconds: f64,
    pub duration_planned_seconds: Option<f64>,
    /// Share of the planned requests done, 0 to 1, when the run is bounded by a count.
    pub requests_fraction: Option<f64>,
    /// Share of the planned time gone, 0 to 1, when the run is bounded by time.
    pub time_fraction: Option<f64>,
    /// Whether there is a plan to measure progress against.
    pub has_plan: bool,
    /// Measured requests per version, `current 1,500 · candidate 1,500`, when several
    /// versions are loaded at once.
    pub by_version: Option<String>,
    /// The share of the plan done as a CSS width (`42.0%`).
    pub bar_width: String,
}

/// The overall verdict as one headline, one sentence and the SLOs that did not hold.
#[derive(Debug, Serialize)]
pub(crate) struct VerdictView {
    pub symbol: &'static str,
    /// `PASS`, `FAIL`, `RUNNING`, `RUN FAILED` or `NO VERDICT`.
    pub headline: &'static str,
    /// The markdown title: what happened, in a few words.
    pub title: &'static str,
    /// `pass`, `fail` or `pending`, for styling.
    pub class: &'static str,
    pub sentence: String,
    pub details: Vec<VerdictDetail>,
}

/// One SLO that was not satisfied, and why.
#[derive(Debug, Serialize)]
pub(crate) struct VerdictDetail {
    pub symbol: &'static str,
    /// Version and metric.
    pub subject: String,
    pub reason: String,
}

/// What promotion did, in words, with the pull request link when there is one.
#[derive(Debug, Serialize)]
pub(crate) struct PromotionView {
    /// False when the document records no promotion outcome.
    pub present: bool,
    /// The outcome, e.g. `opened pull request #42` or `skipped: the verdict failed`.
    pub sentence: String,
    pub url: Option<String>,
    /// A dry run's rendered pull request body.
    pub dry_run_body: Option<String>,
    pub failed: bool,
    /// The commit status on the pull request's head, e.g.
    /// `commit status slogate/slo: success on abc1234`.
    pub commit_status: Option<String>,
    /// Steps after the pull request that failed (labels, reviewers, commit status).
    pub warnings: Vec<String>,
}

/// One finish action of `actions.finish` in words: `✔ exec (actions.finish[0], if always): done: helm upgrade … → exit 0`.
#[derive(Debug, Serialize)]
pub(crate) struct ActionView {
    pub symbol: &'static str,
    pub line: String,
    pub failed: bool,
    /// A failed command's last line of error output (or of output), when it wrote one.
    pub last_output: Option<String>,
}

fn actions(result: &ExperimentResult) -> Vec<ActionView> {
    use slogate_core::actions::Outcome;
    result
        .actions
        .iter()
        // The `promotion` block's pull request has its own line ("Promotion: …").
        .filter(|a| a.at != "promotion")
        .map(|a| {
            let (symbol, failed) = match a.outcome {
                Outcome::Pending | Outcome::Running => ("…", false),
                Outcome::Done => ("✔", false),
                Outcome::Skipped => ("-", false),
                Outcome::Failed | Outcome::Interrupted | Outcome::Superseded => ("✘", true),
            };
            let last_output = a.exec.as_ref().filter(|_| failed).and_then(|e| {
                [&e.stderr, &e.stdout].into_iter().find_map(|tail| {
                    tail.text
                        .lines()
                        .rev()
                        .find(|l| !l.trim().is_empty())
                        .map(|l| l.trim().chars().take(200).collect::<String>())
                })
            });
            ActionView {
                symbol,
                line: format!(
                    "{} ({}, if {}): {}: {}",
                    a.kind, a.at, a.condition, a.outcome, a.detail
                ),
                failed,
                last_output,
            }
        })
        .collect()
}

/// The text histogram of one version.
#[derive(Debug, Serialize)]
pub(crate) struct HistogramView {
    pub version: String,
    pub requests: String,
    pub lines: Vec<String>,
}

/// Symbol, word and html class of an SLO verdict.
fn verdict_marks(v: SloVerdict) -> (&'static str, &'static str) {
    match v {
        SloVerdict::Satisfied => ("✔", "satisfied"),
        SloVerdict::Violated => ("✘", "violated"),
        SloVerdict::Inconclusive => ("?", "inconclusive"),
        SloVerdict::NoData => ("-", "noData"),
    }
}

/// A value of an SLO row: the metric's value, or for a relative SLO its contrast
/// (`1.083×`, `+2.500 ms`).
fn slo_value(slo: &SloResult, v: f64) -> String {
    match slo.comparison.as_ref().map(|c| c.contrast) {
        Some(ContrastKind::Ratio) => format!("{}×", format::number(v)),
        Some(ContrastKind::Difference) => {
            let sign = if v < 0.0 { "-" } else { "+" };
            format!("{sign}{}", format::metric_value(&slo.metric, v.abs()))
        }
        None => format::metric_value(&slo.metric, v),
    }
}

/// The condition an SLO sets: `<= 100.000`, `>= 5.000` or `in [5.000, 100.000]`; for a
/// relative SLO, `<= 1.100× current`.
fn condition(slo: &SloResult) -> String {
    let versus = slo
        .comparison
        .as_ref()
        .map_or_else(String::new, |c| format!(" {}", c.versus));
    let limit = |v: f64| format!("{}{versus}", slo_value(slo, v));
    match (slo.lower_limit, slo.upper_limit) {
        (Some(lo), Some(hi)) => format!("in [{}, {}]", limit(lo), limit(hi)),
        (None, Some(hi)) => format!("<= {}", limit(hi)),
        (Some(lo), None) => format!(">= {}", limit(lo)),
        (None, None) => MISSING.to_owned(),
    }
}

/// Builds the view of a result document, with `notes` about it from the reader's side.
pub(crate) fn build(result: &ExperimentResult, notes: Vec<String>) -> View {
    let multiple = result.versions.len() > 1;
    let name_width = result
        .versions
        .iter()
        .map(|v| v.name.chars().count())
        .max()
        .unwrap_or(0);
    let versions = result
        .versions
        .iter()
        .map(|v| VersionView {
            role: match (&result.winner, v.role) {
                (Some(_), Some(slogate_core::spec::Role::Baseline)) => " (baseline)".to_owned(),
                (Some(_), Some(slogate_core::spec::Role::Candidate)) => " (candidate)".to_owned(),
                _ => String::new(),
            },
            name: v.name.clone(),
            padded_name: format!("{:<name_width$}", v.name),
            url: v.url.clone(),
        })
        .collect();
    let took = result
        .end_time
        .map(|end| format::seconds(end.duration_since(result.start_time).as_secs_f64()));
    let histograms: Vec<HistogramView> = result
        .versions
        .iter()
        .filter_map(|v| {
            let lines = chart::text_histogram(&v.histogram);
            (!lines.is_empty()).then(|| HistogramView {
                version: crate::escape::text(&v.name),
                requests: format::count(v.histogram.iter().map(|b| b.count).sum()),
                lines,
            })
        })
        .collect();
    let fence = crate::escape::fence_for(
        &histograms
            .iter()
            .map(|h| h.version.as_str())
            .collect::<String>(),
    );
    View {
        name: result.name.clone(),
        namespace: result.namespace.clone(),
        qualified_name: match &result.namespace {
            Some(ns) => format!("{ns}/{}", result.name),
            None => result.name.clone(),
        },
        stage: match result.stage {
            Stage::Waiting => "Waiting (for readiness)",
            Stage::Running => "Running",
            Stage::Finishing => "Finishing (promotion under way)",
            Stage::Completed => "Completed",
            Stage::Failed => "Failed",
        },
        stage_class: match result.stage {
            Stage::Waiting | Stage::Running => "running",
            Stage::Finishing => "finishing",
            Stage::Completed => "completed",
            Stage::Failed => "failed",
        },
        failure: result.failure.clone(),
        notes,
        failure_in_verdict: result.stage == Stage::Failed,
        start: format::timestamp(result.start_time),
        end: result.end_time.map(format::timestamp),
        took,
        confidence: result.confidence,
        versions,
        progress: progress(result),
        slo_table: slo_table(result, multiple),
        has_slos: !result.slos.is_empty(),
        no_slos: match result.stage {
            Stage::Waiting | Stage::Running => "No SLO has been judged yet.",
            Stage::Finishing | Stage::Completed | Stage::Failed => "No SLOs are configured.",
        },
        metrics_table: metrics_table(&result.versions),
        has_metrics: result.versions.iter().any(|v| !v.metrics.is_empty()),
        custom_metrics: custom_metrics(&result.versions),
        has_custom_metrics: result.versions.iter().any(|v| !v.custom_metrics.is_empty()),
        load_notes: load_notes(&result.versions),
        verdict: verdict(result, multiple),
        comparison_table: comparison_table(result),
        has_comparison: result.slos.iter().any(|s| s.comparison.is_some()),
        experiment_loop: crate::iterations::loop_view(result),
        load_pods: load_pods(result),
        winner: result.winner.as_ref().map(|w| WinnerView {
            symbol: if w.found { "✔" } else { "?" },
            headline: w
                .name
                .clone()
                .unwrap_or_else(|| "no winner found".to_owned()),
            sentence: w.reason.clone(),
            variables: (!w.variables.is_empty()).then(|| {
                w.variables
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }),
        }),
        promotion: promotion(result),
        actions: actions(result),
        has_histograms: !histograms.is_empty(),
        histograms,
        fence,
        chart: chart::svg_chart(&result.versions, &result.slos),
    }
}

fn progress(result: &ExperimentResult) -> ProgressView {
    let p = &result.progress;
    let share = |done: f64, planned: f64| {
        let f = done / planned;
        (planned > 0.0 && f.is_finite()).then(|| f.clamp(0.0, 1.0))
    };
    let requests_fraction = p
        .requests_planned
        .and_then(|planned| share(p.requests_done as f64, planned as f64));
    let time_fraction = p
        .duration_planned_seconds
        .and_then(|planned| share(p.elapsed_seconds, planned));
    ProgressView {
        requests_done: p.requests_done,
        requests_planned: p.requests_planned,
        elapsed_seconds: p.elapsed_seconds,
        duration_planned_seconds: p.duration_planned_seconds,
        requests_fraction,
        time_fraction,
        bar_width: format!(
            "{:.1}%",
            requests_fraction.or(time_fraction).unwrap_or(0.0) * 100.0
        ),
        has_plan: requests_fraction.is_some() || time_fraction.is_some(),
        by_version: (p.versions.len() > 1).then(|| {
            result
                .versions
                .iter()
                .filter_map(|v| {
                    p.versions
                        .get(&v.name)
                        .map(|n| format!("{} {}", v.name, format::count(*n)))
                })
                .collect::<Vec<_>>()
                .join(" · ")
        }),
    }
}

fn slo_table(result: &ExperimentResult, multiple: bool) -> Table {
    let interval_title = match result.judgement {
        Some(j) if j.bounds == BoundsKind::OneSided => {
            format!("Bounds (one-sided {})", format::percent(result.confidence))
        }
        _ => format!("Interval ({})", format::percent(result.confidence)),
    };
    let mut columns = vec![
        ("Metric", false),
        ("Condition", false),
        ("Observed", true),
        (interval_title.as_str(), false),
        ("Verdict", false),
        ("Method", false),
    ];
    if multiple {
        columns.insert(0, ("Version", false));
    }
    let mut table = Table::new(&columns);
    table.set_class(columns.len() - 2, "verdict");
    for slo in &result.slos {
        let (symbol, word) = verdict_marks(slo.verdict);
        let interval = slo.interval.map_or_else(
            || MISSING.to_owned(),
            |i| format!("[{}, {}]", slo_value(slo, i.lower), slo_value(slo, i.upper)),
        );
        let mut cells = vec![
            format::metric_label(&slo.metric),
            condition(slo),
            slo.observed
                .map_or_else(|| MISSING.to_owned(), |v| slo_value(slo, v)),
            interval,
            format!("{symbol} {word}"),
            slo.method.clone(),
        ];
        if multiple {
            cells.insert(0, slo.version.clone());
        }
        table.push(word, cells);
    }
    table
}

/// The relative SLOs side by side: the baseline's and the candidate's value, the change,
/// the limit, the one-sided bounds of the change and the verdict.
fn comparison_table(result: &ExperimentResult) -> Table {
    let bounds_title = format!("Bounds (one-sided {})", format::percent(result.confidence));
    let baseline = result
        .slos
        .iter()
        .find_map(|s| s.comparison.as_ref().map(|c| c.versus.clone()))
        .unwrap_or_else(|| "baseline".to_owned());
    let candidate = result
        .slos
        .iter()
        .find_map(|s| s.comparison.as_ref().map(|_| s.version.clone()))
        .unwrap_or_else(|| "candidate".to_owned());
    let mut table = Table::new(&[("Metric", false)]);
    table.add_document_column(&baseline, true);
    table.add_document_column(&candidate, true);
    for (title, numeric) in [
        ("Change", true),
        ("Limit", false),
        (bounds_title.as_str(), false),
        ("Verdict", false),
    ] {
        table.add_column(title, numeric);
    }
    table.set_class(6, "verdict");
    for slo in &result.slos {
        let Some(c) = &slo.comparison else { continue };
        let (symbol, word) = verdict_marks(slo.verdict);
        let interval = slo.interval.map_or_else(
            || MISSING.to_owned(),
            |i| format!("[{}, {}]", slo_value(slo, i.lower), slo_value(slo, i.upper)),
        );
        let limit = match (&c.max_increase, &c.max_decrease) {
            (Some(up), Some(down)) => format!("+{up} / -{down}"),
            (Some(up), None) => format!("at most +{up}"),
            (None, Some(down)) => format!("at most -{down}"),
            (None, None) => MISSING.to_owned(),
        };
        table.push(
            word,
            vec![
                format::metric_label(&slo.metric),
                format::metric_value_opt(&slo.metric, c.baseline),
                format::metric_value_opt(&slo.metric, c.candidate),
                slo.observed
                    .map_or_else(|| MISSING.to_owned(), |v| slo_value(slo, v)),
                limit,
                interval,
                format!("{symbol} {word}"),
            ],
        );
    }
    table
}

/// Every metric of every version, then rate, status codes and error kinds.
fn metrics_table(versions: &[VersionResult]) -> Table {
    let mut table = Table::new(&[("Metric", false)]);
    for v in versions {
        table.add_document_column(&v.name, true);
    }

    let mut names: Vec<&String> = versions
        .iter()
        .flat_map(|v| v.metrics.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    names.sort_by_key(|m| format::metric_order(m));
    for name in names {
        let mut cells = vec![format::metric_label(name)];
        cells.extend(
            versions
                .iter()
                .map(|v| format::metric_value_opt(name, v.metrics.get(name).copied())),
        );
        table.push("metric", cells);
    }

    let mut row = |label: String, cell: &dyn Fn(&VersionResult) -> String| {
        let mut cells = vec![label];
        cells.extend(versions.iter().map(cell));
        table.push("extra", cells);
    };
    row("request rate (req/s)".to_owned(), &|v| {
        format::number(v.achieved_qps)
    });
    if versions.iter().any(|v| v.target_qps.is_some()) {
        row("target rate (req/s)".to_owned(), &|v| {
            v.target_qps
                .map_or_else(|| MISSING.to_owned(), format::number)
        });
    }
    // The corrected latency above is from each request's scheduled send; the service time
    // from its actual send. They differ when requests waited to be sent.
    let mut service_names: Vec<&String> = versions
        .iter()
        .filter_map(|v| v.service_time.as_ref())
        .flat_map(|s| s.metrics.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|name| service_time_differs(versions, name))
        .collect();
    service_names.sort_by_key(|m| format::metric_order(m));
    for name in service_names {
        row(
            format!("service time: {}", format::metric_label(name)),
            &|v| {
                format::metric_value_opt(
                    name,
                    v.service_time
                        .as_ref()
                        .and_then(|s| s.metrics.get(name).copied()),
                )
            },
        );
    }
    if versions.iter().any(|v| v.peak_connections.is_some()) {
        row("connections (most open)".to_owned(), &|v| {
            v.peak_connections
                .map_or_else(|| MISSING.to_owned(), |n| format::count(u64::from(n)))
        });
    }
    if versions.iter().any(|v| v.resends > 0) {
        row("resent after an idle close".to_owned(), &|v| {
            format::count(v.resends)
        });
    }
    let statuses: BTreeSet<&String> = versions
        .iter()
        .flat_map(|v| v.status_counts.keys())
        .collect();
    // Every version of an experiment is loaded with the same protocol.
    let status_word = match versions.first().map(|v| v.protocol) {
        Some(slogate_core::metrics::Protocol::Grpc) => "grpc-status",
        _ => "status",
    };
    for status in statuses {
        row(format!("{status_word} {status}"), &|v| {
            format::count(v.status_counts.get(status).copied().unwrap_or(0))
        });
    }
    let kinds: BTreeSet<_> = versions.iter().flat_map(|v| v.error_kinds.keys()).collect();
    for kind in kinds {
        let word = serde_json::to_value(kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("{kind:?}"));
        row(format!("errors: {word}"), &|v| {
            format::count(v.error_kinds.get(kind).copied().unwrap_or(0))
        });
    }
    table
}

/// A latency metric's uncorrected service time, when it differs from the corrected latency
/// by more than 1 % (and 0.01 ms) in some version: only then is it worth a row.
fn service_time_differs(versions: &[VersionResult], name: &str) -> bool {
    versions.iter().any(|v| {
        let corrected = v.metrics.get(name).copied();
        let service = v
            .service_time
            .as_ref()
            .and_then(|s| s.metrics.get(name).copied());
        match (corrected, service) {
            (Some(c), Some(s)) => (c - s).abs() > (0.01 * c.abs()).max(0.01),
            (None, Some(_)) => true,
            _ => false,
        }
    })
}

/// See [`View::load_notes`].
fn load_notes(versions: &[VersionResult]) -> Vec<String> {
    let mut notes = Vec::new();
    for v in versions {
        if let Some(s) = &v.saturation {
            notes.push(format!(
                "{}: {}; {} requests waited inside slogate for a free connection, so its latency SLOs are inconclusive: the service was not measured at the planned rate.",
                v.name,
                s.reason,
                format::count(s.late_requests)
            ));
        }
        if v.resends > 0 {
            notes.push(format!(
                "{}: {} requests were sent again on a new connection because the service had closed their idle kept-alive connection (keep-alive timeout); they are not errors.",
                v.name,
                format::count(v.resends)
            ));
        }
    }
    notes
}

fn verdict(result: &ExperimentResult, multiple: bool) -> VerdictView {
    let details = result
        .slos
        .iter()
        .filter(|s| s.verdict != SloVerdict::Satisfied)
        .map(|s| {
            let (symbol, _) = verdict_marks(s.verdict);
            let metric = format::metric_label(&s.metric);
            let mut reason = s.reason.trim().to_owned();
            if let (SloVerdict::Inconclusive, Some(n)) = (s.verdict, s.requests_needed) {
                if !reason.is_empty() && !reason.ends_with('.') {
                    reason.push('.');
                }
                if !reason.is_empty() {
                    reason.push(' ');
                }
                let chance = result.judgement.map_or_else(String::new, |j| {
                    format!(
                        " with {} probability",
                        format::percent(j.decision_probability)
                    )
                });
                reason.push_str(&format!(
                    "About {} requests would decide it{chance}.",
                    format::count(n)
                ));
            }
            let metric = match &s.comparison {
                Some(c) => format!("{metric} versus {}", c.versus),
                None => metric,
            };
            VerdictDetail {
                symbol,
                subject: if multiple {
                    format!("{} {metric}", s.version)
                } else {
                    metric
                },
                reason,
            }
        })
        .collect();
    let (symbol, headline, title, class, sentence) = match (result.stage, &result.verdict) {
        (Stage::Failed, _) => (
            "✘",
            "RUN FAILED",
            "Experiment failed",
            "fail",
            format!(
                "The run failed before a verdict: {}",
                result
                    .failure
                    .as_deref()
                    .unwrap_or("no reason was recorded.")
            ),
        ),
        (_, Some(v)) if v.pass => ("✔", "PASS", "SLOs satisfied", "pass", v.reason.clone()),
        (_, Some(v)) => ("✘", "FAIL", "SLOs not met", "fail", v.reason.clone()),
        (Stage::Waiting, None) => (
            "…",
            "WAITING",
            "Experiment waiting",
            "pending",
            "No load sent yet: waiting for the readiness objects.".to_owned(),
        ),
        (Stage::Running, None) => (
            "…",
            "RUNNING",
            "Experiment running",
            "pending",
            "No verdict yet: load is still being sent.".to_owned(),
        ),
        (Stage::Finishing | Stage::Completed, None) => (
            "?",
            "NO VERDICT",
            "No verdict",
            "pending",
            "The run completed but recorded no verdict.".to_owned(),
        ),
    };
    VerdictView {
        symbol,
        headline,
        title,
        class,
        sentence,
        details,
    }
}

fn promotion(result: &ExperimentResult) -> PromotionView {
    let mut view = PromotionView {
        present: result.promotion.is_some(),
        sentence: String::new(),
        url: None,
        dry_run_body: None,
        failed: false,
        commit_status: result
            .promotion
            .as_ref()
            .and_then(PromotionOutcome::commit_status)
            .map(commit_status_sentence),
        warnings: result
            .promotion
            .as_ref()
            .map(|p| p.warnings().to_vec())
            .unwrap_or_default(),
    };
    // Only a web address becomes a link; anything else (say `javascript:`) stays text.
    let mut link = |number: u64, url: &str| {
        if url.starts_with("https://") || url.starts_with("http://") {
            view.url = Some(url.to_owned());
            format!("#{number}")
        } else {
            format!("#{number} ({url})")
        }
    };
    view.sentence = match &result.promotion {
        Some(PromotionOutcome::Opened { number, url, .. }) => {
            format!("opened pull request {}", link(*number, url))
        }
        Some(PromotionOutcome::Updated { number, url, .. }) => {
            format!("updated pull request {}", link(*number, url))
        }
        Some(PromotionOutcome::Skipped { reason }) => format!("skipped: {reason}"),
        Some(PromotionOutcome::DryRun { title, body }) => {
            view.dry_run_body = Some(body.clone());
            format!("dry run: would open pull request \"{title}\"")
        }
        Some(PromotionOutcome::Failed { reason }) => {
            view.failed = true;
            format!("FAILED: {reason} (the SLO verdict stands)")
        }
        Some(PromotionOutcome::Superseded { reason, .. }) => {
            view.failed = true;
            format!("SUPERSEDED: {reason}")
        }
        Some(PromotionOutcome::Interrupted { reason }) => {
            view.failed = true;
            format!(
                "INTERRUPTED before it ended ({reason}); a pull request may or may not have been opened, and re-running updates it (the SLO verdict stands)"
            )
        }
        None => match result.stage {
            Stage::Waiting | Stage::Running => "not attempted yet".to_owned(),
            // A document listing its actions says whether a pull request is among them.
            Stage::Finishing
                if !result.actions.is_empty()
                    && !result
                        .actions
                        .iter()
                        .any(|a| a.kind == slogate_core::actions::ActionKind::PullRequest) =>
            {
                "none configured".to_owned()
            }
            Stage::Finishing => {
                "in progress: the pull request is being opened or updated".to_owned()
            }
            Stage::Failed => "not attempted".to_owned(),
            Stage::Completed => "none configured".to_owned(),
        },
    };
    view
}

/// The commit status in words, with the SHA shortened the way GitHub shows it.
fn commit_status_sentence(status: &CommitStatus) -> String {
    let sha: String = status.sha.chars().take(7).collect();
    let mut sentence = format!(
        "commit status {}: {} on {sha}",
        status.context, status.state
    );
    if let Some(error) = &status.error {
        sentence.push_str(&format!(" (not set: {error})"));
    }
    sentence
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;
    use slogate_core::result::{API_VERSION, KIND, Progress};

    use super::*;

    fn completed() -> ExperimentResult {
        ExperimentResult {
            api_version: API_VERSION.to_owned(),
            kind: KIND.to_owned(),
            name: "exp".to_owned(),
            namespace: None,
            start_time: Timestamp::UNIX_EPOCH,
            end_time: None,
            stage: Stage::Completed,
            progress: Progress {
                requests_done: 0,
                requests_planned: None,
                elapsed_seconds: 0.0,
                duration_planned_seconds: None,
                versions: Default::default(),
            },
            failure: None,
            confidence: 0.95,
            versions: Vec::new(),
            slos: Vec::new(),
            verdict: None,
            promotion: None,
            updated_at: None,
            publish_interval_seconds: None,
            judgement: None,
            testing_pattern: None,
            winner: None,
            strategy: None,
            iterations: Vec::new(),
            load_pods: Vec::new(),
            actions: Vec::new(),
        }
    }

    fn promotion_of(outcome: Option<PromotionOutcome>) -> PromotionView {
        promotion(&ExperimentResult {
            promotion: outcome,
            ..completed()
        })
    }

    #[test]
    fn every_promotion_outcome_reads_as_a_sentence() {
        let opened = promotion_of(Some(PromotionOutcome::Opened {
            number: 3,
            url: "https://github.com/o/r/pull/3".to_owned(),
            commit_status: None,
            warnings: Vec::new(),
        }));
        assert_eq!(opened.sentence, "opened pull request #3");
        assert_eq!(opened.commit_status, None);
        assert_eq!(opened.url.as_deref(), Some("https://github.com/o/r/pull/3"));
        let updated = promotion_of(Some(PromotionOutcome::Updated {
            number: 4,
            url: "javascript:alert(1)".to_owned(),
            commit_status: Some(CommitStatus {
                state: "failure".to_owned(),
                sha: "abc1234def5678".to_owned(),
                context: "slogate/slo".to_owned(),
                error: Some("GitHub answered 403".to_owned()),
            }),
            warnings: Vec::new(),
        }));
        assert_eq!(
            updated.commit_status.as_deref(),
            Some("commit status slogate/slo: failure on abc1234 (not set: GitHub answered 403)")
        );
        assert_eq!(
            updated.sentence,
            "updated pull request #4 (javascript:alert(1))"
        );
        assert_eq!(updated.url, None, "only a web address becomes a link");
        let dry = promotion_of(Some(PromotionOutcome::DryRun {
            title: "Promote staging".to_owned(),
            body: "## body".to_owned(),
        }));
        assert_eq!(
            dry.sentence,
            "dry run: would open pull request \"Promote staging\""
        );
        assert_eq!(dry.dry_run_body.as_deref(), Some("## body"));
        let failed = promotion_of(Some(PromotionOutcome::Failed {
            reason: "GitHub answered 502".to_owned(),
        }));
        assert!(failed.failed);
        assert_eq!(
            failed.sentence,
            "FAILED: GitHub answered 502 (the SLO verdict stands)"
        );
        assert!(!promotion_of(None).present);
        assert_eq!(promotion_of(None).sentence, "none configured");
        let interrupted = promotion_of(Some(PromotionOutcome::Interrupted {
            reason: "Interrupted: SIGTERM".to_owned(),
        }));
        assert!(interrupted.failed);
        assert!(
            interrupted
                .sentence
                .starts_with("INTERRUPTED before it ended (Interrupted: SIGTERM)"),
            "{}",
            interrupted.sentence
        );
    }

    #[test]
    fn promotion_under_way_is_not_reported_as_none_configured() {
        let finishing = promotion(&ExperimentResult {
            stage: Stage::Finishing,
            ..completed()
        });
        assert_eq!(
            finishing.sentence,
            "in progress: the pull request is being opened or updated"
        );
        let v = build(
            &ExperimentResult {
                stage: Stage::Finishing,
                ..completed()
            },
            Vec::new(),
        );
        assert_eq!(v.stage, "Finishing (promotion under way)");
    }

    #[test]
    fn one_sided_bounds_and_decision_probability_are_stated() {
        let slo = SloResult {
            version: "v1".into(),
            metric: "http/latency-p95".into(),
            upper_limit: Some(100.0),
            lower_limit: None,
            observed: Some(90.0),
            interval: None,
            verdict: SloVerdict::Inconclusive,
            requests_needed: Some(5000),
            method: "order-statistic".into(),
            comparison: None,
            reason: "It straddles.".into(),
        };
        let judged = ExperimentResult {
            slos: vec![slo],
            judgement: Some(slogate_core::result::Judgement::current()),
            testing_pattern: None,
            winner: None,
            ..completed()
        };
        assert!(
            slo_table(&judged, false)
                .to_markdown()
                .contains("Bounds (one-sided 95%)")
        );
        assert_eq!(
            verdict(&judged, false).details[0].reason,
            "It straddles. About 5,000 requests would decide it with 80% probability."
        );
        // Documents from before say what they said then.
        let old = ExperimentResult {
            judgement: None,
            testing_pattern: None,
            winner: None,
            ..judged
        };
        assert!(
            slo_table(&old, false)
                .to_markdown()
                .contains("Interval (95%)")
        );
    }

    #[test]
    fn a_completed_run_without_verdict_says_so() {
        let v = build(&completed(), Vec::new());
        assert_eq!(v.verdict.headline, "NO VERDICT");
        assert_eq!(v.no_slos, "No SLOs are configured.");
        assert!(!v.chart.has_data);
    }
}
