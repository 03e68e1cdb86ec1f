//! The experiment loop's cluster parts: weights written through the Kubernetes dynamic API,
//! readiness read from the objects' status conditions, and Events on the Job.

use std::collections::BTreeMap;
use std::pin::Pin;

use anyhow::anyhow;
use slogate_core::rollout::FieldPath;
use slogate_core::spec::{ExperimentSpec, ReadinessSpec};
use slogate_k8s::Connection;
use slogate_k8s::events::{EventKind, JobEvents};
use slogate_k8s::readiness::ReadinessCheck;
use slogate_k8s::weights::{ObjectRef, WeightTarget, WeightWriter as Writer};

use crate::exit::Failure;
use crate::parts::Settings;
use crate::parts::{EventSink, PartFuture, ReadinessGate, WeightWriter};

/// Each version's weight field, written in one patch per object.
pub struct KubeWeights {
    writer: Writer,
    /// Version name → where its weight goes.
    fields: BTreeMap<String, (ObjectRef, String)>,
}

impl WeightWriter for KubeWeights {
    fn describe(&self) -> String {
        // Both versions' weights are often in one object: name it once.
        let objects: std::collections::BTreeSet<String> =
            self.fields.values().map(|(o, _)| o.to_string()).collect();
        Vec::from_iter(objects).join(", ")
    }

    fn write<'a>(&'a self, weights: &'a BTreeMap<String, u32>) -> PartFuture<'a> {
        Box::pin(async move {
            let targets: Vec<WeightTarget> = weights
                .iter()
                .filter_map(|(name, w)| {
                    let (object, pointer) = self.fields.get(name)?;
                    Some(WeightTarget {
                        object: object.clone(),
                        pointer: pointer.clone(),
                        weight: i64::from(*w),
                    })
                })
                .collect();
            self.writer
                .write(&targets)
                .await
                .map_err(|err| format!("{:#}", anyhow!(err)))
        })
    }
}

/// `kubectl wait --for=condition=...` on every readiness object.
pub struct KubeReadiness {
    client: kube::Client,
    namespace: String,
}

impl ReadinessGate for KubeReadiness {
    fn wait<'a>(&'a self, readiness: &'a ReadinessSpec) -> PartFuture<'a> {
        Box::pin(async move {
            let checks: Vec<ReadinessCheck> = readiness
                .objects
                .iter()
                .map(|o| ReadinessCheck {
                    object: object_ref(
                        &o.api_version,
                        &o.kind,
                        o.namespace.as_deref(),
                        &o.name,
                        &self.namespace,
                    ),
                    condition: o.condition().to_owned(),
                })
                .collect();
            slogate_k8s::readiness::wait_ready(
                self.client.clone(),
                &checks,
                readiness.timeout,
                |_, line| eprintln!("slogate: waiting: {line}"),
            )
            .await
            .map_err(|err| format!("{:#}", anyhow!(err)))
        })
    }
}

/// Events on the Job this process runs in.
pub struct KubeEvents(JobEvents);

impl EventSink for KubeEvents {
    fn emit<'a>(
        &'a self,
        warning: bool,
        reason: &'a str,
        message: &'a str,
    ) -> Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
        let kind = if warning {
            EventKind::Warning
        } else {
            EventKind::Normal
        };
        Box::pin(self.0.emit(kind, reason, message))
    }
}

fn object_ref(
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
    default_namespace: &str,
) -> ObjectRef {
    ObjectRef {
        api_version: api_version.to_owned(),
        kind: kind.to_owned(),
        namespace: namespace.unwrap_or(default_namespace).to_owned(),
        name: name.to_owned(),
    }
}

/// Adds the cluster parts the spec needs to `settings`: a weight writer when a version has a
/// `weightObjRef` and the pattern moves traffic, a readiness gate when the spec has
/// `readiness`, and Events when running in a Job (`SLOGATE_JOB_NAME`). Connects only when
/// one of them is needed.
pub async fn add_parts(
    spec: &ExperimentSpec,
    settings: &mut Settings,
    job_name: Option<String>,
) -> Result<(), Failure> {
    let moves = spec
        .strategy
        .as_ref()
        .is_some_and(|s| s.deployment_pattern.moves_traffic());
    let needs_weights = moves && spec.versions.iter().any(|v| v.weight_obj_ref.is_some());
    if !needs_weights && spec.readiness.is_none() && job_name.is_none() {
        return Ok(());
    }
    let connection = Connection::infer(None).await.map_err(|err| {
        Failure::Runtime(anyhow!(err).context("cannot reach the cluster for the experiment loop"))
    })?;
    let namespace = spec
        .namespace
        .clone()
        .unwrap_or_else(|| connection.default_namespace.clone());
    if needs_weights {
        let mut fields = BTreeMap::new();
        for v in &spec.versions {
            if let Some(r) = &v.weight_obj_ref {
                // The spec was validated: the path parses.
                let pointer = FieldPath::parse(&r.field_path)
                    .map_err(|err| Failure::Invalid(anyhow!(err)))?
                    .json_pointer();
                let object = object_ref(
                    &r.api_version,
                    &r.kind,
                    r.namespace.as_deref(),
                    &r.name,
                    &namespace,
                );
                fields.insert(v.name.clone(), (object, pointer));
            }
        }
        settings.weights = Some(Box::new(KubeWeights {
            writer: Writer::new(connection.client.clone()),
            fields,
        }));
    }
    if spec.readiness.is_some() {
        settings.readiness = Some(Box::new(KubeReadiness {
            client: connection.client.clone(),
            namespace: namespace.clone(),
        }));
    }
    if let Some(job) = job_name {
        match JobEvents::for_job(connection.client.clone(), &namespace, &job).await {
            Ok(events) => settings.events = Some(Box::new(KubeEvents(events))),
            Err(err) => eprintln!("slogate: warning: no Events on the Job: {:#}", anyhow!(err)),
        }
    }
    Ok(())
}
