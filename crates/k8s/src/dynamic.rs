//! What the weight writer and the readiness wait share: finding the API resource of an
//! `apiVersion` + `kind` by discovery, and sorting a failed request into what to do next.

use kube::api::{Api, ApiResource, DynamicObject};
use kube::core::GroupVersionKind;
use kube::discovery::Scope;
use std::fmt;

use crate::Backoff;

/// A Kubernetes object named by apiVersion, kind, namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    /// `gateway.networking.k8s.io/v1`, `apps/v1`, `v1`...
    pub api_version: String,
    /// `HTTPRoute`, `Deployment`...
    pub kind: String,
    /// The namespace (empty for a cluster-scoped object).
    pub namespace: String,
    /// The object's name.
    pub name: String,
}

impl fmt::Display for ObjectRef {
    /// `Kind/namespace/name`, e.g. `HTTPRoute/default/sample-app`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.kind, self.namespace, self.name)
    }
}

/// Why an object could not be reached at all, whatever was asked of it: what the weight
/// writer and the readiness wait both report.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The API server serves no such apiVersion and kind (is the CRD installed?).
    #[error(
        "the API server does not know kind {} in {}: is its CustomResourceDefinition installed? (needed for {object})",
        object.kind,
        object.api_version
    )]
    UnknownKind {
        /// The object.
        object: ObjectRef,
        /// What discovery said.
        #[source]
        source: Box<kube::Error>,
    },

    /// RBAC refused a request.
    #[error(
        "forbidden: the Job's Role does not allow {verb} on {resource} {} in {} (the API server said: {message})",
        object.name,
        object.namespace
    )]
    Forbidden {
        /// The object.
        object: ObjectRef,
        /// The verb refused (`get` or `patch`).
        verb: String,
        /// The resource as an RBAC rule names it, e.g. `httproutes.gateway.networking.k8s.io`.
        resource: String,
        /// The API server's message.
        message: String,
    },
}

impl AccessError {
    /// Discovery does not know `object`'s kind.
    pub(crate) fn unknown(object: ObjectRef, source: kube::Error) -> Self {
        AccessError::UnknownKind {
            object,
            source: Box::new(source),
        }
    }

    /// RBAC refused `verb` (or the verb its message names) on `object`.
    pub(crate) fn forbidden(
        object: ObjectRef,
        verb: &str,
        resource: &ApiResource,
        err: &kube::Error,
    ) -> Self {
        let message = api_message(err);
        AccessError::Forbidden {
            verb: denied_verb(&message, verb),
            resource: rbac_resource(resource),
            message,
            object,
        }
    }
}

/// How a failed request is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Throttling, a 5xx, or the connection itself: worth another attempt.
    Transient,
    /// 409 Conflict, or a JSON Patch whose `test` operation failed (the object changed
    /// between the read and the patch): read again and retry.
    Conflict,
    /// RBAC said no.
    Forbidden,
    /// The object (or its namespace) does not exist.
    NotFound,
    /// Refused as invalid (422 for a reason other than a failed test): not worth retrying.
    Invalid,
    /// Anything else.
    Other,
}

/// Sorts a failed request.
pub(crate) fn classify(err: &kube::Error) -> Failure {
    match err {
        // By code: a bare 404 from a path the API server does not serve has no reason.
        kube::Error::Api(status) if status.is_forbidden() || status.code == 403 => {
            Failure::Forbidden
        }
        kube::Error::Api(status) if status.is_not_found() || status.code == 404 => {
            Failure::NotFound
        }
        kube::Error::Api(status) if status.is_conflict() || status.code == 409 => Failure::Conflict,
        kube::Error::Api(status) if is_failed_patch(status) => Failure::Conflict,
        kube::Error::Api(status) if status.code == 422 || status.code == 400 => Failure::Invalid,
        kube::Error::Api(status) if status.code == 429 || (500..=599).contains(&status.code) => {
            Failure::Transient
        }
        kube::Error::HyperError(_) | kube::Error::Service(_) => Failure::Transient,
        _ => Failure::Other,
    }
}

/// Whether a refusal is a JSON Patch that did not apply to the object as stored: its `test`
/// of the resourceVersion failed (or a path it replaces went away), because the object
/// changed since it was read. The API server answers that with a bare 422 that names no
/// object and no field (`the server rejected our request due to an error in our request`),
/// where a validation failure names the object and its invalid fields.
fn is_failed_patch(status: &kube::core::Status) -> bool {
    status.code == 422
        && status
            .details
            .as_ref()
            .is_none_or(|d| d.kind.is_empty() && d.name.is_empty() && d.causes.is_empty())
}

/// The verb an RBAC denial names (`... cannot patch resource "httproutes" ...`), or `verb`.
pub(crate) fn denied_verb(message: &str, verb: &str) -> String {
    message
        .split("cannot ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .filter(|v| v.chars().all(|c| c.is_ascii_lowercase()))
        .unwrap_or(verb)
        .to_owned()
}

/// The API server's message of a failed request.
pub(crate) fn api_message(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

/// The resource an RBAC rule names for `resource`: `httproutes.gateway.networking.k8s.io`,
/// `deployments.apps`, or `configmaps` for the core group.
pub(crate) fn rbac_resource(resource: &ApiResource) -> String {
    if resource.group.is_empty() {
        resource.plural.clone()
    } else {
        format!("{}.{}", resource.plural, resource.group)
    }
}

/// The group/version/kind of an object reference.
pub(crate) fn gvk(object: &ObjectRef) -> GroupVersionKind {
    let (group, version) = match object.api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", object.api_version.as_str()),
    };
    GroupVersionKind::gvk(group, version, &object.kind)
}

/// Why an object's resource could not be found.
pub(crate) enum ResolveFailure {
    /// The API server serves no such apiVersion and kind.
    Unknown(kube::Error),
    /// Discovery itself failed (after retries).
    Api(kube::Error, u32),
}

/// The resource serving `object`'s apiVersion and kind, and whether it is namespaced, by
/// discovery (retrying transient failures).
pub(crate) async fn resolve(
    client: &kube::Client,
    object: &ObjectRef,
    backoff: Backoff,
) -> Result<(ApiResource, bool), ResolveFailure> {
    let gvk = gvk(object);
    let mut attempt = 1;
    loop {
        match kube::discovery::pinned_kind(client, &gvk).await {
            Ok((resource, capabilities)) => {
                return Ok((resource, capabilities.scope == Scope::Namespaced));
            }
            Err(err @ kube::Error::Discovery(_)) => return Err(ResolveFailure::Unknown(err)),
            Err(err) if classify(&err) == Failure::NotFound => {
                return Err(ResolveFailure::Unknown(err));
            }
            Err(err) if classify(&err) == Failure::Transient && attempt < backoff.attempts => {
                tracing::warn!(error = %err, attempt, "discovery of {} failed; retrying", object.kind);
                tokio::time::sleep(backoff.delay(attempt)).await;
                attempt += 1;
            }
            Err(err) => return Err(ResolveFailure::Api(err, attempt)),
        }
    }
}

/// The dynamic API of `object`'s resource, in its namespace when namespaced.
pub(crate) fn api(
    client: kube::Client,
    object: &ObjectRef,
    resource: &ApiResource,
    namespaced: bool,
) -> Api<DynamicObject> {
    if namespaced {
        Api::namespaced_with(client, &object.namespace, resource)
    } else {
        Api::all_with(client, resource)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_and_grouped_api_versions_split() {
        let mut o = ObjectRef {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: "default".into(),
            name: "x".into(),
        };
        assert_eq!(gvk(&o), GroupVersionKind::gvk("", "v1", "ConfigMap"));
        o.api_version = "gateway.networking.k8s.io/v1".into();
        o.kind = "HTTPRoute".into();
        assert_eq!(
            gvk(&o),
            GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute")
        );
    }

    #[test]
    fn the_denied_verb_comes_from_the_rbac_message() {
        let msg = r#"httproutes.gateway.networking.k8s.io "b" is forbidden: User "system:serviceaccount:default:sa" cannot patch resource "httproutes" in API group "gateway.networking.k8s.io" in the namespace "default""#;
        assert_eq!(denied_verb(msg, "get"), "patch");
        assert_eq!(denied_verb("forbidden", "get"), "get");
    }

    #[test]
    fn a_json_patch_that_did_not_apply_is_a_conflict_and_a_validation_failure_is_not() {
        // What kube-apiserver 1.35 answers to a failed `test` operation.
        let failed_test: kube::core::Status = serde_json::from_value(serde_json::json!({
            "status": "Failure", "code": 422, "reason": "Invalid",
            "message": "the server rejected our request due to an error in our request",
            "details": {}
        }))
        .unwrap();
        assert!(is_failed_patch(&failed_test));
        let invalid: kube::core::Status = serde_json::from_value(serde_json::json!({
            "status": "Failure", "code": 422, "reason": "Invalid",
            "message": "Service.serving.knative.dev \"hello\" is invalid: spec.traffic[0].percent: Invalid value: 150",
            "details": {"name": "hello", "group": "serving.knative.dev", "kind": "Service",
                "causes": [{"reason": "FieldValueInvalid", "field": "spec.traffic[0].percent"}]}
        }))
        .unwrap();
        assert!(!is_failed_patch(&invalid));
    }
}
