//! The fast tier of the slo-pr Job test, no pod: the Job's container command run on the host
//! against a real control plane (etcd + kube-apiserver, RBAC and Pod Security enforced): the
//! tutorial's `helm upgrade --install` with the real helm, then the Job's container command run
//! the way its pod would run it, as the Job's service account,
//! against the hello service on loopback and the GitHub double. Then `slogate describe` and
//! `slogate assert` read the result ConfigMap back from the cluster.
//!
//! There is no kubelet, so this test plays its part: it materialises the Pod's volumes (the
//! spec ConfigMap, the token Secret) as files under a scratch root, resolves the downward-API
//! environment, and gives the process a token for the Job's service account from the
//! TokenRequest API. `tutorial_in_pods.rs` runs the same Job as a real pod on a real node.

mod common;
#[path = "../../github/tests/support/mod.rs"]
mod support;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::sandbox::{PodSandbox, staging_with_token};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use slogate_hello::{Behavior, HelloServer};
use slogate_k8s::testing::{ControlPlane, TUTORIAL_SETS, chart_dir};
use support::GitHubDouble;

const TOKEN: &str = "ghp_ClusterLeakCanary0a1b2c3d4e5f6a7b8c9d0e1";

/// The CLI run on the developer's side, as the cluster admin.
async fn slogate(plane: &ControlPlane, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_slogate"));
    cmd.args(args)
        .env_clear()
        .env("KUBECONFIG", plane.admin_kubeconfig());
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs kube-apiserver, etcd and helm; run by make test"]
async fn job_command_on_the_host_writes_its_result_configmap_and_opens_the_pr() {
    let plane = ControlPlane::start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let admin = plane.client().await.unwrap();
    let hello = HelloServer::start(Behavior::stable()).await.unwrap();
    let github = GitHubDouble::start("me", "app", TOKEN).await;

    staging_with_token(&admin, TOKEN).await;

    // The tutorial's command, pointed at loopback servers.
    let chart = chart_dir();
    let install = |extra: &[&str]| {
        let url = format!("URL={}", hello.url());
        let host = format!("host={}", github.url);
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
            "--set",
            &host,
        ];
        args.extend_from_slice(TUTORIAL_SETS);
        args.extend_from_slice(extra);
        plane
            .helm(&args)
            .unwrap_or_else(|e| panic!("helm upgrade --install failed: {e}"))
    };
    install(&[]);
    let jobs: Api<Job> = Api::namespaced(admin.clone(), "staging");
    let job = jobs.get("my-exp-1").await.unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let pod = PodSandbox::prepare(&plane, &admin, &job, &scratch.path().join("pod-1")).await;
    assert_eq!(pod.args[..2], ["run", "--spec"]);

    let served_before = hello.requests_served();
    let mut cmd = pod.command(&[]);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the Job's container failed:\n{stderr}"
    );
    assert!(
        hello.requests_served() - served_before >= 200,
        "the load reached the service"
    );

    // The result ConfigMap, as the cluster holds it.
    let configmaps: Api<ConfigMap> = Api::namespaced(admin.clone(), "staging");
    let cm = configmaps.get("my-exp").await.unwrap();
    let doc: serde_json::Value =
        serde_json::from_str(&cm.data.as_ref().unwrap()["result.json"]).unwrap();
    assert_eq!(doc["stage"], "Completed", "{doc:#}");
    assert_eq!(doc["progress"]["requestsDone"], 200);
    assert_eq!(doc["verdict"]["pass"], true, "{doc:#}");
    assert_eq!(doc["slos"].as_array().unwrap().len(), 3);
    assert_eq!(doc["promotion"]["outcome"], "opened", "{doc:#}");
    let owner = &cm.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Job", "my-exp-1")
    );
    assert_eq!(
        Some(&owner.uid),
        job.metadata.uid.as_ref(),
        "owned by the Job"
    );
    let labels = cm.metadata.labels.clone().unwrap();
    assert_eq!(labels["app.kubernetes.io/managed-by"], "slogate");
    assert_eq!(labels["slogate.dev/stage"], "Completed");
    assert_eq!(labels["slogate.dev/verdict"], "pass");
    let size = cm.data.as_ref().unwrap()["result.json"].len();
    assert!(
        size < 64 * 1024,
        "the document stays far below the 1 MiB limit: {size} bytes"
    );
    assert!(!cm.data.as_ref().unwrap()["result.json"].contains(TOKEN));
    assert!(
        !stderr.contains(TOKEN) && !text(&out.stdout).contains(TOKEN),
        "the token never shows"
    );
    {
        let state = github.state();
        assert_eq!(
            state.prs.len(),
            1,
            "one pull request, from the mounted token"
        );
        assert_eq!(
            (state.prs[0].head.as_str(), state.prs[0].base.as_str()),
            ("staging", "master")
        );
    }
    github.assert_conforming();

    // The developer's side: describe and assert read the ConfigMap from the cluster.
    let described = slogate(&plane, &["describe", "-n", "staging", "my-exp"]).await;
    let report = text(&described.stdout);
    assert_eq!(
        described.status.code(),
        Some(0),
        "{}",
        text(&described.stderr)
    );
    for expected in [
        "my-exp",
        "http/latency-mean",
        "http/latency-p95",
        "http/error-rate",
    ] {
        assert!(
            report.contains(expected),
            "describe shows {expected}:\n{report}"
        );
    }
    println!("slogate describe -n staging my-exp:\n{report}");
    let asserted = slogate(
        &plane,
        &[
            "assert",
            "-n",
            "staging",
            "my-exp",
            "-c",
            "completed",
            "-c",
            "nofailure",
            "-c",
            "slos",
        ],
    )
    .await;
    assert_eq!(
        asserted.status.code(),
        Some(0),
        "{}",
        text(&asserted.stderr)
    );
    let missing = slogate(&plane, &["describe", "-n", "staging", "nothing-here"]).await;
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        text(&missing.stderr).contains("ConfigMap nothing-here does not exist"),
        "{}",
        text(&missing.stderr)
    );

    // The Job's service account may write only its own result: another name is refused
    // before any load is sent, naming the verb and the namespace.
    let served_before = hello.requests_served();
    let mut cmd = pod.command(&["--configmap", "someone-elses"]);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("forbidden: may not patch ConfigMap someone-elses in namespace staging"),
        "{stderr}"
    );
    assert_eq!(
        hello.requests_served(),
        served_before,
        "no load without a place for the result"
    );

    // A second upgrade starts a fresh Job; SIGTERM, Kubernetes' way to stop its pod, ends the
    // run with a final Failed document owned by that new Job.
    install(&[
        "--set",
        "numQueries=null",
        "--set",
        "duration=60s",
        "--set",
        "QPS=50",
    ]);
    let job2 = jobs.get("my-exp-2").await.unwrap();
    assert_ne!(job2.metadata.uid, job.metadata.uid);
    let pod2 = PodSandbox::prepare(&plane, &admin, &job2, &scratch.path().join("pod-2")).await;
    let mut child = pod2
        .command(&[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut running = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let cm = configmaps.get("my-exp").await.unwrap();
        let owner_uid = cm
            .metadata
            .owner_references
            .as_ref()
            .map(|o| o[0].uid.clone());
        if owner_uid == job2.metadata.uid
            && cm.metadata.labels.as_ref().unwrap()["slogate.dev/stage"] == "Running"
        {
            running = true;
            break;
        }
    }
    assert!(running, "the new run published Running within 10 s");
    // While load is sent, the document is republished with progress at least every 10 s.
    let mut progressed = None;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let data = configmaps.get("my-exp").await.unwrap().data.unwrap();
        let doc: serde_json::Value = serde_json::from_str(&data["result.json"]).unwrap();
        if doc["progress"]["requestsDone"].as_u64().unwrap_or(0) > 0 {
            progressed = Some(doc);
            break;
        }
    }
    let progressed = progressed.expect("progress reached the ConfigMap within 15 s");
    assert_eq!(progressed["stage"], "Running", "{progressed:#}");
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = tokio::task::spawn_blocking(move || {
        let status = child.wait().unwrap();
        let mut err = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
        (status, err)
    })
    .await
    .unwrap();
    assert_eq!(out.0.code(), Some(2), "{}", out.1);
    let doc: serde_json::Value =
        serde_json::from_str(&configmaps.get("my-exp").await.unwrap().data.unwrap()["result.json"])
            .unwrap();
    assert_eq!(doc["stage"], "Failed", "{doc:#}");
    assert_eq!(doc["failure"], "Interrupted: SIGTERM", "{doc:#}");
    let asserted = slogate(
        &plane,
        &["assert", "-n", "staging", "my-exp", "-c", "completed"],
    )
    .await;
    assert_eq!(
        asserted.status.code(),
        Some(1),
        "{}",
        text(&asserted.stderr)
    );
}

/// Installs the slo-pr chart as `my-exp` with a finish action that runs the real helm as the
/// Job's service account (its kubeconfig at `kubeconfig`), upgrading `sample-app` to the
/// candidate's values; `extra` are more `--set` flags.
fn install_with_helm_action(
    plane: &ControlPlane,
    hello: &HelloServer,
    kubeconfig: &std::path::Path,
    extra: &[&str],
) {
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../samples/charts/sample-app")
        .canonicalize()
        .unwrap();
    let helm = slogate_k8s::testing::tool("helm").unwrap();
    let home = plane.dir().join("job-helm");
    let actions = serde_json::json!([{
        "if": "always",
        "exec": {
            "cmd": helm,
            "args": ["upgrade", "--install", "sample-app", sample,
                     format!("--values={}/candidate-values.yaml", sample.display()),
                     "--namespace", "{{namespace}}", "--kubeconfig", kubeconfig],
            "timeout": "2m",
            "env": {
                "HELM_CACHE_HOME": home.join("cache"),
                "HELM_CONFIG_HOME": home.join("config"),
                "HELM_DATA_HOME": home.join("data"),
            },
        },
    }]);
    let chart = chart_dir();
    let url = format!("URL={}", hello.url());
    let actions = format!("actions={actions}");
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
        "numQueries=100",
        "--set-json",
        &actions,
    ];
    args.extend_from_slice(extra);
    plane
        .helm(&args)
        .unwrap_or_else(|e| panic!("helm upgrade --install failed: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs kube-apiserver, etcd and helm; run by make test"]
async fn a_helm_finish_action_runs_as_the_jobs_service_account_with_the_roles_rights_only() {
    let plane = ControlPlane::start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let admin = plane.client().await.unwrap();
    let hello = HelloServer::start(Behavior::stable()).await.unwrap();
    staging_with_token(&admin, TOKEN).await;
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../samples/charts/sample-app")
        .canonicalize()
        .unwrap();
    plane
        .helm(&[
            "install",
            "sample-app",
            sample.to_str().unwrap(),
            "-n",
            "staging",
            &format!("--values={}/baseline-values.yaml", sample.display()),
        ])
        .unwrap();
    let kubeconfig = plane.dir().join("job-sa.kubeconfig");
    let configmaps: Api<ConfigMap> = Api::namespaced(admin.clone(), "staging");
    let jobs: Api<Job> = Api::namespaced(admin.clone(), "staging");
    let scratch = tempfile::tempdir().unwrap();
    let run_job = async |name: &str| {
        // The helm command runs with the Job's service account's token, as it would in the pod.
        let token = plane
            .service_account_token("staging", "my-exp")
            .await
            .unwrap();
        plane
            .write_kubeconfig(&kubeconfig, &token, "staging")
            .unwrap();
        let job = jobs.get(name).await.unwrap();
        let pod = PodSandbox::prepare(&plane, &admin, &job, &scratch.path().join(name)).await;
        let mut cmd = pod.command(&[]);
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let cm = configmaps.get("my-exp").await.unwrap();
        let doc: serde_json::Value =
            serde_json::from_str(&cm.data.as_ref().unwrap()["result.json"]).unwrap();
        assert_eq!(doc["stage"], "Completed", "{doc:#}");
        doc["actions"][0].clone()
    };

    // Without rules for what the app's chart changes, helm reads its release (the Role has
    // helm's Secrets) but may not touch the app's ConfigMap: a failed action.
    install_with_helm_action(&plane, &hello, &kubeconfig, &[]);
    let action = run_job("my-exp-1").await;
    assert_eq!(action["outcome"], "failed", "{action:#}");
    let stderr = action["exec"]["stderr"]["text"].as_str().unwrap();
    assert!(stderr.contains("forbidden"), "{action:#}");
    assert!(stderr.contains("configmaps"), "{action:#}");

    // With actionRules for it, the upgrade goes through: revision 2, the candidate's values.
    install_with_helm_action(
        &plane,
        &hello,
        &kubeconfig,
        &[
            "--set-json",
            r#"actionRules=[{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["sample-app"], "verbs": ["get", "patch", "update"]}]"#,
        ],
    );
    let action = run_job("my-exp-2").await;
    assert_eq!(action["outcome"], "done", "{action:#}");
    assert_eq!(action["exec"]["exitCode"], 0);
    let values = plane
        .helm(&["get", "values", "sample-app", "-n", "staging", "-o", "json"])
        .unwrap();
    let values: serde_json::Value = serde_json::from_str(&values).unwrap();
    assert_eq!(values["version"], "v2", "{values:#}");
    let app = configmaps.get("sample-app").await.unwrap();
    assert_eq!(app.data.unwrap()["version"], "v2");
    let history: serde_json::Value = serde_json::from_str(
        &plane
            .helm(&["history", "sample-app", "-n", "staging", "-o", "json"])
            .unwrap(),
    )
    .unwrap();
    let revisions: Vec<(i64, String)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["revision"].as_i64().unwrap(),
                r["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        revisions.last().unwrap(),
        &(revisions.len() as i64, "deployed".to_owned()),
        "{revisions:?}"
    );
    assert!(revisions.len() >= 2, "{revisions:?}");
}
