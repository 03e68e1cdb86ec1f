//! The text and markdown reports of every fixture, compared byte for byte with the files in
//! `tests/golden/`. After an intended change, regenerate them with
//! `UPDATE_GOLDEN=1 cargo test -p slogate-report --test golden` and read the diff.

mod fixtures;

use std::path::PathBuf;

use slogate_report::{Format, render};

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Renders every fixture in `format` and compares with `<fixture>.<ext>`; reports every
/// mismatch at once, with the first differing line.
fn check(format: Format, ext: &str) {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let mut mismatches = Vec::new();
    for (name, result) in fixtures::all() {
        let rendered = render(&result, format).expect("render");
        let path = golden_dir().join(format!("{name}.{ext}"));
        if update {
            std::fs::write(&path, &rendered).expect("write golden file");
            continue;
        }
        let expected = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; create it with UPDATE_GOLDEN=1", path.display()));
        if rendered != expected {
            let line = rendered
                .lines()
                .zip(expected.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| rendered.lines().count().min(expected.lines().count()));
            mismatches.push(format!(
                "{}: first difference at line {}\n  expected: {:?}\n  rendered: {:?}",
                path.display(),
                line + 1,
                expected.lines().nth(line).unwrap_or("<end>"),
                rendered.lines().nth(line).unwrap_or("<end>"),
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "reports differ from golden files (UPDATE_GOLDEN=1 regenerates them):\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn text_reports_match_golden_files() {
    check(Format::Text, "txt");
}

#[test]
fn markdown_reports_match_golden_files() {
    check(Format::Markdown, "md");
}
