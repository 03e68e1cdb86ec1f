//! The partial ConfigMaps of an Indexed Job's load pods: one per completion index, named
//! `<job>-partial-<index>`, owned by the Job, holding that pod's [`PodReport`] under
//! [`PARTIAL_KEY`]. Index 0 writes the agreed start time into its own; every pod writes
//! its evidence into its own at the end. A retried pod overwrites its index's ConfigMap, so
//! nothing is counted twice.
//!
//! Writes are server-side applies: the API server authorizes the `create` of a missing
//! object with its name known, so the Job's Role can name every partial it may write.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use slogate_core::parallel::PodReport;

use crate::cluster::{Backoff, FIELD_MANAGER};
use crate::configmap::{MANAGED_BY, MANAGED_BY_LABEL, MAX_DATA_BYTES};
use crate::{Error, cluster};

/// The ConfigMap key holding a pod's report (JSON).
pub const PARTIAL_KEY: &str = "partial.json";
/// Label with the Job's name on every partial.
pub const JOB_LABEL: &str = "slogate.dev/job";
/// Label with the pod's completion index on its partial.
pub const INDEX_LABEL: &str = "slogate.dev/index";

/// The name of index `index`'s partial ConfigMap of Job `job`.
pub fn partial_name(job: &str, index: u32) -> String {
    format!("{job}-partial-{index}")
}

/// Builds the partial ConfigMap holding `report`; fails with [`Error::TooLarge`] when it
/// would not fit.
pub fn partial_configmap(
    report: &PodReport,
    job: &str,
    namespace: &str,
    owner: Option<OwnerReference>,
) -> Result<ConfigMap, Error> {
    let json = serde_json::to_string(report).map_err(Error::Serialize)?;
    if json.len() + PARTIAL_KEY.len() >= MAX_DATA_BYTES {
        return Err(Error::TooLarge {
            bytes: json.len(),
            limit: MAX_DATA_BYTES - PARTIAL_KEY.len(),
        });
    }
    let labels = BTreeMap::from([
        (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
        ("app.kubernetes.io/name".to_owned(), "slogate".to_owned()),
        (
            "app.kubernetes.io/component".to_owned(),
            "partial".to_owned(),
        ),
        (JOB_LABEL.to_owned(), job.to_owned()),
        (INDEX_LABEL.to_owned(), report.index.to_string()),
    ]);
    Ok(ConfigMap {
        metadata: ObjectMeta {
            name: Some(partial_name(job, report.index)),
            namespace: Some(namespace.to_owned()),
            labels: Some(labels),
            owner_references: owner.map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(PARTIAL_KEY.to_owned(), json)])),
        ..ConfigMap::default()
    })
}

/// Reads the report out of a partial ConfigMap; `None` when it holds none yet.
pub fn report_from_configmap(cm: &ConfigMap) -> Result<Option<PodReport>, Error> {
    let Some(text) = cm.data.as_ref().and_then(|d| d.get(PARTIAL_KEY)) else {
        return Ok(None);
    };
    serde_json::from_str(text)
        .map(Some)
        .map_err(|source| Error::Partial {
            namespace: cm.metadata.namespace.clone().unwrap_or_default(),
            name: cm.metadata.name.clone().unwrap_or_default(),
            source,
        })
}

/// Reads and writes the partial ConfigMaps of one Job.
#[derive(Clone)]
pub struct PartialStore {
    api: Api<ConfigMap>,
    namespace: String,
    job: String,
    owner: Option<OwnerReference>,
    backoff: Backoff,
}

impl PartialStore {
    /// The partials of Job `job` in `namespace`, owned by `owner` when given.
    pub fn new(client: Client, namespace: &str, job: &str, owner: Option<OwnerReference>) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
            job: job.to_owned(),
            owner,
            backoff: Backoff::default(),
        }
    }

    /// Where the partials are, for messages: `staging/my-exp-1-partial-*`.
    pub fn describe(&self) -> String {
        format!("{}/{}-partial-*", self.namespace, self.job)
    }

    /// Publishes `report` as its index's partial (creating or replacing it).
    pub async fn write(&self, report: &PodReport) -> Result<(), Error> {
        let cm = partial_configmap(report, &self.job, &self.namespace, self.owner.clone())?;
        let name = partial_name(&self.job, report.index);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let patch = Patch::Apply(&cm);
        cluster::with_retries(self.backoff, "patch", &self.namespace, &name, || {
            self.api.patch(&name, &params, &patch)
        })
        .await?;
        Ok(())
    }

    /// Reads index `index`'s report; `None` while its pod has published none.
    pub async fn read(&self, index: u32) -> Result<Option<PodReport>, Error> {
        let name = partial_name(&self.job, index);
        match cluster::with_retries(self.backoff, "get", &self.namespace, &name, || {
            self.api.get(&name)
        })
        .await
        {
            Ok(cm) => report_from_configmap(&cm),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use slogate_core::measure::Measurement;

    use super::*;
    use crate::configmap::job_owner;

    #[test]
    fn a_partial_holds_its_report_labels_and_owner() {
        let mut m = Measurement::default();
        m.latency.record(1500).unwrap();
        m.requests = 1;
        let report = PodReport::ready(2, "my-exp-1-2-abcde", Some("u-2".into()))
            .done(&[("candidate".to_owned(), m)]);
        let cm = partial_configmap(
            &report,
            "my-exp-1",
            "staging",
            Some(job_owner("my-exp-1", "j-1")),
        )
        .unwrap();
        assert_eq!(cm.metadata.name.as_deref(), Some("my-exp-1-partial-2"));
        let labels = cm.metadata.labels.as_ref().unwrap();
        assert_eq!(labels[JOB_LABEL], "my-exp-1");
        assert_eq!(labels[INDEX_LABEL], "2");
        assert_eq!(cm.metadata.owner_references.as_ref().unwrap()[0].uid, "j-1");
        assert_eq!(report_from_configmap(&cm).unwrap(), Some(report));
        assert_eq!(report_from_configmap(&ConfigMap::default()).unwrap(), None);
    }
}
