//! Talking to the API server: client configuration, the result writer and the result reader.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use slogate_core::result::ExperimentResult;

use crate::Error;
use crate::configmap::{result_configmap, result_from_configmap};

/// Field manager of every server-side apply slogate makes.
pub const FIELD_MANAGER: &str = "slogate";

/// A connected client and the namespace to use when none is given.
#[derive(Clone)]
pub struct Connection {
    /// The client.
    pub client: Client,
    /// The kubeconfig context's namespace, or the pod's namespace in a cluster.
    pub default_namespace: String,
}

impl Connection {
    /// Connects with an explicit kubeconfig file, or else the way kubectl does: `KUBECONFIG`
    /// or `~/.kube/config`, then the in-cluster service account.
    pub async fn infer(kubeconfig: Option<&Path>) -> Result<Self, Error> {
        let config = match kubeconfig {
            Some(path) => {
                let file = Kubeconfig::read_from(path).map_err(|source| Error::Kubeconfig {
                    path: path.to_owned(),
                    source: Box::new(source),
                })?;
                Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                    .await
                    .map_err(|source| Error::Kubeconfig {
                        path: path.to_owned(),
                        source: Box::new(source),
                    })?
            }
            None => Config::infer()
                .await
                .map_err(|e| Error::Config(Box::new(e)))?,
        };
        let default_namespace = config.default_namespace.clone();
        let client = Client::try_from(config).map_err(|e| Error::Client(Box::new(e)))?;
        Ok(Self {
            client,
            default_namespace,
        })
    }
}

/// How often and how patiently a request is retried after a transient failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Wait before the second attempt; it doubles after each failure.
    pub initial: Duration,
    /// The longest wait between two attempts.
    pub max: Duration,
}

impl Default for Backoff {
    /// Six attempts over about eight seconds: long enough to ride out an API server restart
    /// or a burst of conflicts, short enough to fit a pod's termination grace period.
    fn default() -> Self {
        Self {
            attempts: 6,
            initial: Duration::from_millis(250),
            max: Duration::from_secs(4),
        }
    }
}

impl Backoff {
    /// The wait after failed attempt `n` (1-based).
    pub fn delay(&self, n: u32) -> Duration {
        let factor = 2u32.saturating_pow(n.saturating_sub(1));
        self.initial.saturating_mul(factor).min(self.max)
    }
}

/// How a failed request is handled.
#[derive(Debug, PartialEq, Eq)]
enum Failure {
    /// Transient: conflict, throttling, a 5xx, or the connection itself.
    Transient,
    /// RBAC said no.
    Forbidden,
    /// The namespace does not exist.
    NoNamespace,
    /// The object does not exist.
    NoObject,
    /// Anything else: not worth retrying.
    Other,
}

fn classify(err: &kube::Error) -> Failure {
    match err {
        kube::Error::Api(status) if status.is_forbidden() => Failure::Forbidden,
        kube::Error::Api(status) if status.is_not_found() => {
            if status
                .details
                .as_ref()
                .is_some_and(|d| d.kind == "namespaces")
            {
                Failure::NoNamespace
            } else {
                Failure::NoObject
            }
        }
        kube::Error::Api(status)
            if status.is_conflict() || status.code == 429 || (500..=599).contains(&status.code) =>
        {
            Failure::Transient
        }
        // Connection refused, reset, TLS handshake or timeout: the API server may come back.
        kube::Error::HyperError(_) | kube::Error::Service(_) => Failure::Transient,
        _ => Failure::Other,
    }
}

/// The verb an RBAC denial names: `... cannot create resource "configmaps" ...`.
fn denied_verb(message: &str) -> Option<&'static str> {
    let verb = message.split("cannot ").nth(1)?.split_whitespace().next()?;
    [
        "get", "list", "watch", "create", "update", "patch", "delete",
    ]
    .into_iter()
    .find(|known| *known == verb)
}

/// Runs `call` until it succeeds, fails for good, or runs out of attempts.
pub(crate) async fn with_retries<T, F, Fut>(
    backoff: Backoff,
    verb: &'static str,
    namespace: &str,
    name: &str,
    mut call: F,
) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    let mut attempt = 1;
    loop {
        let err = match call().await {
            Ok(value) => return Ok(value),
            Err(err) => err,
        };
        let kind = classify(&err);
        if kind == Failure::Transient && attempt < backoff.attempts {
            let wait = backoff.delay(attempt);
            tracing::warn!(
                error = %err,
                attempt,
                wait_ms = wait.as_millis() as u64,
                "{verb} ConfigMap {namespace}/{name} failed; retrying"
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
            continue;
        }
        let (namespace, name) = (namespace.to_owned(), name.to_owned());
        return Err(match (kind, err) {
            (Failure::Forbidden, kube::Error::Api(status)) => Error::Forbidden {
                verb: denied_verb(&status.message).unwrap_or(verb).to_owned(),
                namespace,
                name,
                message: status.message,
            },
            (Failure::NoNamespace, _) => Error::NamespaceNotFound {
                verb,
                namespace,
                name,
            },
            (Failure::NoObject, _) if verb == "get" => Error::NotFound { namespace, name },
            (_, source) => Error::Api {
                verb,
                namespace,
                name,
                attempts: attempt,
                source: Box::new(source),
            },
        });
    }
}

/// Writes the result ConfigMap of one run by server-side apply, retrying transient failures.
#[derive(Clone)]
pub struct ResultWriter {
    api: Api<ConfigMap>,
    namespace: String,
    name: String,
    owner: Option<OwnerReference>,
    backoff: Backoff,
}

impl ResultWriter {
    /// A writer of ConfigMap `name` in `namespace`, owned by `owner` when given.
    pub fn new(client: Client, namespace: &str, name: &str, owner: Option<OwnerReference>) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            owner,
            backoff: Backoff::default(),
        }
    }

    /// Changes the retry policy.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The namespace written to.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The ConfigMap written.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Applies the ConfigMap for `result`: creates it the first time, replaces the document
    /// after. Forced, since slogate is the only writer of this object.
    pub async fn write(&self, result: &ExperimentResult) -> Result<ConfigMap, Error> {
        let cm = result_configmap(result, &self.name, &self.namespace, self.owner.clone())?;
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let patch = Patch::Apply(&cm);
        with_retries(self.backoff, "patch", &self.namespace, &self.name, || {
            self.api.patch(&self.name, &params, &patch)
        })
        .await
    }
}

/// Reads the result document from ConfigMap `name` in `namespace`.
pub async fn read_result(
    client: Client,
    namespace: &str,
    name: &str,
) -> Result<ExperimentResult, Error> {
    let api: Api<ConfigMap> = Api::namespaced(client, namespace);
    let cm = with_retries(Backoff::default(), "get", namespace, name, || api.get(name)).await?;
    result_from_configmap(&cm)
}

/// What became of the Job a result ConfigMap belongs to (its controlling owner).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    /// The Job is there and has not finished.
    Active,
    /// The Job completed.
    Succeeded,
    /// The Job failed; the reason and message of its `Failed` condition.
    Failed(String),
    /// No such Job, or one of the same name with another uid: the one that ran is deleted.
    Gone,
}

/// The owning Job of a result ConfigMap and its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerJob {
    /// The Job's name.
    pub name: String,
    /// What became of it.
    pub state: JobState,
}

/// Reads the result document from ConfigMap `name` in `namespace`, and what became of the
/// Job owning it. The Job is `None` when the ConfigMap has no Job owner or the Job cannot
/// be read (e.g. no right to get Jobs): the document alone must then tell.
pub async fn read_result_and_job(
    client: Client,
    namespace: &str,
    name: &str,
) -> Result<(ExperimentResult, Option<OwnerJob>), Error> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let cm = with_retries(Backoff::default(), "get", namespace, name, || api.get(name)).await?;
    let result = result_from_configmap(&cm)?;
    let Some(owner) = cm
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.kind == "Job" && o.api_version.starts_with("batch/"))
    else {
        return Ok((result, None));
    };
    let jobs: Api<k8s_openapi::api::batch::v1::Job> = Api::namespaced(client, namespace);
    let state = match jobs.get_opt(&owner.name).await {
        Ok(None) => Some(JobState::Gone),
        Ok(Some(job)) if job.metadata.uid.as_deref() != Some(owner.uid.as_str()) => {
            Some(JobState::Gone)
        }
        Ok(Some(job)) => Some(job_state(&job)),
        Err(err) => {
            tracing::debug!(job = %owner.name, %err, "cannot read the result's Job");
            None
        }
    };
    Ok((
        result,
        state.map(|state| OwnerJob {
            name: owner.name.clone(),
            state,
        }),
    ))
}

/// A Job's state from its conditions.
pub fn job_state(job: &k8s_openapi::api::batch::v1::Job) -> JobState {
    let conditions = job
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten();
    for c in conditions {
        if c.status != "True" {
            continue;
        }
        match c.type_.as_str() {
            "Failed" => {
                let words: Vec<&str> = [c.reason.as_deref(), c.message.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect();
                return JobState::Failed(if words.is_empty() {
                    "no reason given".to_owned()
                } else {
                    words.join(": ")
                });
            }
            "Complete" => return JobState::Succeeded,
            _ => {}
        }
    }
    JobState::Active
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let b = Backoff::default();
        let waits: Vec<u128> = (1..=6).map(|n| b.delay(n).as_millis()).collect();
        assert_eq!(waits, [250, 500, 1000, 2000, 4000, 4000]);
    }

    #[tokio::test]
    async fn unreachable_api_server_is_retried_then_reported() {
        // A port that was free a moment ago: connections are refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = Config::new(format!("http://127.0.0.1:{port}").parse().unwrap());
        let client = Client::try_from(config).unwrap();
        let backoff = Backoff {
            attempts: 3,
            initial: Duration::from_millis(10),
            max: Duration::from_millis(20),
        };
        let writer = ResultWriter::new(client, "staging", "my-exp", None).with_backoff(backoff);
        let started = std::time::Instant::now();
        let err = writer
            .write(&crate::configmap::tests::running())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Api { attempts: 3, .. }), "{err:?}");
        assert!(
            started.elapsed() >= Duration::from_millis(30),
            "it waited between attempts"
        );
        assert_eq!(
            err.to_string(),
            "cannot patch ConfigMap my-exp in namespace staging (after 3 attempt(s))"
        );
    }

    #[test]
    fn denied_verb_is_read_from_the_rbac_message() {
        let msg = r#"configmaps "x" is forbidden: User "system:serviceaccount:staging:my-exp" cannot create resource "configmaps" in API group "" in the namespace "staging""#;
        assert_eq!(denied_verb(msg), Some("create"));
        assert_eq!(denied_verb("forbidden"), None);
    }
}
