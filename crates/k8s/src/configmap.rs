//! The result ConfigMap as a value: built from a result document and read back, no I/O.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use slogate_core::result::{ExperimentResult, Stage};

use crate::Error;

/// The ConfigMap key that holds the result document (JSON).
pub const RESULT_KEY: &str = "result.json";

/// The most data a ConfigMap may hold: the API server rejects more than 1 MiB.
pub const MAX_DATA_BYTES: usize = 1024 * 1024;

/// Label every result ConfigMap carries, so `kubectl get cm -l` finds them all.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY: &str = "slogate";
/// Label with the run's stage (`Running`, `Finishing`, `Completed`, `Failed`).
pub const STAGE_LABEL: &str = "slogate.dev/stage";
/// Label with the overall verdict (`pass` / `fail`) once there is one.
pub const VERDICT_LABEL: &str = "slogate.dev/verdict";

/// An owner reference to the Job the run belongs to: the ConfigMap is deleted with the Job.
pub fn job_owner(name: &str, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: "batch/v1".to_owned(),
        kind: "Job".to_owned(),
        name: name.to_owned(),
        uid: uid.to_owned(),
        controller: Some(true),
        // Blocking owner deletion needs update rights on jobs/finalizers, which the runner's
        // Role deliberately lacks.
        block_owner_deletion: None,
    }
}

/// Builds the result ConfigMap: the document under [`RESULT_KEY`], labels for selection.
///
/// Fails with [`Error::TooLarge`] when the document would not fit in a ConfigMap.
pub fn result_configmap(
    result: &ExperimentResult,
    name: &str,
    namespace: &str,
    owner: Option<OwnerReference>,
) -> Result<ConfigMap, Error> {
    let json = serde_json::to_string(result).map_err(Error::Serialize)?;
    if json.len() + RESULT_KEY.len() >= MAX_DATA_BYTES {
        return Err(Error::TooLarge {
            bytes: json.len(),
            limit: MAX_DATA_BYTES - RESULT_KEY.len(),
        });
    }
    let mut labels = BTreeMap::from([
        (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
        ("app.kubernetes.io/name".to_owned(), "slogate".to_owned()),
        (
            "app.kubernetes.io/component".to_owned(),
            "result".to_owned(),
        ),
        (STAGE_LABEL.to_owned(), stage_name(result.stage).to_owned()),
    ]);
    if let Some(verdict) = &result.verdict {
        let value = if verdict.pass { "pass" } else { "fail" };
        labels.insert(VERDICT_LABEL.to_owned(), value.to_owned());
    }
    Ok(ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(labels),
            owner_references: owner.map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(RESULT_KEY.to_owned(), json)])),
        ..ConfigMap::default()
    })
}

/// Reads the result document out of a result ConfigMap.
pub fn result_from_configmap(cm: &ConfigMap) -> Result<ExperimentResult, Error> {
    let name = cm.metadata.name.clone().unwrap_or_default();
    let namespace = cm.metadata.namespace.clone().unwrap_or_default();
    let text = cm
        .data
        .as_ref()
        .and_then(|d| d.get(RESULT_KEY))
        .ok_or_else(|| Error::MissingKey {
            namespace: namespace.clone(),
            name: name.clone(),
            key: RESULT_KEY,
        })?;
    // The document is bounded, labelled and checked before it is parsed.
    ExperimentResult::from_json(text).map_err(|source| Error::Parse {
        namespace,
        name,
        source,
    })
}

fn stage_name(stage: Stage) -> &'static str {
    match stage {
        Stage::Waiting => "Waiting",
        Stage::Running => "Running",
        Stage::Finishing => "Finishing",
        Stage::Completed => "Completed",
        Stage::Failed => "Failed",
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use slogate_core::result::{OverallVerdict, Progress, VersionResult};

    use super::*;

    pub(crate) fn running() -> ExperimentResult {
        ExperimentResult {
            api_version: slogate_core::result::API_VERSION.to_owned(),
            kind: slogate_core::result::KIND.to_owned(),
            name: "my-exp".to_owned(),
            namespace: Some("staging".to_owned()),
            start_time: "2026-11-23T10:00:00Z".parse().unwrap(),
            end_time: None,
            stage: Stage::Running,
            progress: Progress {
                requests_done: 40,
                requests_planned: Some(200),
                elapsed_seconds: 1.5,
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

    #[test]
    fn holds_the_document_labels_and_owner() {
        let mut result = running();
        result.stage = Stage::Completed;
        result.verdict = Some(OverallVerdict {
            pass: true,
            reason: "every SLO is satisfied".to_owned(),
        });
        let cm = result_configmap(
            &result,
            "my-exp",
            "staging",
            Some(job_owner("my-exp-1", "u-1")),
        )
        .unwrap();
        let labels = cm.metadata.labels.as_ref().unwrap();
        assert_eq!(labels[MANAGED_BY_LABEL], "slogate");
        assert_eq!(labels[STAGE_LABEL], "Completed");
        assert_eq!(labels[VERDICT_LABEL], "pass");
        let owner = &cm.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.uid.as_str()), ("Job", "u-1"));
        assert_eq!(result_from_configmap(&cm).unwrap(), result);
    }

    #[test]
    fn running_result_has_no_verdict_label() {
        let cm = result_configmap(&running(), "my-exp", "staging", None).unwrap();
        let labels = cm.metadata.labels.unwrap();
        assert_eq!(labels[STAGE_LABEL], "Running");
        assert!(!labels.contains_key(VERDICT_LABEL));
        assert!(cm.metadata.owner_references.is_none());
    }

    #[test]
    fn oversized_result_is_refused_before_any_request() {
        let mut result = running();
        result.versions.push(VersionResult {
            name: "candidate".to_owned(),
            url: format!("http://127.0.0.1/{}", "x".repeat(MAX_DATA_BYTES)),
            protocol: Default::default(),
            role: None,
            variables: Default::default(),
            metrics: BTreeMap::new(),
            histogram: Vec::new(),
            status_counts: BTreeMap::new(),
            error_kinds: BTreeMap::new(),
            achieved_qps: 0.0,
            target_qps: None,
            service_time: None,
            resends: 0,
            peak_connections: None,
            saturation: None,
            custom_metrics: Vec::new(),
        });
        let err = result_configmap(&result, "my-exp", "staging", None).unwrap_err();
        assert!(matches!(err, Error::TooLarge { bytes, .. } if bytes > MAX_DATA_BYTES));
        assert!(err.to_string().contains("ConfigMap limit"), "{err}");
    }

    fn configmap_holding(text: String) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some("other".to_owned()),
                namespace: Some("staging".to_owned()),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([(RESULT_KEY.to_owned(), text)])),
            ..ConfigMap::default()
        }
    }

    #[test]
    fn configmap_result_of_another_kind_or_version_is_refused_by_name() {
        let mut doc: serde_json::Value = serde_json::from_str(&running().to_json()).unwrap();
        doc["apiVersion"] = "slogate.dev/v7".into();
        let err = result_from_configmap(&configmap_holding(doc.to_string())).unwrap_err();
        let shown = anyhow_like(&err);
        assert!(
            shown.starts_with(
                "ConfigMap other in namespace staging: its result.json: has apiVersion \"slogate.dev/v7\""
            ),
            "{shown}"
        );
        doc["kind"] = "Secret".into();
        let err = result_from_configmap(&configmap_holding(doc.to_string())).unwrap_err();
        assert!(
            anyhow_like(&err).contains("has kind \"Secret\", not ExperimentResult"),
            "{err}"
        );
    }

    #[test]
    fn configmap_result_over_the_size_cap_is_refused_before_parsing() {
        let text = format!(
            "{{\"apiVersion\": \"x\", \"pad\": \"{}\"}}",
            " ".repeat(slogate_core::result_read::MAX_RESULT_BYTES)
        );
        let err = result_from_configmap(&configmap_holding(text)).unwrap_err();
        assert!(
            anyhow_like(&err).contains("over the 4194304-byte limit"),
            "{err}"
        );
    }

    /// The error and its causes, the way the binary prints them.
    fn anyhow_like(err: &dyn std::error::Error) -> String {
        let mut text = err.to_string();
        let mut cause = err.source();
        while let Some(c) = cause {
            text.push_str(&format!(": {c}"));
            cause = c.source();
        }
        text
    }

    #[test]
    fn configmap_without_result_key_names_it() {
        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some("other".to_owned()),
                namespace: Some("staging".to_owned()),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        };
        let err = result_from_configmap(&cm).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ConfigMap other in namespace staging has no key result.json: it is not a slogate result"
        );
    }
}
