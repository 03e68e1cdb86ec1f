//! Report renderers of slogate: text, markdown, json and html.
//!
//! [`render`] turns one [`ExperimentResult`] into what `slogate describe` prints:
//!
//! - [`Format::Text`]: the terminal report, laid out like `iter8ctl describe` (overview,
//!   progress, SLOs, metrics, verdict), plain and column-aligned.
//! - [`Format::Markdown`]: the same content as GitHub-flavoured markdown; it is the body of
//!   the promotion pull request.
//! - [`Format::Html`]: one self-contained page (inline CSS and SVG, nothing fetched) with a
//!   latency histogram chart.
//! - [`Format::Json`]: the result document itself.
//!
//! Text, markdown and html come from handlebars templates embedded in the binary. Every
//! string taken from the document is escaped for the output language, and a number that is
//! not finite is shown as `n/a`, never as `NaN`.

use std::fmt;
use std::str::FromStr;

use slogate_core::result::ExperimentResult;

pub use context::{TemplateError, check_template, render_template, template_context};

mod chart;
pub mod context;
mod escape;
mod format;
mod iterations;
mod table;
mod templates;
mod view;

/// An output format of [`render`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Plain, column-aligned text for a terminal.
    Text,
    /// GitHub-flavoured markdown (the pull request body).
    Markdown,
    /// The result document as pretty-printed JSON.
    Json,
    /// One self-contained html page with a histogram chart.
    Html,
}

impl Format {
    /// Every format, in the order help texts list them.
    pub const ALL: [Format; 4] = [Format::Text, Format::Markdown, Format::Json, Format::Html];

    /// The name `FromStr` accepts and `Display` prints.
    pub fn name(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Markdown => "markdown",
            Format::Json => "json",
            Format::Html => "html",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = ReportError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| ReportError::UnknownFormat {
                value: s.to_owned(),
            })
    }
}

/// Why a report could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The requested format name is not one of `text`, `markdown`, `json`, `html`.
    #[error("unknown report format \"{value}\": expected one of text, markdown, json, html")]
    UnknownFormat {
        /// The name that was given.
        value: String,
    },
    /// An embedded template does not parse; a defect of this crate, caught by its tests.
    #[error("report template is invalid")]
    Template(#[source] Box<handlebars::TemplateError>),
    /// A template asked for data the report does not provide; a defect of this crate.
    #[error("rendering the report failed")]
    Render(#[source] Box<handlebars::RenderError>),
    /// The document holds a number that is not finite, which JSON cannot represent and the
    /// result schema forbids.
    #[error("the result document holds a non-finite number at {path}")]
    NonFinite {
        /// Where, e.g. `versions[0].metrics["http/latency-mean"]`.
        path: String,
    },
    /// Serializing the document as JSON failed.
    #[error("serializing the result document as JSON failed")]
    Json(#[source] serde_json::Error),
}

/// What the reader's side knows beyond the document itself.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The time now, to tell a run that stopped publishing (see
    /// [`ExperimentResult::staleness`]); `None` reports no staleness.
    pub now: Option<jiff::Timestamp>,
    /// Facts found elsewhere, one sentence each (e.g. the Job that ran the experiment is
    /// gone); shown as warnings in the overview.
    pub notes: Vec<String>,
}

/// The warnings [`render_in`] shows for `result` in `context`: whether it is stale, then
/// the context's notes.
pub fn notes(result: &ExperimentResult, context: &Context) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(age) = context.now.and_then(|now| result.staleness(now)) {
        let every = result.publish_interval_seconds.unwrap_or_default();
        notes.push(format!(
            "stale: the result has not been updated for {}, though its run publishes every {}: the run was probably killed, and this result will not change",
            format::seconds(age.as_secs_f64()),
            format::seconds(every)
        ));
    }
    notes.extend(context.notes.iter().cloned());
    notes
}

/// Renders `result` in `format`. The text ends with a newline.
pub fn render(result: &ExperimentResult, format: Format) -> Result<String, ReportError> {
    render_in(result, format, &Context::default())
}

/// Renders `result` in `format` with what the reader knows beyond it (`context`): a stale
/// run, a Job that is gone. Json stays the document itself, with no notes.
pub fn render_in(
    result: &ExperimentResult,
    format: Format,
    context: &Context,
) -> Result<String, ReportError> {
    let kind = match format {
        Format::Json => return render_json(result),
        Format::Text => templates::Kind::Text,
        Format::Markdown => templates::Kind::Markdown,
        Format::Html => templates::Kind::Html,
    };
    let hb = templates::registry(kind)?;
    hb.render(
        templates::REPORT,
        &view::build(result, notes(result, context)),
    )
    .map_err(|e| ReportError::Render(Box::new(e)))
}

/// The document itself; refuses non-finite numbers rather than letting `serde_json` turn
/// them into `null`, which would no longer be a valid result document.
fn render_json(result: &ExperimentResult) -> Result<String, ReportError> {
    if let Some(path) = first_non_finite(result) {
        return Err(ReportError::NonFinite { path });
    }
    let mut json = serde_json::to_string_pretty(result).map_err(ReportError::Json)?;
    json.push('\n');
    Ok(json)
}

/// The path of the first number in the document that is NaN or infinite.
fn first_non_finite(r: &ExperimentResult) -> Option<String> {
    let bad = |v: f64| !v.is_finite();
    let bad_opt = |v: Option<f64>| v.is_some_and(bad);
    if bad(r.confidence) {
        return Some("confidence".into());
    }
    if bad(r.progress.elapsed_seconds) {
        return Some("progress.elapsedSeconds".into());
    }
    if bad_opt(r.progress.duration_planned_seconds) {
        return Some("progress.durationPlannedSeconds".into());
    }
    for (i, v) in r.versions.iter().enumerate() {
        if let Some((name, _)) = v.metrics.iter().find(|(_, v)| bad(**v)) {
            return Some(format!("versions[{i}].metrics[{name:?}]"));
        }
        if let Some(j) = v
            .histogram
            .iter()
            .position(|b| bad(b.lower_ms) || bad(b.upper_ms))
        {
            return Some(format!("versions[{i}].histogram[{j}]"));
        }
        if bad(v.achieved_qps) {
            return Some(format!("versions[{i}].achievedQps"));
        }
        if bad_opt(v.target_qps) {
            return Some(format!("versions[{i}].targetQps"));
        }
    }
    for (i, s) in r.slos.iter().enumerate() {
        let fields = [
            ("upperLimit", s.upper_limit),
            ("lowerLimit", s.lower_limit),
            ("observed", s.observed),
            ("interval.lower", s.interval.map(|i| i.lower)),
            ("interval.upper", s.interval.map(|i| i.upper)),
        ];
        if let Some((field, _)) = fields.iter().find(|(_, v)| bad_opt(*v)) {
            return Some(format!("slos[{i}].{field}"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_round_trip_and_unknown_names_are_named() {
        for f in Format::ALL {
            assert_eq!(f.to_string().parse::<Format>().unwrap(), f);
        }
        let err = "xml".parse::<Format>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown report format \"xml\": expected one of text, markdown, json, html"
        );
    }
}
