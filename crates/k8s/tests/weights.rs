//! Traffic weights, readiness and Job Events of a progressive rollout against a real
//! kube-apiserver (with etcd), RBAC enforced, with the real CustomResourceDefinitions of
//! Gateway API, Istio and Knative Serving installed.
//!
//! One control plane serves every scenario in this file, in sequence.

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Namespace};
use k8s_openapi::api::rbac::v1::PolicyRule;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use serde_json::{Value, json};
use slogate_k8s::events::{EventKind, JobEvents};
use slogate_k8s::readiness::{ReadinessCheck, ReadinessError, wait_ready};
use slogate_k8s::testing::{ControlPlane, crd_manifest, meta, tool};
use slogate_k8s::weights::{ObjectRef, WeightError, WeightTarget, WeightWriter, weight_patch};
use slogate_k8s::{AccessError, Backoff};

const NS: &str = "shop";

fn obj(api_version: &str, kind: &str, name: &str) -> ObjectRef {
    ObjectRef {
        api_version: api_version.to_owned(),
        kind: kind.to_owned(),
        namespace: NS.to_owned(),
        name: name.to_owned(),
    }
}

fn route(name: &str) -> ObjectRef {
    obj("gateway.networking.k8s.io/v1", "HTTPRoute", name)
}

fn virtual_service() -> ObjectRef {
    obj("networking.istio.io/v1", "VirtualService", "reviews")
}

fn knative_service() -> ObjectRef {
    obj("serving.knative.dev/v1", "Service", "hello")
}

/// The two weight targets of a split: `template` with `{}` for the entry's index.
fn split(object: &ObjectRef, template: &str, first: i64, second: i64) -> Vec<WeightTarget> {
    [first, second]
        .into_iter()
        .enumerate()
        .map(|(i, weight)| WeightTarget {
            object: object.clone(),
            pointer: template.replace("{}", &i.to_string()),
            weight,
        })
        .collect()
}

fn fast() -> Backoff {
    Backoff {
        attempts: 4,
        initial: Duration::from_millis(50),
        max: Duration::from_millis(200),
    }
}

/// The dynamic API of `object`'s kind, by discovery.
async fn api_of(client: &Client, object: &ObjectRef) -> Api<DynamicObject> {
    let (group, version) = object
        .api_version
        .split_once('/')
        .unwrap_or(("", &object.api_version));
    let gvk = GroupVersionKind::gvk(group, version, &object.kind);
    let (resource, _): (ApiResource, _) = kube::discovery::pinned_kind(client, &gvk)
        .await
        .unwrap_or_else(|e| panic!("discovery of {gvk:?}: {e}"));
    Api::namespaced_with(client.clone(), &object.namespace, &resource)
}

/// Creates the object described by `manifest` (JSON with apiVersion, kind, metadata.name).
async fn create(client: &Client, manifest: Value) -> ObjectRef {
    let s = |p: &str| {
        manifest
            .pointer(p)
            .and_then(Value::as_str)
            .unwrap()
            .to_owned()
    };
    let object = obj(&s("/apiVersion"), &s("/kind"), &s("/metadata/name"));
    let api = api_of(client, &object).await;
    let dynamic: DynamicObject = serde_json::from_value(manifest).unwrap();
    api.create(&PostParams::default(), &dynamic)
        .await
        .unwrap_or_else(|e| panic!("cannot create {object}: {e}"));
    object
}

/// The object as the API server has it now.
async fn get(client: &Client, object: &ObjectRef) -> Value {
    let api = api_of(client, object).await;
    serde_json::to_value(api.get(&object.name).await.unwrap()).unwrap()
}

/// A merge patch a person makes with kubectl.
async fn person_patches(client: &Client, object: &ObjectRef, patch: Value) {
    api_of(client, object)
        .await
        .patch(&object.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

fn at(value: &Value, pointer: &str) -> Value {
    value.pointer(pointer).cloned().unwrap_or(Value::Null)
}

#[tokio::test]
#[ignore = "needs kube-apiserver and the CRDs from scripts/setup.sh; run by make test"]
async fn rollout_weights_readiness_and_events_on_a_real_api_server() {
    let plane = ControlPlane::start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    plane
        .install_crds(&[
            crd_manifest("gateway-api-httproutes.yaml"),
            crd_manifest("istio.yaml"),
            crd_manifest("knative-serving-services.yaml"),
        ])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let admin = plane.client().await.unwrap();
    Api::<Namespace>::all(admin.clone())
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: meta(NS, None),
                ..Namespace::default()
            },
        )
        .await
        .unwrap();
    create_routing_objects(&admin).await;

    three_kinds_take_two_steps_of_weights(&admin).await;
    a_change_a_person_made_between_two_steps_is_kept(&admin).await;
    a_change_between_read_and_patch_is_retried(&admin).await;
    a_missing_backend_or_object_or_kind_is_named(&admin).await;
    a_role_limited_to_one_route_is_forbidden_on_another(&plane, &admin).await;
    readiness_waits_for_conditions_like_kubectl_wait(&admin).await;
    readiness_without_rights_is_forbidden(&plane).await;
    job_events_tell_the_story_in_kubectl_describe(&plane, &admin).await;
}

async fn create_routing_objects(admin: &Client) {
    create(
        admin,
        json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "sample-app", "namespace": NS},
            "spec": {
                "parentRefs": [{"name": "gateway"}],
                "rules": [{"backendRefs": [
                    {"name": "sample-app-stable", "port": 80, "weight": 100},
                    {"name": "sample-app-canary", "port": 80, "weight": 0}
                ]}]
            }
        }),
    )
    .await;
    create(
        admin,
        json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "other-app", "namespace": NS},
            "spec": {
                "parentRefs": [{"name": "gateway"}],
                "rules": [{"backendRefs": [
                    {"name": "other-app-stable", "port": 80, "weight": 100},
                    {"name": "other-app-canary", "port": 80, "weight": 0}
                ]}]
            }
        }),
    )
    .await;
    create(
        admin,
        json!({
            "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "reviews", "namespace": NS},
            "spec": {
                "hosts": ["reviews"],
                "http": [{"route": [
                    {"destination": {"host": "reviews", "subset": "v1"}, "weight": 100},
                    {"destination": {"host": "reviews", "subset": "v2"}, "weight": 0}
                ]}]
            }
        }),
    )
    .await;
    create(
        admin,
        json!({
            "apiVersion": "serving.knative.dev/v1", "kind": "Service",
            "metadata": {"name": "hello", "namespace": NS},
            "spec": {
                "template": {
                    "metadata": {"name": "hello-v2"},
                    "spec": {"containers": [{"image": "example.com/hello:v2"}]}
                },
                "traffic": [
                    {"revisionName": "hello-v1", "percent": 100},
                    {"revisionName": "hello-v2", "percent": 0}
                ]
            }
        }),
    )
    .await;
}

const ROUTE_WEIGHT: &str = "/spec/rules/0/backendRefs/{}/weight";
const ISTIO_WEIGHT: &str = "/spec/http/0/route/{}/weight";
const KNATIVE_PERCENT: &str = "/spec/traffic/{}/percent";

/// 80/20 then 60/40 on an HTTPRoute, a VirtualService and a Knative Service, in one write
/// each, read back on the objects as the API server holds them.
async fn three_kinds_take_two_steps_of_weights(admin: &Client) {
    let writer = WeightWriter::new(admin.clone()).with_backoff(fast());
    let kinds = [
        (route("sample-app"), ROUTE_WEIGHT),
        (virtual_service(), ISTIO_WEIGHT),
        (knative_service(), KNATIVE_PERCENT),
    ];
    for (first, second) in [(80, 20), (60, 40)] {
        let targets: Vec<WeightTarget> = kinds
            .iter()
            .flat_map(|(object, template)| split(object, template, first, second))
            .collect();
        writer
            .write(&targets)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        for (object, template) in &kinds {
            let now = get(admin, object).await;
            assert_eq!(
                (
                    at(&now, &template.replace("{}", "0")),
                    at(&now, &template.replace("{}", "1"))
                ),
                (json!(first), json!(second)),
                "{object} after the {first}/{second} step: {now}"
            );
        }
        let read = writer.read(&targets).await.unwrap();
        assert_eq!(
            read,
            [first, second]
                .repeat(3)
                .into_iter()
                .map(Some)
                .collect::<Vec<_>>()
        );
    }
    // The rest of each object is as it was created.
    let r = get(admin, &route("sample-app")).await;
    assert_eq!(
        at(&r, "/spec/rules/0/backendRefs/1/name"),
        json!("sample-app-canary")
    );
    let k = get(admin, &knative_service()).await;
    assert_eq!(at(&k, "/spec/traffic/1/revisionName"), json!("hello-v2"));
}

/// A label and a header match a person adds between two steps survive the next step.
async fn a_change_a_person_made_between_two_steps_is_kept(admin: &Client) {
    let writer = WeightWriter::new(admin.clone()).with_backoff(fast());
    let object = route("sample-app");
    writer
        .write(&split(&object, ROUTE_WEIGHT, 50, 50))
        .await
        .unwrap();
    person_patches(
        admin,
        &object,
        json!({
            "metadata": {"labels": {"team": "checkout"}},
            "spec": {"hostnames": ["shop.example.com"]}
        }),
    )
    .await;
    writer
        .write(&split(&object, ROUTE_WEIGHT, 30, 70))
        .await
        .unwrap();
    let now = get(admin, &object).await;
    assert_eq!(at(&now, "/metadata/labels/team"), json!("checkout"));
    assert_eq!(at(&now, "/spec/hostnames"), json!(["shop.example.com"]));
    assert_eq!(at(&now, "/spec/rules/0/backendRefs/0/weight"), json!(30));
    assert_eq!(at(&now, "/spec/rules/0/backendRefs/1/weight"), json!(70));
}

/// Someone writes the object after the writer read it: the API server refuses the stale
/// patch, the writer reads again and retries, and both changes are there in the end.
async fn a_change_between_read_and_patch_is_retried(admin: &Client) {
    let object = route("sample-app");

    // The patch itself: made from a read that is stale by the time it is sent, it is refused.
    let before = get(admin, &object).await;
    let targets = split(&object, ROUTE_WEIGHT, 10, 90);
    let refs: Vec<&WeightTarget> = targets.iter().collect();
    let stale = weight_patch(&before, &refs).unwrap();
    person_patches(
        admin,
        &object,
        json!({"metadata": {"annotations": {"bump": "1"}}}),
    )
    .await;
    let stale: json_patch::Patch = serde_json::from_value(stale).unwrap();
    let refused = api_of(admin, &object)
        .await
        .patch(
            &object.name,
            &PatchParams::default(),
            &Patch::Json::<()>(stale),
        )
        .await
        .unwrap_err();
    match &refused {
        kube::Error::Api(status) => {
            // A bare 422 naming no field: the `test` of the resourceVersion failed.
            assert_eq!(status.code, 422, "{status:?}");
            assert!(
                status.details.as_ref().is_none_or(|d| d.causes.is_empty()),
                "{status:?}"
            );
        }
        other => panic!("expected a refusal, got {other}"),
    }
    assert_eq!(
        at(
            &get(admin, &object).await,
            "/spec/rules/0/backendRefs/0/weight"
        ),
        json!(30),
        "the stale patch changed nothing"
    );

    // The writer: someone bumps the object between its first read and its patch.
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let hook_admin = admin.clone();
    let seen = attempts.clone();
    let writer = WeightWriter::new(admin.clone())
        .with_backoff(fast())
        .with_before_patch(Arc::new(move |object, attempt| {
            seen.lock().unwrap().push(attempt);
            let (admin, object) = (hook_admin.clone(), object.clone());
            Box::pin(async move {
                if attempt == 1 {
                    person_patches(
                        &admin,
                        &object,
                        json!({"metadata": {"annotations": {"bump": "2"}}}),
                    )
                    .await;
                }
            })
        }));
    writer
        .write(&targets)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        *attempts.lock().unwrap(),
        [1, 2],
        "one retry after the conflict"
    );
    let now = get(admin, &object).await;
    assert_eq!(at(&now, "/metadata/annotations/bump"), json!("2"));
    assert_eq!(at(&now, "/spec/rules/0/backendRefs/0/weight"), json!(10));
    assert_eq!(at(&now, "/spec/rules/0/backendRefs/1/weight"), json!(90));

    // Someone who writes it between every read and patch: the writer gives up, saying so.
    let hook_admin = admin.clone();
    let writer = WeightWriter::new(admin.clone())
        .with_backoff(Backoff {
            attempts: 3,
            ..fast()
        })
        .with_before_patch(Arc::new(move |object, attempt| {
            let (admin, object) = (hook_admin.clone(), object.clone());
            Box::pin(async move {
                person_patches(
                    &admin,
                    &object,
                    json!({"metadata": {"annotations": {"bump": format!("x{attempt}")}}}),
                )
                .await;
            })
        }));
    let err = writer
        .write(&split(&object, ROUTE_WEIGHT, 20, 80))
        .await
        .unwrap_err();
    assert!(
        matches!(err, WeightError::Conflict { attempts: 3, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("HTTPRoute/shop/sample-app"),
        "{err}"
    );
    let now = get(admin, &object).await;
    assert_eq!(at(&now, "/spec/rules/0/backendRefs/0/weight"), json!(10));
}

async fn a_missing_backend_or_object_or_kind_is_named(admin: &Client) {
    let writer = WeightWriter::new(admin.clone()).with_backoff(fast());
    let object = route("sample-app");
    let mut targets = split(&object, ROUTE_WEIGHT, 70, 30);
    targets.push(WeightTarget {
        object: object.clone(),
        pointer: "/spec/rules/0/backendRefs/2/weight".into(),
        weight: 0,
    });
    let err = writer.write(&targets).await.unwrap_err();
    assert!(matches!(err, WeightError::MissingPath { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "HTTPRoute/shop/sample-app has no /spec/rules/0/backendRefs/2/weight: \
         /spec/rules/0/backendRefs has 2 entries, so there is no entry 2"
    );
    assert_eq!(
        at(
            &get(admin, &object).await,
            "/spec/rules/0/backendRefs/0/weight"
        ),
        json!(10),
        "nothing was written"
    );

    let err = writer
        .write(&split(&route("no-such-route"), ROUTE_WEIGHT, 70, 30))
        .await
        .unwrap_err();
    assert!(matches!(err, WeightError::NotFound { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "HTTPRoute/shop/no-such-route does not exist"
    );

    let unknown = obj("split.smi-spec.io/v1alpha4", "TrafficSplit", "sample-app");
    let err = writer
        .write(&split(&unknown, "/spec/backends/{}/weight", 70, 30))
        .await
        .unwrap_err();
    assert!(
        matches!(err, WeightError::Access(AccessError::UnknownKind { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("TrafficSplit"), "{err}");

    // The HTTPRoute CRD's schema takes weights from 0 to 1000000. (Knative's CRD leaves
    // percents to its admission webhook, which does not run here.)
    let err = writer
        .write(&split(&object, ROUTE_WEIGHT, -1, 101))
        .await
        .unwrap_err();
    assert!(matches!(err, WeightError::Invalid { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("HTTPRoute/shop/sample-app: the API server refused the weights: "),
        "{err}"
    );
}

fn rule(group: &str, resource: &str, verbs: &[&str], names: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![group.to_owned()]),
        resources: Some(vec![resource.to_owned()]),
        resource_names: (!names.is_empty()).then(|| names.iter().map(|s| s.to_string()).collect()),
        verbs: verbs.iter().map(|s| s.to_string()).collect(),
        non_resource_urls: None,
    }
}

/// The chart's Role names the one route it may change: writing it works, another is refused
/// with the object and the missing rule named.
async fn a_role_limited_to_one_route_is_forbidden_on_another(plane: &ControlPlane, admin: &Client) {
    let group = "gateway.networking.k8s.io";
    let client = plane
        .service_account_client(
            NS,
            "rollout",
            vec![rule(
                group,
                "httproutes",
                &["get", "patch"],
                &["sample-app"],
            )],
        )
        .await
        .unwrap();
    let writer = WeightWriter::new(client).with_backoff(fast());
    writer
        .write(&split(&route("sample-app"), ROUTE_WEIGHT, 90, 10))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        at(
            &get(admin, &route("sample-app")).await,
            "/spec/rules/0/backendRefs/1/weight"
        ),
        json!(10)
    );

    let err = writer
        .write(&split(&route("other-app"), ROUTE_WEIGHT, 90, 10))
        .await
        .unwrap_err();
    match &err {
        WeightError::Access(AccessError::Forbidden {
            object,
            verb,
            resource,
            ..
        }) => {
            assert_eq!(object, &route("other-app"));
            assert_eq!(verb, "get");
            assert_eq!(resource, "httproutes.gateway.networking.k8s.io");
        }
        other => panic!("expected Forbidden, got {other:?}"),
    }
    assert!(
        err.to_string().starts_with(
            "forbidden: the Job's Role does not allow get on httproutes.gateway.networking.k8s.io other-app in shop"
        ),
        "{err}"
    );

    // Allowed to read but not to patch: the missing verb is patch.
    let client = plane
        .service_account_client(
            NS,
            "read-only",
            vec![rule(group, "httproutes", &["get"], &["sample-app"])],
        )
        .await
        .unwrap();
    let err = WeightWriter::new(client)
        .with_backoff(fast())
        .write(&split(&route("sample-app"), ROUTE_WEIGHT, 85, 15))
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with(
            "forbidden: the Job's Role does not allow patch on httproutes.gateway.networking.k8s.io sample-app in shop"
        ),
        "{err}"
    );
}

async fn readiness_waits_for_conditions_like_kubectl_wait(admin: &Client) {
    for name in ["sample-app-canary", "sample-app-stuck"] {
        create(
            admin,
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "namespace": NS},
                "spec": {
                    "selector": {"matchLabels": {"app": name}},
                    "template": {
                        "metadata": {"labels": {"app": name}},
                        "spec": {"containers": [{"name": "app", "image": "example.com/app:v2"}]}
                    }
                }
            }),
        )
        .await;
    }
    let canary = obj("apps/v1", "Deployment", "sample-app-canary");
    let stuck = obj("apps/v1", "Deployment", "sample-app-stuck");
    let now = jiff::Timestamp::now().to_string();
    let status = |available: &str, reason: &str, message: &str| {
        json!({"status": {"conditions": [
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
             "lastUpdateTime": now, "lastTransitionTime": now},
            {"type": "Available", "status": available, "reason": reason, "message": message,
             "lastUpdateTime": now, "lastTransitionTime": now}
        ]}})
    };
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(admin.clone(), NS);
    deployments
        .patch_status(
            "sample-app-stuck",
            &PatchParams::default(),
            &Patch::Merge(status(
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            )),
        )
        .await
        .unwrap();

    // The canary becomes Available two seconds into the wait.
    let patcher = deployments.clone();
    let ready_status = status(
        "True",
        "MinimumReplicasAvailable",
        "Deployment has minimum availability.",
    );
    let later = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        patcher
            .patch_status(
                "sample-app-canary",
                &PatchParams::default(),
                &Patch::Merge(ready_status),
            )
            .await
            .unwrap();
    });
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = lines.clone();
    let check = |object: &ObjectRef, condition: &str| ReadinessCheck {
        object: object.clone(),
        condition: condition.to_owned(),
    };
    let started = std::time::Instant::now();
    wait_ready(
        admin.clone(),
        &[check(&canary, "available")],
        Duration::from_secs(30),
        move |_, line| seen.lock().unwrap().push(line.to_owned()),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    later.await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(2));
    let lines = lines.lock().unwrap().clone();
    assert!(
        lines.first().is_some_and(
            |l| l.starts_with("Deployment/shop/sample-app-canary: no condition available yet")
        ),
        "{lines:?}"
    );

    // The stuck one and a missing one: a timeout naming both, with their last state.
    let missing = obj("apps/v1", "Deployment", "sample-app-never-created");
    let err = wait_ready(
        admin.clone(),
        &[
            check(&canary, "Available"),
            check(&stuck, "Available"),
            check(&missing, "Available"),
        ],
        Duration::from_secs(3),
        |_, _| {},
    )
    .await
    .unwrap_err();
    match &err {
        ReadinessError::Timeout { not_ready, waited } => {
            assert!(*waited >= Duration::from_secs(3));
            assert_eq!(
                not_ready,
                &[
                    (
                        stuck.clone(),
                        "condition Available is False: MinimumReplicasUnavailable: \
                         Deployment does not have minimum availability."
                            .to_owned()
                    ),
                    (missing.clone(), "not found".to_owned()),
                ]
            );
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(
        err.to_string().contains("Deployment/shop/sample-app-stuck"),
        "{err}"
    );

    // A custom object: the Knative Service's Ready condition.
    let knative = knative_service();
    let services = api_of(admin, &knative).await;
    let generation = at(&get(admin, &knative).await, "/metadata/generation");
    let ready = json!({"status": {"observedGeneration": generation, "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": now}
    ]}});
    let err = wait_ready(
        admin.clone(),
        &[check(&knative, "Ready")],
        Duration::from_secs(1),
        |_, _| {},
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("Service/shop/hello (no condition Ready yet"),
        "{err}"
    );
    services
        .patch_status("hello", &PatchParams::default(), &Patch::Merge(&ready))
        .await
        .unwrap();
    wait_ready(
        admin.clone(),
        &[check(&knative, "Ready")],
        Duration::from_secs(10),
        |_, _| {},
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

async fn readiness_without_rights_is_forbidden(plane: &ControlPlane) {
    let client = plane
        .service_account_client(
            NS,
            "watcher",
            vec![rule(
                "apps",
                "deployments",
                &["get"],
                &["sample-app-canary"],
            )],
        )
        .await
        .unwrap();
    let check = |name: &str| ReadinessCheck {
        object: obj("apps/v1", "Deployment", name),
        condition: "Available".to_owned(),
    };
    wait_ready(
        client.clone(),
        &[check("sample-app-canary")],
        Duration::from_secs(5),
        |_, _| {},
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let err = wait_ready(
        client,
        &[check("sample-app-stuck")],
        Duration::from_secs(5),
        |_, _| {},
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, ReadinessError::Access(AccessError::Forbidden { .. })),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with(
            "forbidden: the Job's Role does not allow get on deployments.apps sample-app-stuck in shop"
        ),
        "{err}"
    );
}

/// Events written with the Role the module doc asks for show up in `kubectl describe job`;
/// without it, emitting them does not fail the run.
async fn job_events_tell_the_story_in_kubectl_describe(plane: &ControlPlane, admin: &Client) {
    let jobs: Api<Job> = Api::namespaced(admin.clone(), NS);
    let job: Job = serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "rollout-42", "namespace": NS},
        "spec": {"template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "slogate", "image": "slogate:dev"}]}}}
    }))
    .unwrap();
    jobs.create(&PostParams::default(), &job).await.unwrap();
    let client = plane
        .service_account_client(
            NS,
            "rollout-42",
            vec![
                rule("batch", "jobs", &["get"], &["rollout-42"]),
                rule("events.k8s.io", "events", &["create"], &[]),
            ],
        )
        .await
        .unwrap();
    let events = JobEvents::for_job(client, NS, "rollout-42").await.unwrap();
    events
        .emit(
            EventKind::Normal,
            "WeightsSet",
            "sample-app: stable 80%, canary 20%",
        )
        .await;
    events
        .emit(
            EventKind::Normal,
            "WeightsSet",
            "sample-app: stable 60%, canary 40%",
        )
        .await;
    events
        .emit(
            EventKind::Warning,
            "SloFailed",
            "p95 latency 230ms is over the 100ms limit",
        )
        .await;

    let listed = Api::<Event>::namespaced(admin.clone(), NS)
        .list(&ListParams::default().fields("involvedObject.name=rollout-42"))
        .await
        .unwrap();
    let mut seen: Vec<(String, String, String)> = listed
        .items
        .iter()
        .map(|e| {
            (
                e.type_.clone().unwrap_or_default(),
                e.reason.clone().unwrap_or_default(),
                e.message.clone().unwrap_or_default(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("Normal", "WeightsSet", "sample-app: stable 60%, canary 40%"),
            ("Normal", "WeightsSet", "sample-app: stable 80%, canary 20%"),
            (
                "Warning",
                "SloFailed",
                "p95 latency 230ms is over the 100ms limit"
            ),
        ]
        .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()))
    );
    assert!(listed.items.iter().all(|e| {
        e.reporting_component.as_deref() == Some("slogate") && e.involved_object.uid.is_some()
    }));

    if let Ok(kubectl) = tool("kubectl") {
        let out = Command::new(kubectl)
            .args(["describe", "job", "rollout-42", "-n", NS])
            .env("KUBECONFIG", plane.admin_kubeconfig())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for line in [
            "sample-app: stable 80%, canary 20%",
            "sample-app: stable 60%, canary 40%",
            "p95 latency 230ms is over the 100ms limit",
        ] {
            assert!(
                text.contains(line),
                "kubectl describe job shows {line:?}:\n{text}"
            );
        }
    }

    // Without the right to create Events: emitting logs a warning and returns.
    let client = plane
        .service_account_client(
            NS,
            "no-events",
            vec![rule("batch", "jobs", &["get"], &["rollout-42"])],
        )
        .await
        .unwrap();
    let events = JobEvents::for_job(client, NS, "rollout-42").await.unwrap();
    events
        .emit(EventKind::Normal, "WeightsSet", "not recorded")
        .await;
    let listed = Api::<Event>::namespaced(admin.clone(), NS)
        .list(&ListParams::default().fields("involvedObject.name=rollout-42"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 3);
}
