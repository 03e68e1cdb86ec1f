//! The pull request's title and body: handlebars templates from the spec, or the defaults
//! (a one-line title and the markdown report of `slogate describe -o markdown`).
//!
//! Templates render in strict mode, so a misspelt field is an error rather than an empty
//! string in a pull request, and without HTML escaping, since the output is markdown.
//!
//! The context a template sees:
//!
//! | field | what |
//! | --- | --- |
//! | `name`, `namespace` | the experiment |
//! | `owner`, `repo`, `base`, `head` | the promotion settings |
//! | `pass` | `true` when the overall verdict is pass |
//! | `verdict` | `pass`, `fail` or `none` |
//! | `reason` | the verdict's one-sentence reason |
//! | `report` | the markdown report |
//! | `result` | the whole result document (camelCase, as in `result.json`) |
//! | `winner.name`, `winner.found`, `winner.reason`, `winner.variables.*` | a Canary experiment's winner (name `null` and no variables when none was found) |
//! | `versions.NAME.variables.*` | every version's variables |
//! | the winner's variables | also at the top level (`{{promote}}`), unless they clash with a field above |

use handlebars::Handlebars;
use serde_json::json;
use slogate_core::result::ExperimentResult;
use slogate_core::spec::PromotionSpec;

/// GitHub refuses a pull request title longer than this many characters.
pub const MAX_TITLE_CHARS: usize = 256;
/// GitHub refuses a pull request body longer than this many characters.
pub const MAX_BODY_CHARS: usize = 65_536;

/// A rendered pull request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrContent {
    /// One line, at most [`MAX_TITLE_CHARS`] characters.
    pub title: String,
    /// Markdown, at most [`MAX_BODY_CHARS`] characters.
    pub body: String,
}

/// Which template a [`RenderError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `promotion.title`.
    Title,
    /// `promotion.body`.
    Body,
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Field::Title => "promotion.title",
            Field::Body => "promotion.body",
        })
    }
}

/// Why the pull request could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A template from the spec does not parse.
    #[error("{field}: the template does not parse: {source}")]
    Template {
        /// Which template.
        field: Field,
        /// What the parser said.
        #[source]
        source: Box<handlebars::TemplateError>,
    },
    /// A template refers to something the context does not have (strict mode), or a helper
    /// failed.
    #[error("{field}: the template cannot be rendered: {source}")]
    Render {
        /// Which template.
        field: Field,
        /// What the renderer said.
        #[source]
        source: Box<handlebars::RenderError>,
    },
    /// The default body, the markdown report, could not be produced.
    #[error("the markdown report for the pull request body could not be rendered")]
    Report(#[source] slogate_report::ReportError),
    /// The title rendered to nothing but whitespace; GitHub refuses an empty title.
    #[error("{field}: the template renders an empty title")]
    EmptyTitle {
        /// Always [`Field::Title`].
        field: Field,
    },
}

/// Checks that the spec's templates parse, before any load is sent; `slogate run` reports a
/// failure as invalid input naming the field.
pub fn check_templates(spec: &PromotionSpec) -> Result<(), RenderError> {
    for (field, text) in [(Field::Title, &spec.title), (Field::Body, &spec.body)] {
        if let Some(text) = text {
            handlebars::Template::compile(text).map_err(|e| RenderError::Template {
                field,
                source: Box::new(e),
            })?;
        }
    }
    Ok(())
}

/// The pull request title: the `title` template, or a default naming the experiment, the
/// verdict and the branches. Always one line.
pub fn pr_title(spec: &PromotionSpec, result: &ExperimentResult) -> Result<String, RenderError> {
    let raw = match &spec.title {
        Some(template) => render(Field::Title, template, &context(spec, result, None))?,
        None => default_title(spec, result),
    };
    // A title is one line: newlines from a template become spaces.
    let title = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if title.is_empty() {
        return Err(RenderError::EmptyTitle {
            field: Field::Title,
        });
    }
    Ok(truncate(&title, MAX_TITLE_CHARS, "…"))
}

/// The pull request body: the `body` template (with the markdown report in its context as
/// `report`), or the markdown report itself.
pub fn pr_body(spec: &PromotionSpec, result: &ExperimentResult) -> Result<String, RenderError> {
    let report = slogate_report::render(result, slogate_report::Format::Markdown)
        .map_err(RenderError::Report)?;
    let body = match &spec.body {
        Some(template) => render(Field::Body, template, &context(spec, result, Some(&report)))?,
        None => report,
    };
    Ok(truncate(
        &body,
        MAX_BODY_CHARS,
        "\n\n… (truncated: GitHub limits a pull request body to 65536 characters; the whole result is in the result document)\n",
    ))
}

/// Title and body together.
pub fn pr_content(
    spec: &PromotionSpec,
    result: &ExperimentResult,
) -> Result<PrContent, RenderError> {
    Ok(PrContent {
        title: pr_title(spec, result)?,
        body: pr_body(spec, result)?,
    })
}

fn default_title(spec: &PromotionSpec, result: &ExperimentResult) -> String {
    match result.verdict.as_ref().map(|v| v.pass) {
        Some(true) => format!(
            "Promote {} to {}: {} satisfies its SLOs",
            spec.head, spec.base, result.name
        ),
        _ => format!(
            "{}: SLOs not satisfied ({} → {})",
            result.name, spec.head, spec.base
        ),
    }
}

fn context(
    spec: &PromotionSpec,
    result: &ExperimentResult,
    report: Option<&str>,
) -> serde_json::Value {
    let extra = [
        ("owner", &spec.owner),
        ("repo", &spec.repo),
        ("base", &spec.base),
        ("head", &spec.head),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), json!(value)))
    .collect();
    slogate_report::template_context(result, report, extra)
}

fn render(field: Field, template: &str, ctx: &serde_json::Value) -> Result<String, RenderError> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(handlebars::no_escape);
    hb.register_template_string("t", template)
        .map_err(|e| RenderError::Template {
            field,
            source: Box::new(e),
        })?;
    hb.render("t", ctx).map_err(|e| RenderError::Render {
        field,
        source: Box::new(e),
    })
}

/// Cuts `text` to at most `max` characters, ending with `marker` when it was cut.
fn truncate(text: &str, max: usize, marker: &str) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let keep = max.saturating_sub(marker.chars().count());
    let mut out: String = text.chars().take(keep).collect();
    out.push_str(marker);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use slogate_core::result::{OverallVerdict, Stage};
    use slogate_core::spec::ExperimentSpec;

    fn spec() -> PromotionSpec {
        PromotionSpec::new("octo", "hello", "master", "staging")
    }

    #[test]
    fn templates_see_the_winner_and_its_variables() {
        let mut r = result(true);
        r.winner = Some(slogate_core::result::Winner {
            found: true,
            name: Some("candidate".into()),
            role: Some(slogate_core::spec::Role::Candidate),
            variables: [("promote".to_owned(), "candidate".to_owned())].into(),
            reason: "candidate wins".into(),
        });
        let mut spec = PromotionSpec::new("o", "r", "master", "staging");
        spec.title =
            Some("promote {{winner.variables.promote}} ({{winner.name}}, {{promote}})".into());
        assert_eq!(
            pr_title(&spec, &r).unwrap(),
            "promote candidate (candidate, candidate)"
        );
    }

    fn result(pass: bool) -> ExperimentResult {
        let exp = ExperimentSpec::from_yaml(
            "name: my-exp\nversions: [{name: v1, url: 'http://127.0.0.1:1/'}]\n",
        )
        .unwrap();
        let mut r = ExperimentResult::running(&exp, jiff::Timestamp::UNIX_EPOCH);
        r.stage = Stage::Completed;
        r.end_time = Some(jiff::Timestamp::UNIX_EPOCH);
        r.verdict = Some(OverallVerdict {
            pass,
            reason: "every SLO is satisfied at 95 % confidence.".into(),
        });
        r
    }

    #[test]
    fn default_title_names_branches_and_experiment() {
        let title = pr_title(&spec(), &result(true)).unwrap();
        assert_eq!(
            title,
            "Promote staging to master: my-exp satisfies its SLOs"
        );
        let title = pr_title(&spec(), &result(false)).unwrap();
        assert_eq!(title, "my-exp: SLOs not satisfied (staging → master)");
    }

    #[test]
    fn default_body_is_the_markdown_report() {
        let r = result(true);
        let body = pr_body(&spec(), &r).unwrap();
        let report = slogate_report::render(&r, slogate_report::Format::Markdown).unwrap();
        assert_eq!(body, report);
    }

    #[test]
    fn templates_see_the_result_and_are_not_html_escaped() {
        let mut s = spec();
        s.title = Some("{{name}} & {{head}}: {{verdict}}\n({{result.kind}})".into());
        s.body = Some("{{#if pass}}OK{{/if}} <{{reason}}>\n\n{{report}}".into());
        let r = result(true);
        assert_eq!(
            pr_title(&s, &r).unwrap(),
            "my-exp & staging: pass (ExperimentResult)"
        );
        let body = pr_body(&s, &r).unwrap();
        assert!(
            body.starts_with("OK <every SLO is satisfied at 95 % confidence.>\n\n"),
            "{body}"
        );
        assert!(body.len() > 60, "the report follows: {body}");
    }

    #[test]
    fn strict_mode_names_the_field_of_an_unknown_variable() {
        let mut s = spec();
        s.title = Some("{{nmae}}".into());
        let err = pr_title(&s, &result(true)).unwrap_err();
        assert!(
            matches!(
                err,
                RenderError::Render {
                    field: Field::Title,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().starts_with("promotion.title:"), "{err}");
    }

    #[test]
    fn a_template_that_does_not_parse_is_caught_before_any_run() {
        let mut s = spec();
        s.body = Some("{{#if pass}}unclosed".into());
        let err = check_templates(&s).unwrap_err();
        assert!(
            matches!(
                err,
                RenderError::Template {
                    field: Field::Body,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(check_templates(&spec()).is_ok());
    }

    #[test]
    fn blank_title_is_refused_and_long_texts_are_cut_to_githubs_limits() {
        let mut s = spec();
        s.title = Some("{{#if false}}x{{/if}}  ".into());
        assert!(matches!(
            pr_title(&s, &result(true)),
            Err(RenderError::EmptyTitle { .. })
        ));
        s.title = Some("t".repeat(400));
        assert_eq!(
            pr_title(&s, &result(true)).unwrap().chars().count(),
            MAX_TITLE_CHARS
        );
        s.body = Some("é".repeat(70_000));
        let body = pr_body(&s, &result(true)).unwrap();
        assert_eq!(body.chars().count(), MAX_BODY_CHARS);
        assert!(body.ends_with("in the result document)\n"));
    }
}
