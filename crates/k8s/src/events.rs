//! Kubernetes Events on the experiment's Job, so `kubectl describe job NAME` (and
//! `kubectl events --for job/NAME`) tell the rollout's story: each weight step, each wait,
//! the verdict.
//!
//! Events are written with kube's [`Recorder`] as `events.k8s.io/v1` Events, reporting
//! controller `slogate`, reporting instance the pod's host name. Every [`JobEvents::emit`]
//! creates an Event of its own (no series), so each step's message is kept.
//!
//! RBAC: [`JobEvents::for_job`] needs `get` on `jobs` (API group `batch`, may be limited to
//! the Job by `resourceNames`); [`JobEvents::emit`] needs `create` on `events` in API group
//! `events.k8s.io` (kube's Recorder would `patch` them too when it counts repeats in a
//! series; this module never does, but granting `patch` as well does no harm).

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Client};

/// Name every Event reports as its controller.
pub const REPORTER: &str = "slogate";

/// The longest note the API server accepts in an `events.k8s.io/v1` Event.
const MAX_NOTE_BYTES: usize = 1024;
/// The longest reason and action it accepts.
const MAX_REASON_CHARS: usize = 128;

/// Whether an Event reports something normal or a problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// Progress: a weight step, a readiness reached, a passing verdict.
    Normal,
    /// Something a person should look at: a failing SLO, a rollback.
    Warning,
}

/// Why the Job's Events cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    /// The Job could not be read (to know its uid).
    #[error("cannot get Job {name} in namespace {namespace} to attach Events to it")]
    Job {
        /// The Job's namespace.
        namespace: String,
        /// The Job's name.
        name: String,
        /// Why.
        #[source]
        source: Box<kube::Error>,
    },

    /// The Job as read has no uid.
    #[error("Job {name} in namespace {namespace} has no uid")]
    NoUid {
        /// The Job's namespace.
        namespace: String,
        /// The Job's name.
        name: String,
    },
}

/// Writes Events about one Job.
#[derive(Clone)]
pub struct JobEvents {
    client: Client,
    job: ObjectReference,
    reporter: Reporter,
}

impl JobEvents {
    /// Events about Job `job_name` in `namespace`, which is read once for its uid.
    pub async fn for_job(
        client: Client,
        namespace: &str,
        job_name: &str,
    ) -> Result<Self, EventsError> {
        let jobs: Api<Job> = Api::namespaced(client.clone(), namespace);
        let job = jobs
            .get(job_name)
            .await
            .map_err(|source| EventsError::Job {
                namespace: namespace.to_owned(),
                name: job_name.to_owned(),
                source: Box::new(source),
            })?;
        let uid = job.metadata.uid.ok_or_else(|| EventsError::NoUid {
            namespace: namespace.to_owned(),
            name: job_name.to_owned(),
        })?;
        Ok(Self {
            client,
            job: ObjectReference {
                api_version: Some("batch/v1".to_owned()),
                kind: Some("Job".to_owned()),
                namespace: Some(namespace.to_owned()),
                name: Some(job_name.to_owned()),
                uid: Some(uid),
                resource_version: job.metadata.resource_version,
                field_path: None,
            },
            reporter: Reporter::from(REPORTER),
        })
    }

    /// The Job the Events are about.
    pub fn job(&self) -> &ObjectReference {
        &self.job
    }

    /// Writes an Event with `reason` (a CamelCase word such as `WeightsSet`) and `message`
    /// on the Job. Never fails: a refused or lost Event is logged as a warning.
    pub async fn emit(&self, kind: EventKind, reason: &str, message: &str) {
        let reason: String = reason.chars().take(MAX_REASON_CHARS).collect();
        let event = Event {
            type_: match kind {
                EventKind::Normal => EventType::Normal,
                EventKind::Warning => EventType::Warning,
            },
            action: reason.clone(),
            reason,
            note: Some(truncate(message, MAX_NOTE_BYTES)),
            secondary: None,
        };
        // A Recorder of its own for each Event: a shared one would turn a repeated reason
        // into a series on the first Event, keeping only the first message.
        let recorder = Recorder::new(self.client.clone(), self.reporter.clone());
        if let Err(err) = recorder.publish(&event, &self.job).await {
            tracing::warn!(
                error = %err,
                job = self.job.name.as_deref().unwrap_or_default(),
                reason = %event.reason,
                "cannot write an Event on the Job (does its Role allow create on events.events.k8s.io?)"
            );
        }
    }
}

/// `text` cut to at most `max` bytes on a character boundary, with `…` when cut.
fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max - '…'.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_to_what_the_api_server_takes() {
        let long = "é".repeat(600);
        let cut = truncate(&long, MAX_NOTE_BYTES);
        assert!(cut.len() <= MAX_NOTE_BYTES);
        assert!(cut.ends_with('…'));
        assert_eq!(truncate("short", MAX_NOTE_BYTES), "short");
    }
}
