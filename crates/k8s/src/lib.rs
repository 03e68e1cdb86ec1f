//! Kubernetes adapter of slogate: the result ConfigMap and the cluster reads behind
//! `slogate describe` and `slogate assert`.
//!
//! [`configmap`] turns a result document into a ConfigMap and back with no I/O; [`cluster`]
//! connects (kubeconfig or in-cluster), writes that ConfigMap by server-side apply with
//! retries, and reads it back.
//!
//! For progressive rollouts: [`weights`] writes traffic weights into routing objects of any
//! kind (HTTPRoute, VirtualService, Knative Service...), [`readiness`] waits for objects'
//! conditions like `kubectl wait`, and [`events`] tells the story as Events on the Job.
//!
//! For load from several pods: [`partials`] holds each load pod's report in a ConfigMap of
//! its own, where index 0 reads it.

pub mod cluster;
pub mod configmap;
mod dynamic;
mod error;
pub mod events;
pub mod partials;
pub mod readiness;
#[cfg(feature = "testing")]
pub mod testing;
pub mod weights;

pub use cluster::{
    Backoff, Connection, FIELD_MANAGER, JobState, OwnerJob, ResultWriter, read_result,
    read_result_and_job,
};
pub use configmap::{
    MAX_DATA_BYTES, RESULT_KEY, job_owner, result_configmap, result_from_configmap,
};
pub use dynamic::AccessError;
pub use error::Error;
