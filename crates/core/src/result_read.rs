//! Reading a result document someone hands slogate (`describe -f`, `assert -f`, a result
//! ConfigMap): bounded in size, refused clearly when it is not a slogate result, and only
//! then parsed.

use serde::Deserialize;

use crate::quote::{clip_message, quote};
use crate::result::{API_VERSION, API_VERSION_V1ALPHA1, ExperimentResult, KIND};

/// The largest result document slogate reads. A real one stays well under the 1 MiB
/// ConfigMap limit; a bigger file is not a result, and parsing it could take many times
/// its size in memory.
pub const MAX_RESULT_BYTES: usize = 4 << 20;

/// The `apiVersion`s of result documents this slogate reads: `v1alpha2` is `v1alpha1` with
/// optional fields added, so an old document (an old ConfigMap) reads as one without a
/// comparison or winner.
pub const READABLE_API_VERSIONS: &[&str] = &[API_VERSION, API_VERSION_V1ALPHA1];

/// Why a document is not a result slogate can read. Each message continues a sentence
/// that names the document ("result.json ...").
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Larger than [`MAX_RESULT_BYTES`].
    #[error(
        "is {bytes} bytes or more, over the {limit}-byte limit of a result document \
         (a real one stays under 1 MiB): it is not a slogate result"
    )]
    TooLarge {
        /// Bytes seen (at least this many).
        bytes: u64,
        /// The limit.
        limit: usize,
    },
    /// Not JSON at all.
    #[error("is not JSON (a slogate result document is JSON)")]
    NotJson(#[source] serde_json::Error),
    /// JSON without the `apiVersion` and `kind` every result has.
    #[error("has no apiVersion or kind: it is not a slogate result document")]
    Unlabelled,
    /// Another kind of object.
    #[error("has kind {}, not {KIND}: it is not a slogate result document", quote(.found))]
    UnknownKind {
        /// The kind it has.
        found: String,
    },
    /// A result of a version this slogate does not know.
    #[error(
        "has apiVersion {}, which this slogate does not read (it reads {}); \
         use the slogate that wrote it",
        quote(.found),
        READABLE_API_VERSIONS.join(", ")
    )]
    UnknownVersion {
        /// The apiVersion it has.
        found: String,
    },
    /// Labelled as a result, but a field does not fit.
    #[error("is not a valid {KIND}: {path}: {reason}")]
    Shape {
        /// Path of the field, e.g. `slos[0].verdict`.
        path: String,
        /// Why it does not fit (cut short).
        reason: String,
    },
}

/// The two fields that say what a document is, of any JSON type.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Label {
    #[serde(default)]
    api_version: Option<serde_json::Value>,
    #[serde(default)]
    kind: Option<serde_json::Value>,
}

fn label_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => clip_message(&other.to_string()),
    }
}

impl ExperimentResult {
    /// Reads a result document: refuses one over [`MAX_RESULT_BYTES`], one of another kind
    /// or of an apiVersion not in [`READABLE_API_VERSIONS`], then parses it.
    pub fn from_json(text: &str) -> Result<Self, ReadError> {
        if text.len() > MAX_RESULT_BYTES {
            return Err(ReadError::TooLarge {
                bytes: text.len() as u64,
                limit: MAX_RESULT_BYTES,
            });
        }
        // serde would read a list as the fields in order: only an object has a label.
        let is_object = text.trim_start().starts_with('{');
        let label: Label = serde_json::from_str(text).map_err(|err| {
            if err.is_data() {
                // JSON, but not an object: an array, a number, a string.
                ReadError::Unlabelled
            } else {
                ReadError::NotJson(err)
            }
        })?;
        let (true, Some(api_version), Some(kind)) = (is_object, label.api_version, label.kind)
        else {
            return Err(ReadError::Unlabelled);
        };
        if kind != KIND {
            return Err(ReadError::UnknownKind {
                found: label_text(&kind),
            });
        }
        if !READABLE_API_VERSIONS.iter().any(|v| api_version == *v) {
            return Err(ReadError::UnknownVersion {
                found: label_text(&api_version),
            });
        }
        let mut de = serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(&mut de).map_err(|err| {
            let path = err.path().to_string();
            ReadError::Shape {
                path,
                reason: clip_message(&err.into_inner().to_string()),
            }
        })
    }
}
