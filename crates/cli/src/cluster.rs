//! `slogate` in a cluster: the result ConfigMap sink of `slogate run`, and the cluster reads
//! behind `slogate describe NAME` and `slogate assert NAME`.
//!
//! In the slo-pr Job the runner learns where it is from its environment: `POD_NAMESPACE`
//! and the Job's name and uid (`SLOGATE_JOB_NAME`, `SLOGATE_JOB_UID`) come from the downward
//! API, the API server from `KUBERNETES_SERVICE_HOST`, the credentials from the mounted
//! service-account token (or a kubeconfig, as anywhere else).

use anyhow::{Context as _, anyhow};
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use slogate_core::result::ExperimentResult;
use slogate_core::spec::ExperimentSpec;
use slogate_k8s::{Connection, JobState, OwnerJob, ResultWriter, job_owner};

use crate::exit::Failure;
use crate::experiment::{PublishFuture, Sink};

/// Where the result ConfigMap goes, decided from the spec, the flag and the environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// ConfigMap name.
    pub name: String,
    /// Namespace, when known before connecting (spec or `POD_NAMESPACE`).
    pub namespace: Option<String>,
    /// The Job the ConfigMap belongs to, when running in one.
    pub owner: Option<OwnerReference>,
}

/// Decides whether `slogate run` writes a result ConfigMap, and where.
///
/// A ConfigMap is written when `--configmap` names one, when the spec's `result.configMap`
/// does, or when the process runs in a pod (then it is named after the experiment). `env`
/// reads an environment variable; tests pass a map.
pub fn target(
    spec: &ExperimentSpec,
    flag: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
) -> Option<Target> {
    let var = |key: &str| env(key).filter(|v| !v.trim().is_empty());
    let in_pod = var("KUBERNETES_SERVICE_HOST").is_some();
    let name = flag
        .map(str::to_owned)
        .or_else(|| spec.result.as_ref().and_then(|r| r.config_map.clone()))
        .or_else(|| in_pod.then(|| spec.name.clone()))?;
    let owner = match (var("SLOGATE_JOB_NAME"), var("SLOGATE_JOB_UID")) {
        (Some(job), Some(uid)) => Some(job_owner(&job, &uid)),
        _ => None,
    };
    Some(Target {
        name,
        namespace: spec.namespace.clone().or_else(|| var("POD_NAMESPACE")),
        owner,
    })
}

/// The completion index of this pod in an Indexed Job: `JOB_COMPLETION_INDEX`, 0 when
/// absent. Anything but a number below `pods` is invalid input.
pub fn completion_index(pods: u32, env: impl Fn(&str) -> Option<String>) -> Result<u32, Failure> {
    let Some(text) = env("JOB_COMPLETION_INDEX").filter(|v| !v.trim().is_empty()) else {
        return Ok(0);
    };
    match text.trim().parse::<u32>() {
        Ok(index) if index < pods => Ok(index),
        Ok(index) => Err(Failure::Invalid(anyhow!(
            "JOB_COMPLETION_INDEX {index} is not below parallelism.pods ({pods})"
        ))),
        Err(_) => Err(Failure::Invalid(anyhow!(
            "JOB_COMPLETION_INDEX {text:?} is not a completion index (0, 1, ...)"
        ))),
    }
}

/// For a spec with `parallelism.pods` > 1 run in the slo-pr Job: which load pod this is
/// (`JOB_COMPLETION_INDEX`, `POD_NAME`, `POD_UID`) and the Job's partial ConfigMaps
/// (`SLOGATE_JOB_NAME`, `SLOGATE_JOB_UID`, `POD_NAMESPACE`). `None` for one pod, or outside
/// a Job (the run then refuses the spec).
pub async fn load_pod_slot(
    spec: &ExperimentSpec,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<crate::parts::LoadPodSlot>, Failure> {
    let pods = spec.load_pods();
    let var = |key: &str| env(key).filter(|v| !v.trim().is_empty());
    let index = completion_index(pods, &env)?;
    let Some(job) = var("SLOGATE_JOB_NAME") else {
        return Ok(None);
    };
    if pods <= 1 {
        return Ok(None);
    }
    let connection = Connection::infer(None).await.map_err(|err| {
        Failure::Runtime(
            anyhow!(err).context("cannot reach the cluster for the load pods' partials"),
        )
    })?;
    let namespace = spec
        .namespace
        .clone()
        .or_else(|| var("POD_NAMESPACE"))
        .unwrap_or_else(|| connection.default_namespace.clone());
    let owner = var("SLOGATE_JOB_UID").map(|uid| job_owner(&job, &uid));
    let store =
        slogate_k8s::partials::PartialStore::new(connection.client, &namespace, &job, owner);
    Ok(Some(crate::parts::LoadPodSlot {
        index,
        pod: var("POD_NAME")
            .or_else(|| var("HOSTNAME"))
            .unwrap_or_else(|| format!("{job}-{index}")),
        uid: var("POD_UID"),
        exchange: std::sync::Arc::new(crate::partials::KubePartials(store)),
    }))
}

/// Publishes the result document to its ConfigMap by server-side apply.
pub struct ConfigMapSink {
    writer: ResultWriter,
}

impl ConfigMapSink {
    /// Connects (kubeconfig or in-cluster), then writes the first `Running` document right
    /// away: a missing namespace or missing rights end the run here, before any load is
    /// sent, with a message naming the namespace and the verb.
    pub async fn connect(target: Target, spec: &ExperimentSpec) -> Result<Self, Failure> {
        let connection = Connection::infer(None).await.map_err(|err| {
            Failure::Runtime(anyhow!(err).context(format!(
                "cannot write the result to ConfigMap {}",
                target.name
            )))
        })?;
        let namespace = target
            .namespace
            .unwrap_or_else(|| connection.default_namespace.clone());
        let writer = ResultWriter::new(connection.client, &namespace, &target.name, target.owner);
        let sink = Self { writer };
        let first = ExperimentResult::running(spec, Timestamp::now());
        sink.writer
            .write(&first)
            .await
            .map_err(|err| Failure::Runtime(anyhow!(err)))?;
        Ok(sink)
    }
}

impl Sink for ConfigMapSink {
    fn describe(&self) -> String {
        format!(
            "ConfigMap {}/{}",
            self.writer.namespace(),
            self.writer.name()
        )
    }

    fn publish<'a>(&'a self, result: &'a ExperimentResult) -> PublishFuture<'a> {
        Box::pin(async move {
            self.writer.write(result).await?;
            Ok(())
        })
    }
}

/// Reads the result document of experiment `name` from its ConfigMap; the namespace is the
/// flag's, else the kubeconfig context's (or the pod's).
pub async fn read_result(namespace: Option<&str>, name: &str) -> anyhow::Result<ExperimentResult> {
    let connection = Connection::infer(None)
        .await
        .with_context(|| format!("cannot read experiment {name} from the cluster"))?;
    let namespace = namespace.unwrap_or(&connection.default_namespace);
    Ok(slogate_k8s::read_result(connection.client, namespace, name).await?)
}

/// For a result that is not done: what the Job running it says, when that means the run
/// will never finish (the Job is gone, failed, or ended without finishing the document).
/// Empty when the Job is alive or cannot be read.
pub async fn job_notes(namespace: Option<&str>, name: &str) -> Vec<String> {
    let Ok(connection) = Connection::infer(None).await else {
        return Vec::new();
    };
    let namespace = namespace.unwrap_or(&connection.default_namespace);
    match slogate_k8s::read_result_and_job(connection.client, namespace, name).await {
        Ok((result, Some(job))) if !result.is_done() => job_note(&job).into_iter().collect(),
        _ => Vec::new(),
    }
}

/// One sentence about a Job whose result is not done, when the Job is not running it.
fn job_note(job: &OwnerJob) -> Option<String> {
    match &job.state {
        JobState::Active => None,
        JobState::Gone => Some(format!(
            "the Job {} that ran the experiment no longer exists",
            job.name
        )),
        JobState::Failed(why) => Some(format!(
            "the Job {} that ran the experiment failed ({why})",
            job.name
        )),
        JobState::Succeeded => Some(format!(
            "the Job {} that ran the experiment has ended without finishing its result",
            job.name
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn spec(extra: &str) -> ExperimentSpec {
        ExperimentSpec::from_yaml(&format!(
            "name: my-exp\nversions: [{{name: candidate, url: 'http://127.0.0.1:8080'}}]\n{extra}"
        ))
        .unwrap()
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |key| map.get(key).cloned()
    }

    #[test]
    fn local_run_without_configmap_writes_none() {
        assert_eq!(target(&spec(""), None, env(&[])), None);
    }

    #[test]
    fn spec_names_the_configmap() {
        let t = target(
            &spec("result: {configMap: results}\nnamespace: staging"),
            None,
            env(&[]),
        )
        .unwrap();
        assert_eq!(
            (t.name.as_str(), t.namespace.as_deref()),
            ("results", Some("staging"))
        );
        assert_eq!(t.owner, None);
    }

    #[test]
    fn the_flag_wins_over_the_spec() {
        let t = target(
            &spec("result: {configMap: results}"),
            Some("other"),
            env(&[]),
        )
        .unwrap();
        assert_eq!(t.name, "other");
    }

    #[test]
    fn in_a_job_pod_the_configmap_is_owned_by_the_job() {
        let pod = env(&[
            ("KUBERNETES_SERVICE_HOST", "10.0.0.1"),
            ("POD_NAMESPACE", "staging"),
            ("SLOGATE_JOB_NAME", "my-exp-3"),
            ("SLOGATE_JOB_UID", "4f1c"),
        ]);
        let t = target(&spec(""), None, pod).unwrap();
        assert_eq!(
            (t.name.as_str(), t.namespace.as_deref()),
            ("my-exp", Some("staging"))
        );
        let owner = t.owner.unwrap();
        assert_eq!(
            (owner.name.as_str(), owner.uid.as_str()),
            ("my-exp-3", "4f1c")
        );
    }

    #[test]
    fn empty_downward_api_values_mean_no_owner() {
        // A pod not made by a Job has no controller-uid label: the env var is empty.
        let pod = env(&[
            ("KUBERNETES_SERVICE_HOST", "10.0.0.1"),
            ("SLOGATE_JOB_NAME", "x"),
            ("SLOGATE_JOB_UID", ""),
        ]);
        assert_eq!(target(&spec(""), None, pod).unwrap().owner, None);
    }

    #[test]
    fn the_completion_index_comes_from_the_indexed_job_and_is_checked() {
        assert_eq!(
            completion_index(3, env(&[])).unwrap(),
            0,
            "absent is index 0"
        );
        assert_eq!(
            completion_index(3, env(&[("JOB_COMPLETION_INDEX", "2")])).unwrap(),
            2
        );
        for bad in ["3", "-1", "two"] {
            let err = completion_index(3, env(&[("JOB_COMPLETION_INDEX", bad)])).unwrap_err();
            assert!(matches!(err, Failure::Invalid(_)), "{bad}");
        }
    }
}
