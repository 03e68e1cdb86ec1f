//! The result ConfigMap writer and reader against a real kube-apiserver (with etcd), RBAC
//! enforced: what the runner in the Job and `slogate describe` see.
//!
//! One control plane serves every scenario in this file, in sequence.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::api::rbac::v1::PolicyRule;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, PostParams};
use slogate_core::result::{API_VERSION, ExperimentResult, KIND, OverallVerdict, Progress, Stage};
use slogate_k8s::testing::{ControlPlane, TUTORIAL_SETS, meta, restricted_namespace};
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
            versions: Default::default(),
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
        updated_at: None,
        publish_interval_seconds: None,
        judgement: None,
        testing_pattern: None,
        winner: None,
        strategy: None,
        iterations: Vec::new(),
        load_pods: Vec::new(),
        actions: Vec::new(),
    }
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
    plane.create_namespace("staging").await.unwrap();

    writer_creates_then_updates_an_owned_configmap(&admin).await;
    missing_namespace_is_named(&admin).await;
    missing_result_is_reported_as_such(&admin).await;
    service_account_without_rights_is_forbidden(&plane).await;
    apply_of_a_new_configmap_needs_create(&plane).await;
    a_result_tells_what_became_of_its_job(&admin).await;
}

/// `describe` of a result that never finishes looks at the Job owning it: alive, failed
/// (here: its deadline) or deleted.
async fn a_result_tells_what_became_of_its_job(admin: &Client) {
    use kube::api::{DeleteParams, Patch, PatchParams};
    use slogate_k8s::{JobState, read_result_and_job};
    let jobs: Api<Job> = Api::namespaced(admin.clone(), "staging");
    let job: Job = serde_json::from_value(serde_json::json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "my-exp-9", "namespace": "staging"},
        "spec": {"template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "slogate", "image": "slogate:dev"}]}}}
    }))
    .unwrap();
    let job = jobs.create(&PostParams::default(), &job).await.unwrap();
    let owner = job_owner("my-exp-9", job.metadata.uid.as_deref().unwrap());
    ResultWriter::new(admin.clone(), "staging", "killed", Some(owner))
        .write(&result(Stage::Running))
        .await
        .unwrap();
    let (_, found) = read_result_and_job(admin.clone(), "staging", "killed")
        .await
        .unwrap();
    let found = found.expect("the owner Job is read");
    assert_eq!(
        (found.name.as_str(), &found.state),
        ("my-exp-9", &JobState::Active)
    );

    // What the Job controller writes when activeDeadlineSeconds passes.
    let now = jiff::Timestamp::now().to_string();
    let failed = serde_json::json!({"status": {
    "startTime": now,
    "conditions": [
        {"type": "FailureTarget", "status": "True", "reason": "DeadlineExceeded",
         "message": "Job was active longer than specified deadline", "lastTransitionTime": now},
        {"type": "Failed", "status": "True", "reason": "DeadlineExceeded",
         "message": "Job was active longer than specified deadline", "lastTransitionTime": now}
    ]}});
    jobs.patch_status("my-exp-9", &PatchParams::default(), &Patch::Merge(&failed))
        .await
        .unwrap();
    let (_, found) = read_result_and_job(admin.clone(), "staging", "killed")
        .await
        .unwrap();
    assert_eq!(
        found.unwrap().state,
        JobState::Failed(
            "DeadlineExceeded: Job was active longer than specified deadline".to_owned()
        )
    );

    // No garbage collector runs here, so the ConfigMap outlives its Job.
    jobs.delete("my-exp-9", &DeleteParams::background())
        .await
        .unwrap();
    let (result, found) = read_result_and_job(admin.clone(), "staging", "killed")
        .await
        .unwrap();
    assert_eq!(result.stage, Stage::Running);
    assert_eq!(found.unwrap().state, JobState::Gone);
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

async fn service_account_without_rights_is_forbidden(plane: &ControlPlane) {
    let reader_only = plane
        .service_account_client(
            "staging",
            "reader",
            vec![configmap_rule(&["get"], Some(&["my-exp"]))],
        )
        .await
        .unwrap();
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
async fn apply_of_a_new_configmap_needs_create(plane: &ControlPlane) {
    plane.create_namespace("rbac").await.unwrap();
    let patch_only = plane
        .service_account_client(
            "rbac",
            "patch-only",
            vec![configmap_rule(&["get", "patch"], Some(&["fresh"]))],
        )
        .await
        .unwrap();
    let writer = ResultWriter::new(patch_only, "rbac", "fresh", None);
    let err = writer.write(&result(Stage::Running)).await.unwrap_err();
    let Error::Forbidden { verb, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(verb, "create", "{err}");

    // With the chart's rule (create, get and patch, all limited to the result's name) the
    // first apply creates it and the next one updates it; any other name is refused.
    let chart_rules = plane
        .service_account_client(
            "rbac",
            "chart-rules",
            vec![configmap_rule(
                &["create", "get", "patch"],
                Some(&["fresh"]),
            )],
        )
        .await
        .unwrap();
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

/// The tutorial's `helm upgrade --install` on a real API server, in a namespace that enforces
/// the `restricted` Pod Security Standard, with the Job controller creating the Pod.
#[tokio::test]
#[ignore = "needs kube-apiserver, kube-controller-manager and helm; run by make test"]
async fn chart_installs_into_a_restricted_namespace() {
    use k8s_openapi::api::core::v1::{Pod, Secret};
    use kube::api::{ListParams, Patch, PatchParams};

    let mut plane = ControlPlane::start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    plane
        .start_controller_manager()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let admin = plane.client().await.unwrap();
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    namespaces
        .create(&PostParams::default(), &restricted_namespace("staging"))
        .await
        .unwrap();
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), "staging");
    for (name, value) in [("ghtoken", "ghp_example"), ("other", "not yours")] {
        let secret = Secret {
            metadata: meta(name, Some("staging")),
            string_data: Some(BTreeMap::from([("token".to_owned(), value.to_owned())])),
            ..Secret::default()
        };
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
    }

    let chart = slogate_k8s::testing::chart_dir();
    let install = |url: &str| {
        let url = format!("URL={url}");
        let mut args = vec![
            "upgrade",
            "--install",
            "-n",
            "staging",
            "my-exp",
            chart.to_str().unwrap(),
            "--set",
            &url,
            "--set",
            "numQueries=200",
        ];
        args.extend_from_slice(TUTORIAL_SETS);
        plane.helm(&args)
    };
    let notes =
        install("http://127.0.0.1:8080").unwrap_or_else(|e| panic!("helm install failed: {e}"));
    assert!(
        notes.contains("slogate describe -n staging my-exp"),
        "NOTES tell how to describe:\n{notes}"
    );
    assert!(
        notes.contains("kubectl get job -n staging my-exp-1"),
        "{notes}"
    );

    // The Job as the API server stored it.
    let jobs: Api<Job> = Api::namespaced(admin.clone(), "staging");
    let job = jobs.get("my-exp-1").await.unwrap();
    let job_spec = job.spec.as_ref().unwrap();
    assert_eq!(job_spec.backoff_limit, Some(0));
    let template = job_spec.template.clone();

    // The Job controller made its Pod, and Pod Security admission let it in.
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "staging");
    let selector = ListParams::default().labels("batch.kubernetes.io/job-name=my-exp-1");
    let mut pod = None;
    for _ in 0..100 {
        if let Some(p) = pods.list(&selector).await.unwrap().items.into_iter().next() {
            pod = Some(p);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let pod = pod.unwrap_or_else(|| panic!("the Job controller made no Pod within 20 s"));
    let pod_spec = pod.spec.as_ref().unwrap();
    assert_eq!(pod_spec.service_account_name.as_deref(), Some("my-exp"));
    let labels = pod.metadata.labels.clone().unwrap();
    assert_eq!(
        labels.get("batch.kubernetes.io/controller-uid"),
        job.metadata.uid.as_ref(),
        "the downward API label the runner reads its owner from"
    );

    // Pod Security is enforced: the chart's template passes, a weakened one does not.
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let as_pod = |spec| Pod {
        metadata: ObjectMeta {
            generate_name: Some("admission-check-".to_owned()),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        ..Pod::default()
    };
    pods.create(&dry_run, &as_pod(template.spec.clone().unwrap()))
        .await
        .unwrap();
    let mut weakened = template.spec.clone().unwrap();
    let sc = weakened.containers[0].security_context.as_mut().unwrap();
    sc.allow_privilege_escalation = Some(true);
    sc.read_only_root_filesystem = None;
    let refused = pods.create(&dry_run, &as_pod(weakened)).await.unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("violates PodSecurity \"restricted:latest\""),
        "{refused}"
    );

    // The Job's service account reads its token Secret and nothing else.
    let token = plane
        .service_account_token("staging", "my-exp")
        .await
        .unwrap();
    let path = plane.dir().join("job.kubeconfig");
    plane.write_kubeconfig(&path, &token, "staging").unwrap();
    let job_client = Connection::infer(Some(&path)).await.unwrap().client;
    let job_secrets: Api<Secret> = Api::namespaced(job_client.clone(), "staging");
    job_secrets.get("ghtoken").await.unwrap();
    for denied in [
        job_secrets.get("other").await.map(drop),
        job_secrets.list(&ListParams::default()).await.map(drop),
    ] {
        let err = denied.unwrap_err();
        assert!(
            matches!(&err, kube::Error::Api(s) if s.code == 403),
            "{err}"
        );
    }
    let job_configmaps: Api<ConfigMap> = Api::namespaced(job_client, "staging");
    let err = job_configmaps.get("my-exp-spec").await.unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 403),
        "only the result ConfigMap: {err}"
    );

    // Play the kubelet: report the Pod finished, and the Job controller completes the Job.
    let name = pod.metadata.name.clone().unwrap();
    let status = serde_json::json!({"status": {"phase": "Succeeded", "containerStatuses": [{
        "name": "slogate", "image": "slogate", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"terminated": {"exitCode": 0, "reason": "Completed",
            "startedAt": "2026-01-01T00:00:00Z", "finishedAt": "2026-01-01T00:00:05Z"}}}]}});
    pods.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    let mut complete = false;
    for _ in 0..100 {
        let job = jobs.get("my-exp-1").await.unwrap();
        let conditions = job.status.and_then(|s| s.conditions).unwrap_or_default();
        if conditions
            .iter()
            .any(|c| c.type_ == "Complete" && c.status == "True")
        {
            complete = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(complete, "the Job controller marked the Job Complete");

    // A second upgrade starts a fresh Job; Helm removes the old one.
    install("http://127.0.0.1:8081").unwrap_or_else(|e| panic!("helm upgrade failed: {e}"));
    let second = jobs.get("my-exp-2").await.unwrap();
    assert!(second.metadata.uid != job.metadata.uid);
    let names: Vec<String> = jobs
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|j| j.metadata.name)
        .filter(|n| n == "my-exp-1")
        .collect();
    assert!(
        names.is_empty()
            || jobs
                .get("my-exp-1")
                .await
                .unwrap()
                .metadata
                .deletion_timestamp
                .is_some()
    );
}

/// `parallelism=3` on a real API server with the Job controller: an Indexed Job whose three
/// pods, one per completion index, Pod Security `restricted` admits, and whose service
/// account reaches exactly its partial ConfigMaps.
#[tokio::test]
#[ignore = "needs kube-apiserver, kube-controller-manager and helm; run by make test"]
async fn an_indexed_job_of_three_load_pods_passes_restricted_pod_security() {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::ListParams;

    let mut plane = ControlPlane::start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    plane
        .start_controller_manager()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let admin = plane.client().await.unwrap();
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    namespaces
        .create(&PostParams::default(), &restricted_namespace("staging"))
        .await
        .unwrap();
    let chart = slogate_k8s::testing::chart_dir();
    plane
        .helm(&[
            "upgrade",
            "--install",
            "-n",
            "staging",
            "my-exp",
            chart.to_str().unwrap(),
            "--set",
            "URL=http://127.0.0.1:8080",
            "--set",
            "numQueries=300",
            "--set",
            "parallelism=3",
        ])
        .unwrap_or_else(|e| panic!("helm install failed: {e}"));
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "staging");
    let selector = ListParams::default().labels("batch.kubernetes.io/job-name=my-exp-1");
    let mut indices = Vec::new();
    for _ in 0..100 {
        indices = pods
            .list(&selector)
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|p| {
                p.metadata
                    .annotations?
                    .get("batch.kubernetes.io/job-completion-index")
                    .cloned()
            })
            .collect();
        if indices.len() == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    indices.sort();
    assert_eq!(
        indices,
        ["0", "1", "2"],
        "the Job controller made one admitted pod per index, annotated with it"
    );

    // The Job's service account may read and write its partials, and no other ConfigMap.
    let token = plane
        .service_account_token("staging", "my-exp")
        .await
        .unwrap();
    let path = plane.dir().join("job.kubeconfig");
    plane.write_kubeconfig(&path, &token, "staging").unwrap();
    let job_client = Connection::infer(Some(&path)).await.unwrap().client;
    let store =
        slogate_k8s::partials::PartialStore::new(job_client.clone(), "staging", "my-exp-1", None);
    let report = slogate_core::parallel::PodReport::ready(2, "my-exp-1-2-x", None);
    store.write(&report).await.unwrap();
    assert_eq!(store.read(2).await.unwrap(), Some(report));
    assert_eq!(store.read(1).await.unwrap(), None, "not written yet");
    let beyond = slogate_k8s::partials::PartialStore::new(job_client, "staging", "my-exp-1", None);
    let err = beyond
        .write(&slogate_core::parallel::PodReport::ready(3, "x", None))
        .await
        .unwrap_err();
    assert!(
        matches!(err, slogate_k8s::Error::Forbidden { .. }),
        "index 3 is not one of the Job's partials: {err}"
    );
}
