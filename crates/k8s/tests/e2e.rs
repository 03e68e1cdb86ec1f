//! The result ConfigMap writer and reader against a real kube-apiserver (with etcd), RBAC
//! enforced: what the runner in the Job and `slogate describe` see.
//!
//! One control plane serves every scenario in this file, in sequence.

use std::collections::BTreeMap;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, PostParams};
use slogate_core::result::{API_VERSION, ExperimentResult, KIND, OverallVerdict, Progress, Stage};
use slogate_k8s::testing::ControlPlane;
use slogate_k8s::{Connection, Error, ResultWriter, job_owner, read_result};

fn result(stage: Stage) -> ExperimentResult {
    ExperimentResult {
        api_version: API_VERSION.to_owned(),
        kind: KIND.to_owned(),
        name: "my-exp".to_owned(),
        namespace: Some("staging".to_owned()),
        start_time: jiff::Timestamp::now(),
        end_time: (stage != Stage::Running).then(jiff::Timestamp::now),
        stage,
        progress: Progress {
            requests_done: 10,
            requests_planned: Some(10),
            elapsed_seconds: 0.5,
            duration_planned_seconds: None,
        },
        failure: None,
        confidence: 0.95,
        versions: Vec::new(),
        slos: Vec::new(),
        verdict: (stage == Stage::Completed).then(|| OverallVerdict {
            pass: true,
            reason: "every SLO is satisfied".to_owned(),
        }),
        promotion: None,
    }
}

fn meta(name: &str, namespace: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: namespace.map(str::to_owned),
        ..ObjectMeta::default()
    }
}

async fn create_namespace(admin: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(admin.clone());
    api.create(
        &PostParams::default(),
        &Namespace {
            metadata: meta(name, None),
            ..Namespace::default()
        },
    )
    .await
    .unwrap();
}

/// A service account bound to a Role with `rules`, and a client holding its token.
async fn service_account_client(
    plane: &ControlPlane,
    admin: &Client,
    ns: &str,
    name: &str,
    rules: Vec<PolicyRule>,
) -> Client {
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), ns);
    sas.create(
        &PostParams::default(),
        &ServiceAccount {
            metadata: meta(name, Some(ns)),
            ..ServiceAccount::default()
        },
    )
    .await
    .unwrap();
    let roles: Api<Role> = Api::namespaced(admin.clone(), ns);
    roles
        .create(
            &PostParams::default(),
            &Role {
                metadata: meta(name, Some(ns)),
                rules: Some(rules),
            },
        )
        .await
        .unwrap();
    let bindings: Api<RoleBinding> = Api::namespaced(admin.clone(), ns);
    let binding = RoleBinding {
        metadata: meta(name, Some(ns)),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_owned(),
            kind: "Role".to_owned(),
            name: name.to_owned(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_owned(),
            name: name.to_owned(),
            namespace: Some(ns.to_owned()),
            api_group: None,
        }]),
    };
    bindings
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: Vec::new(),
            expiration_seconds: Some(600),
            bound_object_ref: None,
        },
        ..TokenRequest::default()
    };
    let token = sas
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .unwrap()
        .status
        .unwrap()
        .token;
    let path = plane.dir().join(format!("{ns}-{name}.kubeconfig"));
    plane.write_kubeconfig(&path, &token, ns).unwrap();
    Connection::infer(Some(&path)).await.unwrap().client
}

fn configmap_rule(verbs: &[&str], names: Option<&[&str]>) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![String::new()]),
        resources: Some(vec!["configmaps".to_owned()]),
        resource_names: names.map(|n| n.iter().map(|s| s.to_string()).collect()),
        verbs: verbs.iter().map(|s| s.to_string()).collect(),
        non_resource_urls: None,
    }
}

#[tokio::test]
#[ignore = "needs kube-apiserver; run by make test"]
async fn result_configmap_on_a_real_api_server() {
    let plane = ControlPlane::start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let admin = plane.client().await.unwrap();
    create_namespace(&admin, "staging").await;

    writer_creates_then_updates_an_owned_configmap(&admin).await;
    missing_namespace_is_named(&admin).await;
    missing_result_is_reported_as_such(&admin).await;
    service_account_without_rights_is_forbidden(&plane, &admin).await;
    apply_of_a_new_configmap_needs_create(&plane, &admin).await;
}

async fn writer_creates_then_updates_an_owned_configmap(admin: &Client) {
    // The Job the result belongs to; with no controller running it just sits there.
    let jobs: Api<Job> = Api::namespaced(admin.clone(), "staging");
    let job: Job = serde_json::from_value(serde_json::json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "my-exp-1", "namespace": "staging"},
        "spec": {"template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "slogate", "image": "slogate:dev"}]}}}
    }))
    .unwrap();
    let job = jobs.create(&PostParams::default(), &job).await.unwrap();
    let owner = job_owner("my-exp-1", job.metadata.uid.as_deref().unwrap());

    let writer = ResultWriter::new(admin.clone(), "staging", "my-exp", Some(owner));
    writer.write(&result(Stage::Running)).await.unwrap();
    let running = read_result(admin.clone(), "staging", "my-exp")
        .await
        .unwrap();
    assert_eq!(running.stage, Stage::Running);

    let done = result(Stage::Completed);
    let cm = writer.write(&done).await.unwrap();
    assert_eq!(
        read_result(admin.clone(), "staging", "my-exp")
            .await
            .unwrap(),
        done
    );

    let labels = cm.metadata.labels.clone().unwrap_or_default();
    let expected = BTreeMap::from([
        ("app.kubernetes.io/managed-by", "slogate"),
        ("slogate.dev/stage", "Completed"),
        ("slogate.dev/verdict", "pass"),
    ]);
    for (k, v) in expected {
        assert_eq!(labels.get(k).map(String::as_str), Some(v), "label {k}");
    }
    let owners = cm.metadata.owner_references.unwrap();
    assert_eq!(
        (owners[0].kind.as_str(), owners[0].uid.as_str()),
        ("Job", job.metadata.uid.as_deref().unwrap())
    );
    let managers: Vec<_> = cm
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert_eq!(managers, ["slogate"], "one field manager owns the object");
}

async fn missing_namespace_is_named(admin: &Client) {
    let writer = ResultWriter::new(admin.clone(), "no-such-ns", "my-exp", None);
    let err = writer.write(&result(Stage::Running)).await.unwrap_err();
    assert!(matches!(err, Error::NamespaceNotFound { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "namespace no-such-ns does not exist (while trying to patch ConfigMap my-exp)"
    );
}

async fn missing_result_is_reported_as_such(admin: &Client) {
    let err = read_result(admin.clone(), "staging", "never-ran")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("ConfigMap never-ran does not exist"),
        "{err}"
    );

    let cms: Api<ConfigMap> = Api::namespaced(admin.clone(), "staging");
    cms.create(
        &PostParams::default(),
        &ConfigMap {
            metadata: meta("plain", Some("staging")),
            ..ConfigMap::default()
        },
    )
    .await
    .unwrap();
    let err = read_result(admin.clone(), "staging", "plain")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::MissingKey { .. }), "{err:?}");
}

async fn service_account_without_rights_is_forbidden(plane: &ControlPlane, admin: &Client) {
    let reader_only = service_account_client(
        plane,
        admin,
        "staging",
        "reader",
        vec![configmap_rule(&["get"], Some(&["my-exp"]))],
    )
    .await;
    // Reading is allowed, writing is not.
    read_result(reader_only.clone(), "staging", "my-exp")
        .await
        .unwrap();
    let err = ResultWriter::new(reader_only.clone(), "staging", "my-exp", None)
        .write(&result(Stage::Running))
        .await
        .unwrap_err();
    let Error::Forbidden {
        verb, namespace, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!((verb.as_str(), namespace.as_str()), ("patch", "staging"));
    assert!(
        err.to_string()
            .starts_with("forbidden: may not patch ConfigMap my-exp in namespace staging"),
        "{err}"
    );
    let err = read_result(reader_only, "staging", "other")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Forbidden { .. }), "{err:?}");
}

/// Server-side apply is a PATCH, but when the object does not exist yet the API server also
/// asks RBAC for `create`: the chart's Role has to grant it.
async fn apply_of_a_new_configmap_needs_create(plane: &ControlPlane, admin: &Client) {
    create_namespace(admin, "rbac").await;
    let patch_only = service_account_client(
        plane,
        admin,
        "rbac",
        "patch-only",
        vec![configmap_rule(&["get", "patch"], Some(&["fresh"]))],
    )
    .await;
    let writer = ResultWriter::new(patch_only, "rbac", "fresh", None);
    let err = writer.write(&result(Stage::Running)).await.unwrap_err();
    let Error::Forbidden { verb, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(verb, "create", "{err}");

    // With the chart's rule (create, get and patch, all limited to the result's name) the
    // first apply creates it and the next one updates it; any other name is refused.
    let chart_rules = service_account_client(
        plane,
        admin,
        "rbac",
        "chart-rules",
        vec![configmap_rule(
            &["create", "get", "patch"],
            Some(&["fresh"]),
        )],
    )
    .await;
    let writer = ResultWriter::new(chart_rules.clone(), "rbac", "fresh", None);
    writer.write(&result(Stage::Running)).await.unwrap();
    writer.write(&result(Stage::Completed)).await.unwrap();
    assert_eq!(
        read_result(chart_rules.clone(), "rbac", "fresh")
            .await
            .unwrap()
            .stage,
        Stage::Completed
    );
    let err = ResultWriter::new(chart_rules.clone(), "rbac", "someone-elses", None)
        .write(&result(Stage::Running))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Forbidden { .. }),
        "only the named ConfigMap may be written: {err:?}"
    );
    let cms: Api<ConfigMap> = Api::namespaced(chart_rules, "rbac");
    let plain_create = cms
        .create(
            &PostParams::default(),
            &ConfigMap {
                metadata: meta("fresh", Some("rbac")),
                ..ConfigMap::default()
            },
        )
        .await;
    assert!(
        matches!(&plain_create, Err(kube::Error::Api(s)) if s.is_forbidden()),
        "a plain POST cannot be limited by name, so it is refused: {plain_create:?}"
    );
}
