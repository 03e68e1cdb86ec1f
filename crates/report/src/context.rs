//! What a spec's handlebars templates see (the pull request's title and body, an `exec`
//! action's arguments): one context built from the result document, so every template
//! reads the same names.
//!
//! | field | what |
//! | --- | --- |
//! | `name`, `namespace` | the experiment |
//! | `pass` | `true` when the overall verdict is pass |
//! | `verdict` | `pass`, `fail` or `none` |
//! | `reason` | the verdict's one-sentence reason (the failure when there is no verdict) |
//! | `report` | the markdown report, where the caller gives it (a pull request body) |
//! | `result` | the whole result document (camelCase, as in `result.json`) |
//! | `winner.name`, `winner.found`, `winner.reason`, `winner.variables.*` | a Canary experiment's winner |
//! | `versions.NAME.variables.*` | every version's variables |
//! | the winner's variables | also at the top level (`{{promote}}`, as the Iter8 tutorial's `{{ .promote }}`), unless they clash with a field above or one the caller adds |
//!
//! [`render_template`] renders in strict mode (a misspelt field is an error, not an empty
//! string) and without HTML escaping.

use handlebars::Handlebars;
use serde_json::{Map, Value, json};
use slogate_core::result::ExperimentResult;

/// The context of a template, from `result`; `report` is the markdown report when the
/// template may use it, and `extra` fields the caller adds (the pull request's `owner`,
/// `repo`, `base`, `head`), which win over the winner's variables of the same name.
pub fn template_context(
    result: &ExperimentResult,
    report: Option<&str>,
    extra: Map<String, Value>,
) -> Value {
    let (verdict, pass, reason) = match &result.verdict {
        Some(v) => (
            if v.pass { "pass" } else { "fail" },
            v.pass,
            v.reason.as_str(),
        ),
        None => ("none", false, result.failure.as_deref().unwrap_or("")),
    };
    let versions: Map<String, Value> = result
        .versions
        .iter()
        .map(|v| (v.name.clone(), json!({ "variables": v.variables })))
        .collect();
    let mut ctx = json!({
        "name": result.name,
        "namespace": result.namespace,
        "pass": pass,
        "verdict": verdict,
        "reason": reason,
        "report": report,
        "result": result,
        "versions": versions,
    });
    let Some(top) = ctx.as_object_mut() else {
        return ctx;
    };
    top.extend(extra);
    if let Some(winner) = &result.winner {
        top.insert(
            "winner".to_owned(),
            json!({
                "found": winner.found,
                "name": winner.name,
                "reason": winner.reason,
                "variables": winner.variables,
            }),
        );
        for (key, value) in &winner.variables {
            top.entry(key.clone()).or_insert_with(|| json!(value));
        }
    }
    ctx
}

/// Why a template did not render.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The template does not parse.
    #[error("the template does not parse: {0}")]
    Syntax(#[source] Box<handlebars::TemplateError>),
    /// It refers to something the context does not have (strict mode), or a helper failed.
    #[error("the template cannot be rendered: {0}")]
    Render(#[source] Box<handlebars::RenderError>),
}

/// Checks that `template` parses, before anything is run.
pub fn check_template(template: &str) -> Result<(), TemplateError> {
    handlebars::Template::compile(template)
        .map(|_| ())
        .map_err(|e| TemplateError::Syntax(Box::new(e)))
}

/// Renders `template` with `ctx` in strict mode, without escaping.
pub fn render_template(template: &str, ctx: &Value) -> Result<String, TemplateError> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(handlebars::no_escape);
    hb.register_template_string("t", template)
        .map_err(|e| TemplateError::Syntax(Box::new(e)))?;
    hb.render("t", ctx)
        .map_err(|e| TemplateError::Render(Box::new(e)))
}
