//! A table of already formatted cells, and its text and markdown layouts. The html template
//! walks the same structure itself.

use serde::{Deserialize, Serialize};
use unicode_width::UnicodeWidthStr;

use crate::escape;

/// A table: column headings and rows of formatted cells.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Table {
    pub columns: Vec<Column>,
    pub rows: Vec<Row>,
}

/// One column heading.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Column {
    pub title: String,
    /// Numbers align right, so their digits line up.
    pub numeric: bool,
    /// html class of the column's cells: `num` for numbers, or one set with [`Table::set_class`].
    pub class: String,
    /// The title comes from the document (a version name): shown as written, never
    /// upper-cased like the fixed headings of the text layout.
    pub from_document: bool,
}

/// One row; `class` lets the html report colour it (e.g. by verdict).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Row {
    pub cells: Vec<Cell>,
    pub class: String,
}

/// One cell.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Cell {
    pub text: String,
    pub class: String,
}

impl Table {
    /// A table with these headings; `numeric[i]` says whether column `i` holds numbers.
    pub fn new(columns: &[(&str, bool)]) -> Self {
        Self {
            columns: columns
                .iter()
                .map(|&(title, numeric)| Column {
                    title: title.to_owned(),
                    numeric,
                    class: if numeric { "num" } else { "" }.to_owned(),
                    from_document: false,
                })
                .collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a column whose title comes from the document, e.g. a version name.
    pub fn add_document_column(&mut self, title: &str, numeric: bool) {
        self.columns.push(Column {
            title: title.to_owned(),
            numeric,
            class: if numeric { "num" } else { "" }.to_owned(),
            from_document: true,
        });
    }

    /// Appends a column with a fixed title, as [`Table::new`] makes them.
    pub fn add_column(&mut self, title: &str, numeric: bool) {
        self.add_document_column(title, numeric);
        if let Some(c) = self.columns.last_mut() {
            c.from_document = false;
        }
    }

    /// Sets the html class of a column's heading and cells (rows pushed afterwards).
    pub fn set_class(&mut self, column: usize, class: &str) {
        if let Some(c) = self.columns.get_mut(column) {
            c.class = class.to_owned();
        }
    }

    /// Appends a row; cells take the alignment and class of their column.
    pub fn push(&mut self, class: &str, cells: Vec<String>) {
        let cells = cells
            .into_iter()
            .enumerate()
            .map(|(i, text)| Cell {
                text,
                class: self
                    .columns
                    .get(i)
                    .map(|c| c.class.clone())
                    .unwrap_or_default(),
            })
            .collect();
        self.rows.push(Row {
            cells,
            class: class.to_owned(),
        });
    }

    /// Plain text like `kubectl get`: columns aligned by display width, two spaces apart,
    /// fixed headings in capitals; every line ends with a newline, none with trailing blanks.
    pub fn to_text(&self) -> String {
        let header: Vec<String> = self
            .columns
            .iter()
            .map(|c| {
                let title = escape::text(&c.title);
                if c.from_document {
                    title
                } else {
                    title.to_uppercase()
                }
            })
            .collect();
        let body: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| r.cells.iter().map(|c| escape::text(&c.text)).collect())
            .collect();
        let mut widths: Vec<usize> = header.iter().map(|h| h.width()).collect();
        for row in &body {
            for (i, cell) in row.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(cell.width());
                }
            }
        }
        let mut out = String::new();
        for line in std::iter::once(&header).chain(&body) {
            let mut text = String::new();
            for (i, cell) in line.iter().enumerate() {
                let width = widths.get(i).copied().unwrap_or(0);
                let pad = " ".repeat(width.saturating_sub(cell.width()));
                if i > 0 {
                    text.push_str("  ");
                }
                if self.columns.get(i).is_some_and(|c| c.numeric) {
                    text.push_str(&pad);
                    text.push_str(cell);
                } else {
                    text.push_str(cell);
                    text.push_str(&pad);
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        out
    }

    /// A GitHub-flavoured markdown table, every cell escaped.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let line = |cells: Vec<String>| format!("| {} |\n", cells.join(" | "));
        out.push_str(&line(
            self.columns
                .iter()
                .map(|c| escape::markdown(&c.title))
                .collect(),
        ));
        out.push_str(&line(
            self.columns
                .iter()
                .map(|c| if c.numeric { "---:" } else { "---" }.to_owned())
                .collect(),
        ));
        for row in &self.rows {
            out.push_str(&line(
                row.cells
                    .iter()
                    .map(|c| escape::markdown(&c.text))
                    .collect(),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut t = Table::new(&[("Metric", false)]);
        t.add_document_column("Value", true);
        t.push("", vec!["http/error-rate".into(), "0.5".into()]);
        t.push("", vec!["a|b ✔".into(), "10,000".into()]);
        t
    }

    #[test]
    fn text_aligns_by_display_width() {
        assert_eq!(
            sample().to_text(),
            "METRIC            Value\n\
             http/error-rate     0.5\n\
             a|b ✔            10,000\n"
        );
    }

    #[test]
    fn markdown_escapes_pipes_and_aligns_numbers_right() {
        assert_eq!(
            sample().to_markdown(),
            "| Metric | Value |\n| --- | ---: |\n| http/error-rate | 0.5 |\n| a\\|b ✔ | 10,000 |\n"
        );
    }
}
