//! `-o json` prints the result document itself: reading it back gives the same document.

mod fixtures;

use slogate_core::result::ExperimentResult;
use slogate_report::{Format, ReportError, render};

#[test]
fn json_report_round_trips_to_the_same_document() {
    for (name, result) in fixtures::all() {
        let json = render(&result, Format::Json).expect("render json");
        let back: ExperimentResult =
            serde_json::from_str(&json).unwrap_or_else(|e| panic!("{name}: {e}\n{json}"));
        assert_eq!(back, result, "{name}");
        assert!(json.ends_with("}\n"), "{name}: ends with a newline");
        assert!(
            json.contains("\n  \"apiVersion\""),
            "{name}: pretty-printed"
        );
    }
}

#[test]
fn json_report_refuses_a_non_finite_number_and_names_where_it_is() {
    let mut result = fixtures::passing();
    result.slos[1].interval.as_mut().expect("interval").upper = f64::NAN;
    let err = render(&result, Format::Json).expect_err("NaN cannot be JSON");
    assert!(
        matches!(&err, ReportError::NonFinite { path } if path == "slos[1].interval.upper"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "the result document holds a non-finite number at slos[1].interval.upper"
    );
}
