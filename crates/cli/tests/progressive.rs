//! The progressive canary on a real API server (etcd + kube-apiserver, RBAC enforced) with
//! the real Gateway API HTTPRoute CRD: `slogate run` loads a baseline and a candidate on
//! loopback, judges each iteration, and writes both weights into the HTTPRoute after each.
//! A good candidate climbs 0 → 20 → 40 → 60 → 75 and stays at 75; one that turns bad at the
//! third iteration is rolled back to 0 and the baseline wins; a readiness object that never
//! gets ready sends no load; a weight object the Role does not cover is a clear 403.

use std::process::{Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::PolicyRule;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use serde_json::{Value, json};
use slogate_hello::{Behavior, HelloServer};
use slogate_k8s::testing::{ControlPlane, crd_manifest};

const NS: &str = "shop";

fn slogate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_slogate"))
}

fn routes(client: &kube::Client) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute");
    Api::namespaced_with(client.clone(), NS, &ApiResource::from_gvk(&gvk))
}

/// A cluster with the HTTPRoute CRD, namespace `shop` and route `name` sending all traffic
/// to the baseline.
async fn cluster_with_route(name: &str) -> (ControlPlane, kube::Client) {
    let plane = ControlPlane::start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    plane
        .install_crds(&[crd_manifest("gateway-api-httproutes.yaml")])
        .await
        .unwrap();
    plane.create_namespace(NS).await.unwrap();
    let admin = plane.client().await.unwrap();
    create_route(&admin, name).await;
    (plane, admin)
}

async fn create_route(admin: &kube::Client, name: &str) {
    let route: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "hostnames": ["shop.example"],
            "rules": [{"backendRefs": [
                {"name": "app-v1", "port": 8080, "weight": 100},
                {"name": "app-v2", "port": 8080, "weight": 0}
            ]}]
        }
    }))
    .unwrap();
    routes(admin)
        .create(&PostParams::default(), &route)
        .await
        .unwrap();
}

/// (baseline, candidate) weights of the route.
async fn weights(admin: &kube::Client, name: &str) -> (i64, i64) {
    let route = routes(admin).get(name).await.unwrap();
    let refs = &route.data["spec"]["rules"][0]["backendRefs"];
    (
        refs[0]["weight"].as_i64().unwrap(),
        refs[1]["weight"].as_i64().unwrap(),
    )
}

fn spec(baseline: &str, candidate: &str, route: &str, iterations: u32, extra: &str) -> String {
    let r = |i: u32| {
        format!(
            "{{apiVersion: gateway.networking.k8s.io/v1, kind: HTTPRoute, name: {route}, fieldPath: '.spec.rules[0].backendRefs[{i}].weight'}}"
        )
    };
    format!(
        "name: progressive
namespace: {NS}
versions:
  - {{name: current, role: baseline, url: '{baseline}', weightObjRef: {}}}
  - {{name: candidate, url: '{candidate}', weightObjRef: {}}}
strategy:
  testingPattern: Canary
  deploymentPattern: Progressive
  weights: {{maxCandidateWeight: 75, maxCandidateWeightIncrement: 20}}
duration: {{intervalSeconds: 1, iterationsPerLoop: {iterations}}}
load: {{connections: 4, qps: 400}}
slos:
  - {{metric: http/latency-p95, upperLimit: 100}}
  - {{metric: http/error-rate, upperLimit: 0.05}}
{extra}",
        r(0),
        r(1)
    )
}

/// Runs `slogate run` on `spec` with `kubeconfig`, watching the route's candidate weight
/// while it runs: (exit status, stderr, result document, candidate weights seen in order).
async fn run_watching(
    plane: &ControlPlane,
    admin: &kube::Client,
    spec: &str,
    kubeconfig: &std::path::Path,
    route: &str,
    env: &[(&str, &str)],
    term_after: Option<Duration>,
) -> (std::process::ExitStatus, String, Value, Vec<i64>) {
    let dir = plane.dir();
    let spec_file = dir.join(format!("{route}-spec.yaml"));
    let result_file = dir.join(format!("{route}-result.json"));
    std::fs::write(&spec_file, spec).unwrap();
    let mut child = tokio::process::Command::from({
        let mut c = slogate();
        c.args(["run", "--spec"])
            .arg(&spec_file)
            .arg("--result-file")
            .arg(&result_file)
            .env("KUBECONFIG", kubeconfig)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("SLOGATE_JOB_NAME")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            c.env(k, v);
        }
        c
    })
    .spawn()
    .unwrap();
    let stderr = child.stderr.take().unwrap();
    let reader = tokio::spawn(async move {
        let mut text = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut tokio::io::BufReader::new(stderr), &mut text)
            .await
            .unwrap();
        text
    });
    let mut seen: Vec<i64> = Vec::new();
    let started = std::time::Instant::now();
    let mut termed = false;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if let Some(after) = term_after
            && !termed
            && started.elapsed() >= after
        {
            let pid = child.id().unwrap().to_string();
            Command::new("kill").args(["-TERM", &pid]).status().unwrap();
            termed = true;
        }
        let (_, candidate) = weights(admin, route).await;
        if seen.last() != Some(&candidate) {
            seen.push(candidate);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let stderr = reader.await.unwrap();
    let (_, candidate) = weights(admin, route).await;
    if seen.last() != Some(&candidate) {
        seen.push(candidate);
    }
    let result = std::fs::read_to_string(&result_file)
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap_or(Value::Null);
    (status, stderr, result, seen)
}

/// [`run_watching`] as the cluster admin on route `shop`, with the Events about Job `job`
/// when one is named.
async fn run_on_shop(
    plane: &ControlPlane,
    admin: &kube::Client,
    spec: &str,
    job: Option<&str>,
    term_after: Option<Duration>,
) -> (std::process::ExitStatus, String, Value, Vec<i64>) {
    let env: Vec<(&str, &str)> = job.map(|j| ("SLOGATE_JOB_NAME", j)).into_iter().collect();
    run_watching(
        plane,
        admin,
        spec,
        plane.admin_kubeconfig(),
        "shop",
        &env,
        term_after,
    )
    .await
}

fn iteration_weights(result: &Value) -> Vec<u64> {
    result["iterations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["weights"]["candidate"].as_u64().unwrap())
        .collect()
}

/// The Events the run left on Job `job`.
async fn events_of(admin: &kube::Client, job: &str) -> Vec<(String, String)> {
    let events: Api<Event> = Api::namespaced(admin.clone(), NS);
    let mut list: Vec<Event> = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| {
            e.regarding
                .as_ref()
                .is_some_and(|r| r.name.as_deref() == Some(job))
        })
        .collect();
    list.sort_by_key(|e| e.event_time.clone().map(|t| t.0));
    list.into_iter()
        .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
        .collect()
}

/// A Job object for the Events to be about (no controller runs it here).
async fn create_job(admin: &kube::Client, name: &str) {
    let job: Job = serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "slogate", "image": "slogate:test"}]}}}
    }))
    .unwrap();
    Api::<Job>::namespaced(admin.clone(), NS)
        .create(&PostParams::default(), &job)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs kube-apiserver, etcd and the Gateway API CRDs; run by make test"]
async fn a_good_candidate_climbs_to_the_maximum_weight_and_stays() {
    let (plane, admin) = cluster_with_route("shop").await;
    let baseline = HelloServer::start(Behavior::new()).await.unwrap();
    let candidate = HelloServer::start(Behavior::new()).await.unwrap();
    create_job(&admin, "progressive-1").await;

    // A person edits another field of the same route while the loop runs.
    let editor = admin.clone();
    let edit = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        routes(&editor)
            .patch(
                "shop",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"hostnames": ["shop.example", "www.shop.example"]}})),
            )
            .await
            .unwrap();
    });
    let text = spec(&baseline.url(), &candidate.url(), "shop", 5, "");
    let (status, stderr, result, seen) =
        run_on_shop(&plane, &admin, &text, Some("progressive-1"), None).await;
    edit.await.unwrap();
    assert!(status.success(), "{stderr}");
    assert_eq!(
        seen,
        [0, 20, 40, 60, 75],
        "weights seen on the route\n{stderr}"
    );
    assert_eq!(iteration_weights(&result), [20, 40, 60, 75, 75], "{stderr}");
    assert_eq!(weights(&admin, "shop").await, (25, 75));
    assert_eq!(result["verdict"]["pass"], true, "{result}");
    assert_eq!(result["winner"]["name"], "candidate");
    assert_eq!(result["strategy"]["looksMethod"], "bonferroni");
    assert!((result["strategy"]["perLookConfidence"].as_f64().unwrap() - 0.99).abs() < 1e-9);
    let route = routes(&admin).get("shop").await.unwrap();
    assert_eq!(
        route.data["spec"]["hostnames"],
        json!(["shop.example", "www.shop.example"]),
        "the person's change was lost"
    );
    assert!(stderr.contains("iteration 3/5: pass"), "{stderr}");

    let events = events_of(&admin, "progressive-1").await;
    let changes: Vec<&String> = events
        .iter()
        .filter(|(r, _)| r == "WeightsChanged")
        .map(|(_, n)| n)
        .collect();
    assert_eq!(changes.len(), 5, "{events:?}");
    assert!(changes[1].contains("candidate 20%") && changes[1].contains("current 80%"));
    assert!(events.iter().any(|(r, _)| r == "Started"), "{events:?}");
    assert!(events.iter().any(|(r, _)| r == "Passed"), "{events:?}");

    // describe tells the same story.
    let dir = plane.dir();
    let out = slogate()
        .args(["describe", "--file"])
        .arg(dir.join("shop-result.json"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Progressive, 5 iterations of 1 s"), "{text}");
    assert!(
        text.contains("3/5") && text.contains("candidate 60%"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs kube-apiserver, etcd and the Gateway API CRDs; run by make test"]
async fn a_candidate_that_turns_bad_is_rolled_back_and_the_baseline_wins() {
    let (plane, admin) = cluster_with_route("shop").await;
    create_job(&admin, "progressive-2").await;
    let baseline = HelloServer::start(Behavior::new()).await.unwrap();
    // 200 requests per iteration per version: from the third iteration on every answer is 500.
    let candidate = HelloServer::start(Behavior::new().fail_after(400, 500))
        .await
        .unwrap();
    let text = spec(&baseline.url(), &candidate.url(), "shop", 5, "");
    let (status, stderr, result, seen) =
        run_on_shop(&plane, &admin, &text, Some("progressive-2"), None).await;
    assert!(status.success(), "{stderr}");
    assert_eq!(seen, [0, 20, 40, 0], "weights seen on the route\n{stderr}");
    assert_eq!(iteration_weights(&result), [20, 40, 0], "{stderr}");
    assert_eq!(weights(&admin, "shop").await, (100, 0));
    let last = &result["iterations"][2];
    assert_eq!(last["rollback"], true);
    assert_eq!(last["verdict"], "fail");
    assert_eq!(result["verdict"]["pass"], false);
    assert!(
        result["verdict"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("Rolled back at iteration 3"),
        "{result}"
    );
    assert_eq!(result["winner"]["name"], "current");
    let events = events_of(&admin, "progressive-2").await;
    assert!(
        events
            .iter()
            .any(|(r, n)| r == "RolledBack" && n.contains("iteration 3")),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs kube-apiserver, etcd and the Gateway API CRDs; run by make test"]
async fn a_target_that_never_gets_ready_fails_and_gets_no_load() {
    let (plane, admin) = cluster_with_route("shop").await;
    let baseline = HelloServer::start(Behavior::new()).await.unwrap();
    let candidate = HelloServer::start(Behavior::new()).await.unwrap();
    let readiness = "readiness:
  timeout: 2s
  objects:
    - {apiVersion: apps/v1, kind: Deployment, name: app-v2}
";
    let text = spec(&baseline.url(), &candidate.url(), "shop", 3, readiness);
    let (status, stderr, result, seen) = run_on_shop(&plane, &admin, &text, None, None).await;
    assert!(!status.success(), "{stderr}");
    assert_eq!(result["stage"], "Failed");
    let failure = result["failure"].as_str().unwrap();
    assert!(
        failure.contains("not ready") && failure.contains("app-v2"),
        "{failure}"
    );
    assert_eq!(baseline.requests_served() + candidate.requests_served(), 0);
    assert_eq!(seen, [0], "no weight may move before readiness");
    assert!(result.get("iterations").is_none(), "{result}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs kube-apiserver, etcd and the Gateway API CRDs; run by make test"]
async fn a_weight_object_the_role_does_not_cover_is_a_clear_403() {
    let (plane, admin) = cluster_with_route("shop").await;
    create_route(&admin, "other").await;
    // The chart's rule: get and patch on exactly the named route.
    let rule = PolicyRule {
        api_groups: Some(vec!["gateway.networking.k8s.io".into()]),
        resources: Some(vec!["httproutes".into()]),
        resource_names: Some(vec!["shop".into()]),
        verbs: vec!["get".into(), "patch".into()],
        ..PolicyRule::default()
    };
    let kubeconfig = plane
        .service_account_kubeconfig(NS, "runner", vec![rule])
        .await
        .unwrap();

    let baseline = HelloServer::start(Behavior::new()).await.unwrap();
    let candidate = HelloServer::start(Behavior::new()).await.unwrap();
    let text = spec(&baseline.url(), &candidate.url(), "other", 3, "");
    let (status, stderr, result, _) =
        run_watching(&plane, &admin, &text, &kubeconfig, "other", &[], None).await;
    assert!(!status.success(), "{stderr}");
    let failure = result["failure"].as_str().unwrap_or_default();
    assert!(
        failure.contains("other") && (failure.contains("patch") || failure.contains("get")),
        "the failure must name the object and the verb: {failure}\n{stderr}"
    );
    assert!(
        failure.contains("403")
            || failure.to_lowercase().contains("forbidden")
            || failure.contains("does not allow"),
        "{failure}"
    );
    assert_eq!(weights(&admin, "other").await, (100, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs kube-apiserver, etcd and the Gateway API CRDs; run by make test"]
async fn sigterm_in_the_middle_of_the_loop_sends_all_traffic_back_to_the_baseline() {
    let (plane, admin) = cluster_with_route("shop").await;
    let baseline = HelloServer::start(Behavior::new()).await.unwrap();
    let candidate = HelloServer::start(Behavior::new()).await.unwrap();
    let text = spec(&baseline.url(), &candidate.url(), "shop", 10, "");
    let (status, stderr, result, seen) = run_on_shop(
        &plane,
        &admin,
        &text,
        None,
        Some(Duration::from_millis(3500)),
    )
    .await;
    assert!(!status.success(), "{stderr}");
    assert!(
        seen.iter().any(|&w| w > 0),
        "the candidate never got traffic: {seen:?}"
    );
    assert_eq!(seen.last(), Some(&0), "{seen:?}\n{stderr}");
    assert_eq!(weights(&admin, "shop").await, (100, 0));
    assert_eq!(result["stage"], "Failed");
    assert_eq!(result["failure"], "Interrupted: SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs kube-apiserver, etcd and the Gateway API CRDs; run by make test"]
async fn load_starts_only_once_the_candidate_deployment_is_available() {
    use k8s_openapi::api::apps::v1::Deployment;
    let (plane, admin) = cluster_with_route("shop").await;
    let deployment: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "app-v2", "namespace": NS},
        "spec": {
            "selector": {"matchLabels": {"app": "app-v2"}},
            "template": {
                "metadata": {"labels": {"app": "app-v2"}},
                "spec": {"containers": [{"name": "app", "image": "example.com/app:v2"}]}
            }
        }
    }))
    .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), NS);
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let baseline = HelloServer::start(Behavior::new()).await.unwrap();
    let candidate = HelloServer::start(Behavior::new()).await.unwrap();

    // No controller runs here: the Deployment turns Available when its status says so, 2 s in.
    let result_file = plane.dir().join("shop-result.json");
    let watcher = {
        let deployments = deployments.clone();
        let result_file = result_file.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let waiting = std::fs::read_to_string(&result_file).unwrap_or_default();
            let now = jiff::Timestamp::now().to_string();
            deployments
                .patch_status(
                    "app-v2",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": {"conditions": [
                        {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                         "lastUpdateTime": now, "lastTransitionTime": now}
                    ]}})),
                )
                .await
                .unwrap();
            waiting
        })
    };
    let readiness = "readiness:
  timeout: 30s
  objects:
    - {apiVersion: apps/v1, kind: Deployment, name: app-v2}
";
    let text = spec(&baseline.url(), &candidate.url(), "shop", 2, readiness);
    let (status, stderr, result, seen) = run_on_shop(&plane, &admin, &text, None, None).await;
    let waiting = watcher.await.unwrap();
    assert!(status.success(), "{stderr}");
    let waiting: Value = serde_json::from_str(&waiting).expect("a document while waiting");
    assert_eq!(waiting["stage"], "Waiting", "{waiting}");
    assert_eq!(waiting["progress"]["requestsDone"], 0);
    assert_eq!(result["stage"], "Completed", "{result}");
    assert_eq!(seen, [0, 20, 40], "{stderr}");
    assert!(baseline.requests_served() > 0 && candidate.requests_served() > 0);
}
