//! The embedded handlebars templates and the helpers they format numbers with.

use handlebars::{Handlebars, JsonValue, handlebars_helper};

use crate::table::Table;
use crate::{ReportError, escape, format};

const TEXT: &str = include_str!("../templates/report.txt.hbs");
const MARKDOWN: &str = include_str!("../templates/report.md.hbs");
const HTML: &str = include_str!("../templates/report.html.hbs");

/// Which template, and how values from the document are escaped in it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Text,
    Markdown,
    Html,
}

/// The template name every kind registers its report under.
pub(crate) const REPORT: &str = "report";

fn as_f64(v: &JsonValue) -> Option<f64> {
    v.as_f64().filter(|v| v.is_finite())
}

handlebars_helper!(count: |v: Json| v.as_u64().map_or_else(|| format::MISSING.to_owned(), format::count));
handlebars_helper!(percent: |v: Json| as_f64(v).map_or_else(|| format::MISSING.to_owned(), format::percent));
handlebars_helper!(seconds: |v: Json| as_f64(v).map_or_else(|| format::MISSING.to_owned(), format::seconds));
handlebars_helper!(number: |v: Json| as_f64(v).map_or_else(|| format::MISSING.to_owned(), format::number));

/// Reads a [`Table`] back from the template data.
fn table(v: &JsonValue) -> Option<Table> {
    serde_json::from_value(v.clone()).ok()
}

handlebars_helper!(text_table: |t: Json| table(t).map(|t| t.to_text().trim_end().to_owned()).unwrap_or_default());
handlebars_helper!(md_table: |t: Json| table(t).map(|t| t.to_markdown().trim_end().to_owned()).unwrap_or_default());

/// A registry holding the report template of `kind`: strict (a misspelt field is an error,
/// not an empty string), with the escaping of its output language.
pub(crate) fn registry(kind: Kind) -> Result<Handlebars<'static>, ReportError> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_helper("count", Box::new(count));
    hb.register_helper("percent", Box::new(percent));
    hb.register_helper("seconds", Box::new(seconds));
    hb.register_helper("number", Box::new(number));
    let template = match kind {
        Kind::Text => {
            hb.register_escape_fn(escape::text);
            hb.register_helper("text_table", Box::new(text_table));
            TEXT
        }
        Kind::Markdown => {
            hb.register_escape_fn(escape::markdown);
            hb.register_helper("md_table", Box::new(md_table));
            MARKDOWN
        }
        Kind::Html => {
            hb.register_escape_fn(escape::html);
            HTML
        }
    };
    hb.register_template_string(REPORT, template)
        .map_err(|e| ReportError::Template(Box::new(e)))?;
    Ok(hb)
}
