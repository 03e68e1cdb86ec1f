//! Kubernetes adapter of slogate: the result ConfigMap and the cluster reads behind
//! `slogate describe` and `slogate assert`.
//!
//! [`configmap`] turns a result document into a ConfigMap and back with no I/O; [`cluster`]
//! connects (kubeconfig or in-cluster), writes that ConfigMap by server-side apply with
//! retries, and reads it back.

pub mod cluster;
pub mod configmap;
mod error;
#[cfg(feature = "testing")]
pub mod testing;

pub use cluster::{
    Backoff, Connection, FIELD_MANAGER, JobState, OwnerJob, ResultWriter, read_result,
    read_result_and_job,
};
pub use configmap::{
    MAX_DATA_BYTES, RESULT_KEY, job_owner, result_configmap, result_from_configmap,
};
pub use error::Error;
