//! Traffic weights of a progressive rollout, written into the objects that route traffic:
//! a Gateway API HTTPRoute's `backendRefs[].weight`, an Istio VirtualService's
//! `route[].weight`, a Knative Service's `traffic[].percent`, or any other field holding an
//! integer, named by an RFC 6901 JSON pointer.
//!
//! [`WeightWriter::write`] sends one JSON Patch (RFC 6902) per object, so every weight of an
//! object changes at once and nobody sees it half-updated. The patch starts with a `test` of
//! `/metadata/resourceVersion` as read just before: if someone changed the object in between,
//! the API server refuses it and the writer reads the object again and retries (with its
//! [`Backoff`]). Only the weight fields are in the patch, so any other change a person makes
//! to the object is kept.
//!
//! RBAC: the writer needs `get` and `patch` on each object's resource (e.g. `httproutes` in
//! API group `gateway.networking.k8s.io`), which may be limited to the objects by
//! `resourceNames`; [`WeightWriter::read`] needs `get` only. Discovery of the kind's
//! resource uses the API server's discovery endpoints, open to every authenticated user.

// Every error names its whole object (four strings) so the message can say which one; they
// are returned at most once per rollout step, where their size costs nothing.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use kube::Client;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

use crate::Backoff;
pub use crate::dynamic::ObjectRef;
use crate::dynamic::{self, AccessError, Failure, ResolveFailure};

/// One weight to set: the object, the field (an RFC 6901 JSON pointer such as
/// `/spec/rules/0/backendRefs/1/weight`) and its new value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WeightTarget {
    /// The object holding the field.
    pub object: ObjectRef,
    /// RFC 6901 JSON pointer to the field.
    pub pointer: String,
    /// The value to write.
    pub weight: i64,
}

/// Why weights could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum WeightError {
    /// The kind is unknown to the API server, or RBAC refused the request.
    #[error(transparent)]
    Access(#[from] AccessError),

    /// The pointer is not an RFC 6901 JSON pointer.
    #[error("{object}: {pointer:?} is not a JSON pointer: {reason}")]
    InvalidPointer {
        /// The object.
        object: ObjectRef,
        /// The pointer given.
        pointer: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The field's parent does not exist in the object (e.g. `backendRefs/1` when there is
    /// only one backendRef).
    #[error("{object} has no {pointer}: {reason}")]
    MissingPath {
        /// The object.
        object: ObjectRef,
        /// The pointer to the weight.
        pointer: String,
        /// Which part is missing.
        reason: String,
    },

    /// The field exists but holds something other than a number (a list, an object, a
    /// string): overwriting it would destroy more than a weight.
    #[error("{object}: {pointer} holds {found}, not a weight")]
    NotAWeight {
        /// The object.
        object: ObjectRef,
        /// The pointer to the field.
        pointer: String,
        /// What the field holds.
        found: String,
    },

    /// Two targets set the same field of the same object to different values.
    #[error("{object}: {pointer} is given two weights, {first} and {second}")]
    ConflictingTargets {
        /// The object.
        object: ObjectRef,
        /// The field.
        pointer: String,
        /// One weight.
        first: i64,
        /// The other.
        second: i64,
    },

    /// The object as read has no `metadata.resourceVersion` to guard the patch with.
    #[error("{object} has no metadata.resourceVersion")]
    NoResourceVersion {
        /// The object.
        object: ObjectRef,
    },

    /// The object does not exist.
    #[error("{object} does not exist")]
    NotFound {
        /// The object.
        object: ObjectRef,
    },

    /// The object kept changing between the read and the patch.
    #[error(
        "{object} changed between every read and patch ({attempts} attempts); someone else keeps writing it"
    )]
    Conflict {
        /// The object.
        object: ObjectRef,
        /// Attempts made.
        attempts: u32,
        /// The last refusal.
        #[source]
        source: Box<kube::Error>,
    },

    /// The API server refused the new weights as invalid (e.g. a schema's maximum, or
    /// Knative's rule that the percents add up to 100).
    #[error("{object}: the API server refused the weights: {message}")]
    Invalid {
        /// The object.
        object: ObjectRef,
        /// The API server's message.
        message: String,
        /// The refusal.
        #[source]
        source: Box<kube::Error>,
    },

    /// Any other API or transport failure, after retries where they apply.
    #[error("cannot {verb} {object} (after {attempts} attempt(s))")]
    Api {
        /// The object.
        object: ObjectRef,
        /// The verb attempted.
        verb: &'static str,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        #[source]
        source: Box<kube::Error>,
    },

    /// The object or the patch could not be converted to or from JSON.
    #[error("{object}: cannot convert to or from JSON")]
    Json {
        /// The object.
        object: ObjectRef,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

/// The reference tokens of an RFC 6901 pointer, unescaped.
fn parse_pointer(object: &ObjectRef, pointer: &str) -> Result<Vec<String>, WeightError> {
    let invalid = |reason: &str| WeightError::InvalidPointer {
        object: object.clone(),
        pointer: pointer.to_owned(),
        reason: reason.to_owned(),
    };
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(invalid("it must start with '/'"));
    };
    rest.split('/')
        .map(|token| {
            let mut out = String::with_capacity(token.len());
            let mut chars = token.chars();
            while let Some(c) = chars.next() {
                if c == '~' {
                    match chars.next() {
                        Some('0') => out.push('~'),
                        Some('1') => out.push('/'),
                        _ => return Err(invalid("'~' must be followed by 0 or 1")),
                    }
                } else {
                    out.push(c);
                }
            }
            Ok(out)
        })
        .collect()
}

/// An array index token: `0` or digits without a leading zero.
fn array_index(token: &str) -> Option<usize> {
    if token.is_empty()
        || !token.bytes().all(|b| b.is_ascii_digit())
        || (token.len() > 1 && token.starts_with('0'))
    {
        return None;
    }
    token.parse().ok()
}

/// The pointer made of the first `n` tokens, escaped again, for messages.
fn prefix(tokens: &[String], n: usize) -> String {
    tokens[..n]
        .iter()
        .map(|t| format!("/{}", t.replace('~', "~0").replace('/', "~1")))
        .collect()
}

fn entries(n: usize) -> String {
    if n == 1 {
        "1 entry".to_owned()
    } else {
        format!("{n} entries")
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("a boolean ({b})"),
        Value::Number(n) => format!("a number ({n})"),
        Value::String(s) => format!("a string ({s:?})"),
        Value::Array(a) => format!("a list of {}", entries(a.len())),
        Value::Object(_) => "an object".to_owned(),
    }
}

/// Where a target's field is in an object.
enum Slot<'a> {
    /// The field exists and holds this (a number or null).
    Present(&'a Value),
    /// The parent is an object without this key.
    Absent,
}

/// Finds a target's field in `current`, checking its parent exists.
fn locate<'a>(current: &'a Value, target: &WeightTarget) -> Result<Slot<'a>, WeightError> {
    let tokens = parse_pointer(&target.object, &target.pointer)?;
    let missing = |reason: String| WeightError::MissingPath {
        object: target.object.clone(),
        pointer: target.pointer.clone(),
        reason,
    };
    let mut value = current;
    for (i, token) in tokens.iter().enumerate() {
        let last = i + 1 == tokens.len();
        let here = prefix(&tokens, i);
        let here = if here.is_empty() { "/" } else { &here };
        let child = match value {
            Value::Object(map) => match map.get(token) {
                Some(child) => child,
                None if last => return Ok(Slot::Absent),
                None => return Err(missing(format!("{here} has no field {token:?}"))),
            },
            Value::Array(list) => match array_index(token) {
                Some(index) if index < list.len() => &list[index],
                Some(index) => {
                    return Err(missing(format!(
                        "{here} has {}, so there is no entry {index}",
                        entries(list.len())
                    )));
                }
                None => {
                    return Err(missing(format!(
                        "{here} is a list, and {token:?} is not an index in it"
                    )));
                }
            },
            other => {
                return Err(missing(format!(
                    "{here} is {}, which has no field {token:?}",
                    describe(other)
                )));
            }
        };
        value = child;
    }
    match value {
        Value::Number(_) | Value::Null => Ok(Slot::Present(value)),
        other => Err(WeightError::NotAWeight {
            object: target.object.clone(),
            pointer: target.pointer.clone(),
            found: describe(other),
        }),
    }
}

/// The JSON Patch (RFC 6902) that sets `targets`' weights in `current`, one object as read
/// from the API server: first a `test` that `/metadata/resourceVersion` is still the one
/// read, then a `replace` for each weight field that exists with another value, an `add`
/// for each that is missing from an existing parent. A weight already at its value gets no
/// operation, so a patch of the `test` alone means there is nothing to change.
///
/// Fails if a pointer is malformed, if a field's parent is missing (e.g. the list has fewer
/// entries), if a field holds something other than a number, or if two targets give the
/// same field different weights.
pub fn weight_patch(current: &Value, targets: &[&WeightTarget]) -> Result<Value, WeightError> {
    let mut ops = Vec::with_capacity(targets.len() + 1);
    if let Some(first) = targets.first() {
        let Some(version) = current.pointer("/metadata/resourceVersion") else {
            return Err(WeightError::NoResourceVersion {
                object: first.object.clone(),
            });
        };
        ops.push(json!({"op": "test", "path": "/metadata/resourceVersion", "value": version}));
    }
    let mut seen: HashMap<(&ObjectRef, &str), i64> = HashMap::new();
    for target in targets {
        let key = (&target.object, target.pointer.as_str());
        if let Some(&first) = seen.get(&key) {
            if first != target.weight {
                return Err(WeightError::ConflictingTargets {
                    object: target.object.clone(),
                    pointer: target.pointer.clone(),
                    first,
                    second: target.weight,
                });
            }
            continue;
        }
        seen.insert(key, target.weight);
        match locate(current, target)? {
            Slot::Present(value) if value.as_i64() == Some(target.weight) => {}
            Slot::Present(_) => {
                ops.push(json!({"op": "replace", "path": target.pointer, "value": target.weight}))
            }
            Slot::Absent => {
                ops.push(json!({"op": "add", "path": target.pointer, "value": target.weight}))
            }
        }
    }
    Ok(Value::Array(ops))
}

/// The value of a target's field in `current`: `None` when absent, null or not an integer.
fn current_weight(current: &Value, target: &WeightTarget) -> Result<Option<i64>, WeightError> {
    Ok(match locate(current, target)? {
        Slot::Present(value) => value.as_i64(),
        Slot::Absent => None,
    })
}

/// Runs between the read and the patch of each attempt; for tests that change the object
/// in between.
#[cfg(feature = "testing")]
pub type BeforePatch = Arc<
    dyn Fn(&ObjectRef, u32) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
        + Send
        + Sync,
>;

/// Resources found by discovery, by apiVersion and kind, with whether they are namespaced.
type Resources = Arc<Mutex<HashMap<(String, String), (ApiResource, bool)>>>;

/// Writes and reads traffic weights in Kubernetes objects of any kind (see the module doc).
#[derive(Clone)]
pub struct WeightWriter {
    client: Client,
    backoff: Backoff,
    resources: Resources,
    #[cfg(feature = "testing")]
    before_patch: Option<BeforePatch>,
}

impl WeightWriter {
    /// A writer using `client`, with the default [`Backoff`].
    pub fn new(client: Client) -> Self {
        Self {
            client,
            backoff: Backoff::default(),
            resources: Arc::default(),
            #[cfg(feature = "testing")]
            before_patch: None,
        }
    }

    /// Changes the retry policy (for conflicts and transient failures alike).
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Runs `hook` between the read and the patch of every attempt, with the object and the
    /// attempt number (1-based): lets a test change the object in between.
    #[cfg(feature = "testing")]
    pub fn with_before_patch(mut self, hook: BeforePatch) -> Self {
        self.before_patch = Some(hook);
        self
    }

    /// Sets every target's weight: one patch per object, objects in [`ObjectRef`] order.
    /// The objects are not changed together: if the second fails, the first keeps its new
    /// weights (writing the same targets again is safe).
    pub async fn write(&self, targets: &[WeightTarget]) -> Result<(), WeightError> {
        for (object, targets) in group(targets) {
            self.write_object(object, &targets).await?;
        }
        Ok(())
    }

    /// The current value of each target's field, in order: `None` when the field is absent
    /// or not an integer. Fails like [`WeightWriter::write`] when the object is missing or
    /// a field's parent is.
    pub async fn read(&self, targets: &[WeightTarget]) -> Result<Vec<Option<i64>>, WeightError> {
        let mut objects: HashMap<&ObjectRef, Value> = HashMap::new();
        let mut values = Vec::with_capacity(targets.len());
        for target in targets {
            if !objects.contains_key(&target.object) {
                let (current, _) = self.get(&target.object).await?;
                objects.insert(&target.object, current);
            }
            values.push(current_weight(&objects[&target.object], target)?);
        }
        Ok(values)
    }

    /// The resource of `object`'s kind, discovered once per writer.
    async fn resource(&self, object: &ObjectRef) -> Result<(ApiResource, bool), WeightError> {
        let key = (object.api_version.clone(), object.kind.clone());
        if let Some(found) = self.resources.lock().expect("not poisoned").get(&key) {
            return Ok(found.clone());
        }
        let found = dynamic::resolve(&self.client, object, self.backoff)
            .await
            .map_err(|failure| match failure {
                ResolveFailure::Unknown(source) => {
                    AccessError::unknown(object.clone(), source).into()
                }
                ResolveFailure::Api(source, attempts) => WeightError::Api {
                    object: object.clone(),
                    verb: "discover",
                    attempts,
                    source: Box::new(source),
                },
            })?;
        self.resources
            .lock()
            .expect("not poisoned")
            .insert(key, found.clone());
        Ok(found)
    }

    /// The object as JSON, and its API, retrying transient failures.
    async fn get(
        &self,
        object: &ObjectRef,
    ) -> Result<(Value, kube::Api<DynamicObject>), WeightError> {
        let (resource, namespaced) = self.resource(object).await?;
        let api = dynamic::api(self.client.clone(), object, &resource, namespaced);
        let mut attempt = 1;
        loop {
            match api.get(&object.name).await {
                Ok(found) => {
                    let value =
                        serde_json::to_value(found).map_err(|source| WeightError::Json {
                            object: object.clone(),
                            source,
                        })?;
                    return Ok((value, api));
                }
                Err(err) => {
                    let failure = dynamic::classify(&err);
                    if failure == Failure::Transient && attempt < self.backoff.attempts {
                        self.pause(object, "get", attempt, &err).await;
                        attempt += 1;
                        continue;
                    }
                    return Err(self.failed(object, &resource, "get", attempt, failure, err));
                }
            }
        }
    }

    async fn write_object(
        &self,
        object: &ObjectRef,
        targets: &[&WeightTarget],
    ) -> Result<(), WeightError> {
        let (resource, _) = self.resource(object).await?;
        let mut attempt = 1;
        loop {
            let (current, api) = self.get(object).await?;
            let patch = weight_patch(&current, targets)?;
            if patch.as_array().is_some_and(|ops| ops.len() <= 1) {
                tracing::debug!(%object, "weights already set");
                return Ok(());
            }
            #[cfg(feature = "testing")]
            if let Some(hook) = &self.before_patch {
                hook(object, attempt).await;
            }
            let patch: json_patch::Patch =
                serde_json::from_value(patch).map_err(|source| WeightError::Json {
                    object: object.clone(),
                    source,
                })?;
            let err = match api
                .patch(
                    &object.name,
                    &PatchParams::default(),
                    &Patch::Json::<()>(patch),
                )
                .await
            {
                Ok(_) => {
                    tracing::info!(%object, attempt, "weights written");
                    return Ok(());
                }
                Err(err) => err,
            };
            let failure = dynamic::classify(&err);
            if matches!(failure, Failure::Conflict | Failure::Transient)
                && attempt < self.backoff.attempts
            {
                self.pause(object, "patch", attempt, &err).await;
                attempt += 1;
                continue;
            }
            return Err(self.failed(object, &resource, "patch", attempt, failure, err));
        }
    }

    async fn pause(&self, object: &ObjectRef, verb: &str, attempt: u32, err: &kube::Error) {
        let wait = self.backoff.delay(attempt);
        tracing::warn!(
            error = %err,
            attempt,
            wait_ms = wait.as_millis() as u64,
            "{verb} {object} failed; retrying"
        );
        tokio::time::sleep(wait).await;
    }

    fn failed(
        &self,
        object: &ObjectRef,
        resource: &ApiResource,
        verb: &'static str,
        attempts: u32,
        failure: Failure,
        err: kube::Error,
    ) -> WeightError {
        let object = object.clone();
        match failure {
            Failure::Forbidden => AccessError::forbidden(object, verb, resource, &err).into(),
            Failure::NotFound => WeightError::NotFound { object },
            Failure::Conflict => WeightError::Conflict {
                object,
                attempts,
                source: Box::new(err),
            },
            Failure::Invalid if verb == "patch" => WeightError::Invalid {
                object,
                message: dynamic::api_message(&err),
                source: Box::new(err),
            },
            _ => WeightError::Api {
                object,
                verb,
                attempts,
                source: Box::new(err),
            },
        }
    }
}

/// Targets grouped by object, objects in order.
fn group(targets: &[WeightTarget]) -> BTreeMap<&ObjectRef, Vec<&WeightTarget>> {
    let mut groups: BTreeMap<&ObjectRef, Vec<&WeightTarget>> = BTreeMap::new();
    for target in targets {
        groups.entry(&target.object).or_default().push(target);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route() -> ObjectRef {
        ObjectRef {
            api_version: "gateway.networking.k8s.io/v1".into(),
            kind: "HTTPRoute".into(),
            namespace: "default".into(),
            name: "sample-app".into(),
        }
    }

    fn target(pointer: &str, weight: i64) -> WeightTarget {
        WeightTarget {
            object: route(),
            pointer: pointer.into(),
            weight,
        }
    }

    fn current() -> Value {
        json!({
            "metadata": {"name": "sample-app", "resourceVersion": "42"},
            "spec": {"rules": [{"backendRefs": [
                {"name": "stable", "weight": 100},
                {"name": "canary"}
            ]}]}
        })
    }

    fn patch(targets: &[WeightTarget]) -> Result<Value, WeightError> {
        let refs: Vec<&WeightTarget> = targets.iter().collect();
        weight_patch(&current(), &refs)
    }

    #[test]
    fn object_ref_displays_as_kind_namespace_name() {
        assert_eq!(route().to_string(), "HTTPRoute/default/sample-app");
    }

    #[test]
    fn the_patch_tests_the_resource_version_then_sets_every_weight() {
        let p = patch(&[
            target("/spec/rules/0/backendRefs/0/weight", 80),
            target("/spec/rules/0/backendRefs/1/weight", 20),
        ])
        .unwrap();
        assert_eq!(
            p,
            json!([
                {"op": "test", "path": "/metadata/resourceVersion", "value": "42"},
                {"op": "replace", "path": "/spec/rules/0/backendRefs/0/weight", "value": 80},
                {"op": "add", "path": "/spec/rules/0/backendRefs/1/weight", "value": 20},
            ])
        );
        // Applied, it changes the weights and nothing else.
        let mut doc = current();
        let ops: json_patch::Patch = serde_json::from_value(p).unwrap();
        json_patch::patch(&mut doc, &ops).unwrap();
        let mut expected = current();
        expected["spec"]["rules"][0]["backendRefs"][0]["weight"] = json!(80);
        expected["spec"]["rules"][0]["backendRefs"][1]["weight"] = json!(20);
        assert_eq!(doc, expected);
    }

    #[test]
    fn a_weight_already_set_gets_no_operation() {
        let p = patch(&[target("/spec/rules/0/backendRefs/0/weight", 100)]).unwrap();
        assert_eq!(p.as_array().unwrap().len(), 1, "{p}");
    }

    #[test]
    fn a_missing_list_entry_names_the_object_and_the_path() {
        let err = patch(&[target("/spec/rules/0/backendRefs/2/weight", 20)]).unwrap_err();
        assert!(matches!(err, WeightError::MissingPath { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "HTTPRoute/default/sample-app has no /spec/rules/0/backendRefs/2/weight: \
             /spec/rules/0/backendRefs has 2 entries, so there is no entry 2"
        );
        let err = patch(&[target("/spec/http/0/route/0/weight", 20)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "HTTPRoute/default/sample-app has no /spec/http/0/route/0/weight: \
             /spec has no field \"http\""
        );
    }

    #[test]
    fn a_field_that_is_not_a_number_is_not_overwritten() {
        let err = patch(&[target("/spec/rules/0/backendRefs/0", 20)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "HTTPRoute/default/sample-app: /spec/rules/0/backendRefs/0 holds an object, not a weight"
        );
    }

    #[test]
    fn malformed_pointers_are_refused() {
        for bad in ["spec/x", "/spec/~2"] {
            let err = patch(&[target(bad, 1)]).unwrap_err();
            assert!(matches!(err, WeightError::InvalidPointer { .. }), "{err:?}");
        }
        let err = patch(&[target("/spec/rules/first/weight", 1)]).unwrap_err();
        assert!(err.to_string().contains("is not an index"), "{err}");
    }

    #[test]
    fn escaped_tokens_are_unescaped() {
        let doc = json!({"metadata": {"resourceVersion": "1", "annotations": {"a/b~c": 1}}});
        let t = target("/metadata/annotations/a~1b~0c", 2);
        let p = weight_patch(&doc, &[&t]).unwrap();
        assert_eq!(p[1]["op"], "replace");
    }

    #[test]
    fn two_weights_for_one_field_are_refused() {
        let err = patch(&[
            target("/spec/rules/0/backendRefs/0/weight", 80),
            target("/spec/rules/0/backendRefs/0/weight", 70),
        ])
        .unwrap_err();
        assert!(
            matches!(
                err,
                WeightError::ConflictingTargets {
                    first: 80,
                    second: 70,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn an_object_without_resource_version_is_refused() {
        let t = target("/spec/x", 1);
        let err = weight_patch(&json!({"spec": {}}), &[&t]).unwrap_err();
        assert!(
            matches!(err, WeightError::NoResourceVersion { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn targets_are_grouped_by_object() {
        let mut other = target("/spec/x", 1);
        other.object.name = "another".into();
        let targets = [target("/spec/a", 1), other, target("/spec/b", 2)];
        let groups = group(&targets);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[&route()].len(), 2);
    }

    #[test]
    fn current_weights_are_read() {
        let doc = current();
        assert_eq!(
            current_weight(&doc, &target("/spec/rules/0/backendRefs/0/weight", 0)).unwrap(),
            Some(100)
        );
        assert_eq!(
            current_weight(&doc, &target("/spec/rules/0/backendRefs/1/weight", 0)).unwrap(),
            None
        );
    }
}
