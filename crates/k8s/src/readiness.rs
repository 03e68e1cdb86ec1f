//! Waiting until objects report a condition, the way `kubectl wait --for=condition=X` does:
//! an object is ready when `.status.conditions[]` has an entry whose `type` is the condition
//! (compared case-insensitively) with `status` `True`, and that entry (or the status) is not
//! about an older generation than the object's `metadata.generation`.
//!
//! RBAC: `get` on each object's resource (may be limited by `resourceNames`).

use std::time::{Duration, Instant};

use kube::Client;
use serde_json::Value;

use crate::Backoff;
use crate::dynamic::ObjectRef;
use crate::dynamic::{self, AccessError, Failure, ResolveFailure};

/// An object and the condition it must report as `True`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReadinessCheck {
    /// The object.
    pub object: ObjectRef,
    /// The condition's type, e.g. `Available` or `Ready`.
    pub condition: String,
}

/// Why the wait ended without every object ready.
#[derive(Debug, thiserror::Error)]
pub enum ReadinessError {
    /// The kind is unknown to the API server, or RBAC refused the read.
    #[error(transparent)]
    Access(#[from] AccessError),

    /// The timeout passed first.
    #[error(
        "not ready after {}s: {}",
        waited.as_secs(),
        not_ready.iter().map(|(o, s)| format!("{o} ({s})")).collect::<Vec<_>>().join(", ")
    )]
    Timeout {
        /// Each object not ready, with the last state seen: `condition Available is False:
        /// MinimumReplicasUnavailable`, `not found`...
        not_ready: Vec<(ObjectRef, String)>,
        /// How long it waited.
        waited: Duration,
    },

    /// Any other failure that waiting longer would not cure.
    #[error("cannot get {object}")]
    Api {
        /// The object.
        object: ObjectRef,
        /// The failure.
        #[source]
        source: Box<kube::Error>,
    },
}

/// Where an object stands with respect to a condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConditionState {
    /// The condition is `True` for the object's current generation.
    Ready,
    /// Not yet; a human description such as `condition Available is False:
    /// MinimumReplicasUnavailable`.
    NotReady(String),
}

/// The state of `condition` in `object` (as JSON), with `kubectl wait` semantics.
pub fn condition_state(object: &Value, condition: &str) -> ConditionState {
    let conditions = object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for c in conditions {
        let Some(kind) = c.get("type").and_then(Value::as_str) else {
            continue;
        };
        if !kind.eq_ignore_ascii_case(condition) {
            continue;
        }
        let Some(status) = c.get("status").and_then(Value::as_str) else {
            continue;
        };
        let generation = object
            .pointer("/metadata/generation")
            .and_then(Value::as_i64);
        let observed = c
            .get("observedGeneration")
            .and_then(Value::as_i64)
            .or_else(|| {
                object
                    .pointer("/status/observedGeneration")
                    .and_then(Value::as_i64)
            });
        if let (Some(generation), Some(observed)) = (generation, observed)
            && observed < generation
        {
            return ConditionState::NotReady(format!(
                "condition {kind} is {status} for generation {observed}, the object is at generation {generation}"
            ));
        }
        if status.eq_ignore_ascii_case("True") {
            return ConditionState::Ready;
        }
        let why: Vec<&str> = ["reason", "message"]
            .into_iter()
            .filter_map(|k| c.get(k).and_then(Value::as_str))
            .filter(|s| !s.is_empty())
            .collect();
        let mut state = format!("condition {kind} is {status}");
        if !why.is_empty() {
            state.push_str(": ");
            state.push_str(&why.join(": "));
        }
        return ConditionState::NotReady(state);
    }
    let others: Vec<String> = conditions
        .iter()
        .filter_map(|c| {
            Some(format!(
                "{}={}",
                c.get("type")?.as_str()?,
                c.get("status")?.as_str()?
            ))
        })
        .collect();
    ConditionState::NotReady(if others.is_empty() {
        format!("no condition {condition} yet (no conditions)")
    } else {
        format!("no condition {condition} yet ({})", others.join(", "))
    })
}

/// How often each object is read.
const POLL: Duration = Duration::from_secs(1);
/// How often `on_wait` hears about an object still not ready.
const REPORT_EVERY: Duration = Duration::from_secs(5);

/// Waits until every check's object reports its condition `True`, or `timeout` passes.
/// A missing object is not ready yet (`not found`); so is one the API server fails to
/// return for a transient reason. Each object is read about once a second; `on_wait` is
/// called every five seconds or so for each object still not ready, with a line such as
/// `Deployment/default/app: condition Available is False: MinimumReplicasUnavailable (10s)`.
pub async fn wait_ready(
    client: Client,
    checks: &[ReadinessCheck],
    timeout: Duration,
    mut on_wait: impl FnMut(&ReadinessCheck, &str) + Send,
) -> Result<(), ReadinessError> {
    let started = Instant::now();
    let mut apis = Vec::with_capacity(checks.len());
    for check in checks {
        let (resource, namespaced) = dynamic::resolve(&client, &check.object, Backoff::default())
            .await
            .map_err(|failure| match failure {
                ResolveFailure::Unknown(source) => {
                    AccessError::unknown(check.object.clone(), source).into()
                }
                ResolveFailure::Api(source, _) => ReadinessError::Api {
                    object: check.object.clone(),
                    source: Box::new(source),
                },
            })?;
        let api = dynamic::api(client.clone(), &check.object, &resource, namespaced);
        apis.push((check, api, resource));
    }
    let mut states: Vec<Option<String>> = vec![Some("not read yet".to_owned()); checks.len()];
    let mut last_report: Option<Instant> = None;
    loop {
        for (i, (check, api, resource)) in apis.iter().enumerate() {
            if states[i].is_none() {
                continue;
            }
            states[i] = match api.get(&check.object.name).await {
                Ok(found) => match serde_json::to_value(found) {
                    Ok(value) => match condition_state(&value, &check.condition) {
                        ConditionState::Ready => {
                            tracing::info!(object = %check.object, condition = %check.condition, "ready");
                            None
                        }
                        ConditionState::NotReady(state) => Some(state),
                    },
                    Err(err) => Some(format!("unreadable: {err}")),
                },
                Err(err) => match dynamic::classify(&err) {
                    Failure::NotFound => Some("not found".to_owned()),
                    Failure::Transient | Failure::Conflict => Some(format!("cannot read: {err}")),
                    Failure::Forbidden => {
                        return Err(AccessError::forbidden(
                            check.object.clone(),
                            "get",
                            resource,
                            &err,
                        )
                        .into());
                    }
                    Failure::Invalid | Failure::Other => {
                        return Err(ReadinessError::Api {
                            object: check.object.clone(),
                            source: Box::new(err),
                        });
                    }
                },
            };
        }
        if states.iter().all(Option::is_none) {
            return Ok(());
        }
        let waited = started.elapsed();
        if waited >= timeout {
            return Err(ReadinessError::Timeout {
                not_ready: checks
                    .iter()
                    .zip(states)
                    .filter_map(|(check, state)| Some((check.object.clone(), state?)))
                    .collect(),
                waited,
            });
        }
        if last_report.is_none_or(|at| at.elapsed() >= REPORT_EVERY) {
            last_report = Some(Instant::now());
            for (check, state) in checks.iter().zip(&states) {
                if let Some(state) = state {
                    on_wait(
                        check,
                        &format!("{}: {state} ({}s)", check.object, waited.as_secs()),
                    );
                }
            }
        }
        tokio::time::sleep(POLL.min(timeout.saturating_sub(waited))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ready(object: &Value, condition: &str) -> Result<(), String> {
        match condition_state(object, condition) {
            ConditionState::Ready => Ok(()),
            ConditionState::NotReady(s) => Err(s),
        }
    }

    #[test]
    fn a_true_condition_is_ready_whatever_its_case() {
        let d = json!({"status": {"conditions": [
            {"type": "Progressing", "status": "True"},
            {"type": "Available", "status": "True"}
        ]}});
        assert_eq!(ready(&d, "Available"), Ok(()));
        assert_eq!(ready(&d, "available"), Ok(()));
    }

    #[test]
    fn a_false_condition_says_why() {
        let d = json!({"status": {"conditions": [
            {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
             "message": "Deployment does not have minimum availability."}
        ]}});
        assert_eq!(
            ready(&d, "Available"),
            Err("condition Available is False: MinimumReplicasUnavailable: Deployment does not have minimum availability.".into())
        );
    }

    #[test]
    fn a_missing_condition_lists_the_others() {
        let d = json!({"status": {"conditions": [{"type": "Progressing", "status": "True"}]}});
        assert_eq!(
            ready(&d, "Available"),
            Err("no condition Available yet (Progressing=True)".into())
        );
        assert_eq!(
            ready(&json!({}), "Ready"),
            Err("no condition Ready yet (no conditions)".into())
        );
    }

    #[test]
    fn a_condition_about_an_older_generation_is_not_ready() {
        let d = json!({
            "metadata": {"generation": 3},
            "status": {"observedGeneration": 2, "conditions": [{"type": "Ready", "status": "True"}]}
        });
        assert!(ready(&d, "Ready").unwrap_err().contains("generation 2"));
        let d = json!({
            "metadata": {"generation": 3},
            "status": {"observedGeneration": 2,
                "conditions": [{"type": "Ready", "status": "True", "observedGeneration": 3}]}
        });
        assert_eq!(ready(&d, "Ready"), Ok(()));
    }
}
