//! Load from several pods, without a node: the chart installed with `parallelism=3` on a real
//! control plane (etcd + kube-apiserver, RBAC and Pod Security enforced), then the Indexed
//! Job's container command run on the host once per completion index, as the Job's service
//! account, the way its pods would run it (see `common::sandbox`), against one hello service
//! on loopback.
//!
//! Index 0 merges the others' partial ConfigMaps: the result's request count is the sum of
//! the partials, its percentiles those of one histogram fed every pod's samples; a pod that
//! never runs is the stated failure "2 of 3 load pods reported", and nothing is promoted.

mod common;
#[path = "../../github/tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::process::Output;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::Api;
use slogate_core::measure::{Measurement, new_latency_histogram};
use slogate_core::parallel::PodReport;
use slogate_hello::{Behavior, HelloServer};
use slogate_k8s::testing::{ControlPlane, chart_dir};
use support::GitHubDouble;

use common::sandbox::{PodSandbox, staging_with_token};
use common::text;

const TOKEN: &str = "ghp_LoadPodsLeakCanary0a1b2c3d4e5f6a7b8c9d0e1f2";

/// A control plane with namespace `staging`, the token Secret, and the chart installed as
/// release `release` with `sets`; returns the admin client and the Job.
async fn install(plane: &ControlPlane, release: &str, sets: &[String]) -> (kube::Client, Job) {
    let admin = plane.client().await.unwrap();
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    if namespaces.get_opt("staging").await.unwrap().is_none() {
        staging_with_token(&admin, TOKEN).await;
    }
    let chart = chart_dir();
    let mut args: Vec<&str> = vec![
        "upgrade",
        "--install",
        "-n",
        "staging",
        release,
        chart.to_str().unwrap(),
    ];
    for set in sets {
        args.extend(["--set", set.as_str()]);
    }
    plane
        .helm(&args)
        .unwrap_or_else(|e| panic!("helm upgrade --install failed: {e}"));
    let jobs: Api<Job> = Api::namespaced(admin.clone(), "staging");
    let job = jobs.get(&format!("{release}-1")).await.unwrap();
    (admin, job)
}

/// Runs the container command of every index in `indices` at once, each as its pod would.
async fn run_indices(
    plane: &ControlPlane,
    admin: &kube::Client,
    job: &Job,
    indices: &[u32],
) -> BTreeMap<u32, Output> {
    let scratch = tempfile::tempdir().unwrap();
    let mut children = Vec::new();
    for &index in indices {
        let root = scratch.path().join(format!("pod-{index}"));
        let pod = PodSandbox::prepare_index(plane, admin, job, &root, index).await;
        assert_eq!(pod.env["JOB_COMPLETION_INDEX"], index.to_string());
        let child = pod
            .command(&[])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        children.push((index, child));
    }
    let mut outputs = BTreeMap::new();
    for (index, child) in children {
        let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
            .await
            .unwrap();
        outputs.insert(index, out);
    }
    drop(scratch);
    outputs
}

fn stderr_of(outputs: &BTreeMap<u32, Output>) -> String {
    outputs
        .iter()
        .map(|(i, o)| {
            format!(
                "--- index {i} (exit {:?}):\n{}",
                o.status.code(),
                text(&o.stderr)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

async fn result_of(admin: &kube::Client, name: &str) -> serde_json::Value {
    let configmaps: Api<ConfigMap> = Api::namespaced(admin.clone(), "staging");
    let cm = configmaps.get(name).await.unwrap();
    serde_json::from_str(&cm.data.unwrap()["result.json"]).unwrap()
}

async fn partial_of(admin: &kube::Client, job: &str, index: u32) -> (ConfigMap, PodReport) {
    let configmaps: Api<ConfigMap> = Api::namespaced(admin.clone(), "staging");
    let cm = configmaps
        .get(&format!("{job}-partial-{index}"))
        .await
        .unwrap();
    let report = serde_json::from_str(&cm.data.as_ref().unwrap()["partial.json"]).unwrap();
    (cm, report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs kube-apiserver, etcd and helm; run by make test"]
async fn three_load_pods_merge_into_one_result_equal_to_one_histogram_of_every_sample() {
    let plane = ControlPlane::start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let hello = HelloServer::start(Behavior::stable()).await.unwrap();
    let sets: Vec<String> = [
        format!("URL={}", hello.url()),
        "numQueries=301".into(),
        "connections=6".into(),
        "parallelism=3".into(),
        "parallelismReportTimeout=30s".into(),
        "limitMeanLatency=1000".into(),
        "limit95thPercentileLatency=1000".into(),
        "limitErrorRate=0.0".into(),
    ]
    .to_vec();
    let (admin, job) = install(&plane, "my-exp", &sets).await;
    let served_before = hello.requests_served();
    let outputs = run_indices(&plane, &admin, &job, &[0, 1, 2]).await;
    let log = stderr_of(&outputs);
    for (index, out) in &outputs {
        assert_eq!(out.status.code(), Some(0), "index {index} failed:\n{log}");
    }
    assert!(
        hello.requests_served() - served_before >= 301,
        "the load reached the service"
    );

    let doc = result_of(&admin, "my-exp").await;
    assert_eq!(doc["stage"], "Completed", "{doc:#}\n{log}");
    assert_eq!(doc["verdict"]["pass"], true, "{doc:#}");

    // Each pod's partial: owned by the Job, labelled with its index, holding its evidence.
    let mut reference = new_latency_histogram();
    let mut sum = 0;
    let mut shares = Vec::new();
    for index in 0..3 {
        let (cm, report) = partial_of(&admin, "my-exp-1", index).await;
        let owner = &cm.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(Some(&owner.uid), job.metadata.uid.as_ref());
        assert_eq!(
            cm.metadata.labels.as_ref().unwrap()["slogate.dev/index"],
            index.to_string()
        );
        assert_eq!(
            report.state,
            slogate_core::parallel::PodState::Done,
            "{report:?}"
        );
        let measured: Measurement = report.measurements().unwrap().remove(0).1;
        sum += measured.requests;
        shares.push(measured.requests);
        // One histogram fed every sample of every pod, one by one.
        for v in measured.latency.iter_recorded() {
            for _ in 0..v.count_at_value() {
                reference.record(v.value_iterated_to()).unwrap();
            }
        }
    }
    assert_eq!(shares, [101, 100, 100], "numQueries 301 shared exactly");
    assert_eq!(doc["progress"]["requestsDone"], sum);
    let metrics = &doc["versions"][0]["metrics"];
    assert_eq!(metrics["http/request-count"], sum as f64);
    for (name, q) in [
        ("http/latency-p50", 0.5),
        ("http/latency-p95", 0.95),
        ("http/latency-p99", 0.99),
    ] {
        assert_eq!(
            metrics[name].as_f64().unwrap(),
            reference.value_at_quantile(q) as f64 / 1000.0,
            "{name} of the merged result against one histogram of every sample"
        );
    }

    // A row per pod, and describe shows them.
    let pods = doc["loadPods"].as_array().unwrap();
    assert_eq!(pods.len(), 3, "{doc:#}");
    for (i, pod) in pods.iter().enumerate() {
        assert_eq!(pod["index"], i);
        assert_eq!(pod["state"], "done");
        assert_eq!(pod["requests"], shares[i]);
        assert!(pod["achievedRate"].as_f64().unwrap() > 0.0);
        assert_eq!(pod["pod"], format!("my-exp-1-{i}-h0st{i}"));
    }
    let mut describe = std::process::Command::new(env!("CARGO_BIN_EXE_slogate"));
    describe
        .args(["describe", "-n", "staging", "my-exp"])
        .env_clear()
        .env("KUBECONFIG", plane.admin_kubeconfig());
    let described = tokio::task::spawn_blocking(move || describe.output().unwrap())
        .await
        .unwrap();
    let report = text(&described.stdout);
    assert!(report.contains("3 of 3 load pods reported"), "{report}");
    assert!(report.contains("my-exp-1-2-h0st2"), "{report}");
    println!("{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs kube-apiserver, etcd and helm; run by make test"]
async fn a_load_pod_that_never_reports_fails_the_experiment_and_nothing_is_promoted() {
    let plane = ControlPlane::start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let hello = HelloServer::start(Behavior::stable()).await.unwrap();
    let github = GitHubDouble::start("me", "app", TOKEN).await;
    let sets: Vec<String> = [
        format!("URL={}", hello.url()),
        format!("host={}", github.url),
        "numQueries=90".into(),
        "parallelism=3".into(),
        "parallelismReportTimeout=3s".into(),
        "limitErrorRate=0.0".into(),
        "owner=me".into(),
        "repo=app".into(),
        "base=master".into(),
        "head=staging".into(),
    ]
    .to_vec();
    let (admin, job) = install(&plane, "short", &sets).await;
    // Index 2's pod never starts (failed, evicted, never scheduled).
    let outputs = run_indices(&plane, &admin, &job, &[0, 1]).await;
    let log = stderr_of(&outputs);
    assert_eq!(
        outputs[&1].status.code(),
        Some(0),
        "index 1 published:\n{log}"
    );
    assert_eq!(
        outputs[&0].status.code(),
        Some(2),
        "the experiment failed:\n{log}"
    );

    let doc = result_of(&admin, "short").await;
    assert_eq!(doc["stage"], "Failed", "{doc:#}");
    let failure = doc["failure"].as_str().unwrap();
    assert!(
        failure.starts_with("2 of 3 load pods reported (index 2: not ready within 3s"),
        "{failure}"
    );
    assert!(
        doc.get("verdict").is_none(),
        "no verdict on part of the load"
    );
    assert!(doc.get("promotion").is_none(), "{doc:#}");
    assert!(github.state().prs.is_empty(), "nothing promoted");
    let pods = doc["loadPods"].as_array().unwrap();
    let states: Vec<&str> = pods.iter().map(|p| p["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["done", "done", "missing"]);
    // Index 1 sent its share (30 of 90 requests), and it is in its partial, not counted twice.
    let (_, one) = partial_of(&admin, "short-1", 1).await;
    assert_eq!(one.measurements().unwrap()[0].1.requests, 30);
    assert_eq!(pods[1]["requests"], 30);

    // Configured to judge what arrived: the same missing pod, a verdict that says so, and
    // index 0 alone promotes.
    let mut lenient = sets.clone();
    lenient.push("parallelismOnMissing=judgeWhatArrived".into());
    let (_, job) = install(&plane, "lenient", &lenient).await;
    let outputs = run_indices(&plane, &admin, &job, &[0, 1]).await;
    let log = stderr_of(&outputs);
    for (index, out) in &outputs {
        assert_eq!(out.status.code(), Some(0), "index {index}:\n{log}");
    }
    let doc = result_of(&admin, "lenient").await;
    assert_eq!(doc["stage"], "Completed", "{doc:#}");
    assert_eq!(doc["progress"]["requestsDone"], 60, "two shares of 30");
    let reason = doc["verdict"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("(judged on 2 of 3 load pods (index 2: not ready within 3s"),
        "{reason}"
    );
    assert_eq!(doc["loadPods"][2]["state"], "missing");
    assert_eq!(doc["promotion"]["outcome"], "opened", "{doc:#}");
    assert_eq!(
        github.state().prs.len(),
        1,
        "one pull request, from index 0"
    );
    github.assert_conforming();
}
