//! Where `describe` and `assert` read a result document: a file, or a ConfigMap in a cluster.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use slogate_core::result::ExperimentResult;
use slogate_core::result_read::{MAX_RESULT_BYTES, ReadError};

use crate::exit::Failure;

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

/// Reads and parses the result document. A document that is not a result this slogate
/// reads (too large, another kind or apiVersion, misshapen) is invalid input; a file or
/// ConfigMap that cannot be read yet is a runtime failure `assert` may wait out.
pub async fn load_result(source: &Source) -> Result<ExperimentResult, Failure> {
    match source {
        Source::File(path) => {
            let text = read_capped(path).await.map_err(|err| match err.kind() {
                std::io::ErrorKind::FileTooLarge => Failure::Invalid(anyhow!(
                    "{}: {}",
                    path.display(),
                    ReadError::TooLarge {
                        bytes: MAX_RESULT_BYTES as u64 + 1,
                        limit: MAX_RESULT_BYTES,
                    }
                )),
                std::io::ErrorKind::InvalidData => Failure::Invalid(
                    anyhow!(err).context(format!("{} is not a result document", path.display())),
                ),
                _ => Failure::Runtime(
                    anyhow!(err).context(format!("cannot read {}", path.display())),
                ),
            })?;
            ExperimentResult::from_json(&text)
                .map_err(|err| Failure::Invalid(anyhow!(err).context(path.display().to_string())))
        }
        Source::Cluster { namespace, name } => {
            crate::cluster::read_result(namespace.as_deref(), name)
                .await
                .map_err(|err| {
                    let foreign = matches!(
                        err.downcast_ref::<slogate_k8s::Error>(),
                        Some(
                            slogate_k8s::Error::Parse { .. }
                                | slogate_k8s::Error::MissingKey { .. }
                        )
                    );
                    if foreign {
                        Failure::Invalid(err)
                    } else {
                        Failure::Runtime(err)
                    }
                })
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

/// The file's text, read no further than [`MAX_RESULT_BYTES`] (a larger file, or an endless
/// one such as a device, fails with `FileTooLarge` before it fills memory).
async fn read_capped(path: &Path) -> std::io::Result<String> {
    use tokio::io::AsyncReadExt as _;
    let file = tokio::fs::File::open(path).await?;
    let mut bytes = Vec::new();
    file.take(MAX_RESULT_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .await?;
    if bytes.len() > MAX_RESULT_BYTES {
        return Err(std::io::ErrorKind::FileTooLarge.into());
    }
    String::from_utf8(bytes)
        .map_err(|err| std::io::Error::new(std::io::ErrorKind::InvalidData, err))
}
