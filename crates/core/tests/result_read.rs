//! Reading result documents handed to `describe` and `assert`: foreign, future and oversized
//! documents are refused with a reason before they are parsed.

use slogate_core::result::ExperimentResult;
use slogate_core::result_read::{MAX_RESULT_BYTES, ReadError};
use slogate_core::spec::ExperimentSpec;

fn running_json() -> serde_json::Value {
    let spec =
        ExperimentSpec::from_yaml("name: e\nversions: [{name: v, url: 'http://127.0.0.1:1/'}]\n")
            .unwrap();
    let result = ExperimentResult::running(&spec, "2026-12-01T00:00:00Z".parse().unwrap());
    serde_json::from_str(&result.to_json()).unwrap()
}

#[test]
fn a_result_of_this_version_reads() {
    let text = running_json().to_string();
    assert_eq!(ExperimentResult::from_json(&text).unwrap().name, "e");
}

#[test]
fn an_unknown_api_version_is_refused_by_name() {
    let mut doc = running_json();
    doc["apiVersion"] = "slogate.dev/v9".into();
    let err = ExperimentResult::from_json(&doc.to_string()).unwrap_err();
    assert!(matches!(err, ReadError::UnknownVersion { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "has apiVersion \"slogate.dev/v9\", which this slogate does not read (it reads \
         slogate.dev/v1alpha2, slogate.dev/v1alpha1); use the slogate that wrote it"
    );
}

#[test]
fn another_kind_of_object_is_refused_by_name() {
    let mut doc = running_json();
    doc["kind"] = "Deployment".into();
    let err = ExperimentResult::from_json(&doc.to_string()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "has kind \"Deployment\", not ExperimentResult: it is not a slogate result document"
    );
    let err = ExperimentResult::from_json(r#"{"name": "x"}"#).unwrap_err();
    assert!(matches!(err, ReadError::Unlabelled), "{err:?}");
    let err = ExperimentResult::from_json("[1, 2]").unwrap_err();
    assert!(matches!(err, ReadError::Unlabelled), "{err:?}");
    let err = ExperimentResult::from_json("name: x").unwrap_err();
    assert!(matches!(err, ReadError::NotJson(_)), "{err:?}");
}

#[test]
fn a_result_over_the_size_cap_is_refused_before_parsing() {
    let mut doc = running_json();
    doc["name"] = "x".repeat(MAX_RESULT_BYTES).into();
    let err = ExperimentResult::from_json(&doc.to_string()).unwrap_err();
    assert!(matches!(err, ReadError::TooLarge { .. }), "{err:?}");
    assert!(
        err.to_string().contains("over the 4194304-byte limit"),
        "{err}"
    );
}

#[test]
fn a_misshapen_result_names_the_field_and_quotes_it_short() {
    let mut doc = running_json();
    doc["stage"] = "x".repeat(100_000).into();
    let err = ExperimentResult::from_json(&doc.to_string()).unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with("is not a valid ExperimentResult: stage: unknown variant"),
        "{}",
        &message[..200]
    );
    assert!(message.len() < 500, "{} bytes", message.len());
}
