//! The crate's error type.

use std::path::PathBuf;

/// What can go wrong between slogate and the Kubernetes API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No Kubernetes client configuration was found or it could not be used.
    #[error("cannot configure a Kubernetes client (no usable kubeconfig and not in a pod)")]
    Config(#[source] Box<kube::config::InferConfigError>),

    /// The kubeconfig file given explicitly could not be read.
    #[error("cannot read kubeconfig {}", path.display())]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<kube::config::KubeconfigError>,
    },

    /// The client could not be built from a configuration (e.g. a bad certificate).
    #[error("cannot build a Kubernetes client")]
    Client(#[source] Box<kube::Error>),

    /// The result document is too big for a ConfigMap.
    #[error(
        "the result document is {bytes} bytes, over the {limit}-byte ConfigMap limit; \
         the histogram or the number of SLOs is too large"
    )]
    TooLarge {
        /// Size of the serialized document.
        bytes: usize,
        /// The limit it must stay under.
        limit: usize,
    },

    /// The result document could not be serialized.
    #[error("cannot serialize the result document")]
    Serialize(#[source] serde_json::Error),

    /// The API server refused the request for lack of permission.
    #[error(
        "forbidden: may not {verb} ConfigMap {name} in namespace {namespace}; the service \
         account needs a Role allowing it ({message})"
    )]
    Forbidden {
        /// The verb refused (`get`, `patch`, `create`).
        verb: String,
        /// The namespace.
        namespace: String,
        /// The ConfigMap.
        name: String,
        /// The API server's message.
        message: String,
    },

    /// The namespace does not exist.
    #[error("namespace {namespace} does not exist (while trying to {verb} ConfigMap {name})")]
    NamespaceNotFound {
        /// The verb attempted.
        verb: &'static str,
        /// The missing namespace.
        namespace: String,
        /// The ConfigMap.
        name: String,
    },

    /// The result ConfigMap does not exist.
    #[error(
        "no experiment result in namespace {namespace}: ConfigMap {name} does not exist \
         (has the experiment's Job started?)"
    )]
    NotFound {
        /// The namespace.
        namespace: String,
        /// The ConfigMap.
        name: String,
    },

    /// The ConfigMap exists but holds no result document.
    #[error(
        "ConfigMap {name} in namespace {namespace} has no key {key}: it is not a slogate result"
    )]
    MissingKey {
        /// The namespace.
        namespace: String,
        /// The ConfigMap.
        name: String,
        /// The key looked for.
        key: &'static str,
    },

    /// The ConfigMap's `result.json` is not a result document this slogate reads: too
    /// large, of another kind or apiVersion, or not valid.
    #[error("ConfigMap {name} in namespace {namespace}: its result.json")]
    Parse {
        /// The namespace.
        namespace: String,
        /// The ConfigMap.
        name: String,
        /// Why.
        #[source]
        source: slogate_core::result_read::ReadError,
    },

    /// A load pod's partial ConfigMap holds something that is not a report.
    #[error("ConfigMap {name} in namespace {namespace} does not hold a load pod's report")]
    Partial {
        /// The namespace.
        namespace: String,
        /// The ConfigMap.
        name: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },

    /// Any other API or transport failure, after retries where they apply.
    #[error(
        "cannot {verb} ConfigMap {name} in namespace {namespace} (after {attempts} attempt(s))"
    )]
    Api {
        /// The verb attempted.
        verb: &'static str,
        /// The namespace.
        namespace: String,
        /// The ConfigMap.
        name: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        #[source]
        source: Box<kube::Error>,
    },
}
