//! Where `describe` and `assert` read a result document: a file, or a ConfigMap in a cluster.

use std::path::PathBuf;

use anyhow::Context as _;
use slogate_core::result::ExperimentResult;

/// A result document's location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A result file written by `slogate run --result-file`.
    File(PathBuf),
    /// The result ConfigMap of experiment `name` (namespace: the flag, else the kubeconfig's).
    Cluster {
        /// Namespace, when given with `-n`.
        namespace: Option<String>,
        /// Experiment (ConfigMap) name.
        name: String,
    },
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File(path) => write!(f, "{}", path.display()),
            Source::Cluster {
                namespace: Some(ns),
                name,
            } => write!(f, "{ns}/{name}"),
            Source::Cluster {
                namespace: None,
                name,
            } => f.write_str(name),
        }
    }
}

/// The flags that name a result: `-f FILE` or `[-n NAMESPACE] NAME`.
#[derive(Debug, Clone, clap::Args)]
#[group(skip)]
pub struct SourceArgs {
    /// Read the result document from this file.
    #[arg(
        short = 'f',
        long = "file",
        value_name = "RESULT_FILE",
        required_unless_present = "name",
        conflicts_with = "name"
    )]
    pub file: Option<PathBuf>,
    /// Namespace of the experiment in the cluster.
    #[arg(short = 'n', long, value_name = "NAMESPACE", conflicts_with = "file")]
    pub namespace: Option<String>,
    /// Experiment name: read its result ConfigMap from the cluster.
    #[arg(value_name = "NAME")]
    pub name: Option<String>,
}

impl SourceArgs {
    /// The source these flags name (clap guarantees exactly one of file and name).
    pub fn source(&self) -> Source {
        match (&self.file, &self.name) {
            (Some(file), _) => Source::File(file.clone()),
            (None, name) => Source::Cluster {
                namespace: self.namespace.clone(),
                name: name.clone().unwrap_or_default(),
            },
        }
    }
}

/// Reads and parses the result document.
pub async fn load_result(source: &Source) -> anyhow::Result<ExperimentResult> {
    match source {
        Source::File(path) => {
            let text = tokio::fs::read_to_string(path)
                .await
                .with_context(|| format!("cannot read {}", path.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("{} is not a slogate result document", path.display()))
        }
        Source::Cluster { namespace, name } => {
            crate::cluster::read_result(namespace.as_deref(), name).await
        }
    }
}

/// Why a result that is not done will never be, one sentence each: its run stopped
/// publishing (see [`ExperimentResult::staleness`]), or, in a cluster, the Job that runs it
/// is gone or has ended. Empty for a done result and for a run that is alive.
pub async fn run_notes(source: &Source, result: &ExperimentResult) -> Vec<String> {
    if result.is_done() {
        return Vec::new();
    }
    let context = slogate_report::Context {
        now: Some(jiff::Timestamp::now()),
        notes: match source {
            Source::File(_) => Vec::new(),
            Source::Cluster { namespace, name } => {
                crate::cluster::job_notes(namespace.as_deref(), name).await
            }
        },
    };
    slogate_report::notes(result, &context)
}
