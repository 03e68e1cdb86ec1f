//! The README's tutorial end to end in real pods, on a one-node cluster (etcd, kube-apiserver,
//! kube-controller-manager, kube-scheduler, kube-proxy, a kubelet on containerd + runc, CoreDNS):
//! the hello app from samples/hello behind its Service in the restricted `staging` namespace,
//! the `ghtoken` Secret made with the README's kubectl command, and the README's
//! `helm upgrade --install` command (plus the imported images and the GitHub double's address).
//! The Job's pod runs the slogate image the Dockerfile describes, under the chart's exact pod
//! spec: it resolves the Service by DNS, writes its result ConfigMap with in-cluster credentials
//! and opens the pull request on the GitHub double. Then `slogate describe` and `slogate assert`
//! read the result from the host; a slow candidate fails the gate; deleting a running Job ends
//! its run as Interrupted. When the node stops, nothing of it is left on the host.
//!
//! Needs root and the node's tools (scripts/setup.sh) and the static binaries (`make static`).

#[path = "../../github/tests/support/mod.rs"]
mod support;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use slogate_k8s::testing::chart_dir;
use slogate_k8s::testing::node::{BRIDGE_ADDRESS, Node, job_finished};
use slogate_k8s::testing::oci::{HELLO_IMAGE, SLOGATE_IMAGE, workspace_root};
use support::GitHubDouble;

const TOKEN: &str = "ghp_PodLeakCanary0a1b2c3d4e5f6a7b8c9d0e1f2a3";
const POD_START: Duration = Duration::from_secs(180);
const JOB_RUN: Duration = Duration::from_secs(300);

/// The README's `helm upgrade --install ...` tutorial command, split into words.
fn readme_helm_command() -> Vec<String> {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let start = readme
        .find("helm upgrade --install -n staging my-exp charts/slo-pr")
        .expect("the README has the tutorial's helm command");
    let mut words = Vec::new();
    for line in readme[start..].lines() {
        let continued = line.trim_end().ends_with('\\');
        words.extend(
            line.trim_end_matches('\\')
                .split_whitespace()
                .map(str::to_owned),
        );
        if !continued {
            break;
        }
    }
    words
}

/// The README's tutorial command with the chart in this tree, the imported slogate image and
/// the GitHub double; `extra` sets go last.
fn tutorial_install(node: &Node, github_url: &str, extra: &[&str]) -> Instant {
    let mut words = readme_helm_command();
    assert_eq!(words[0], "helm");
    words.remove(0);
    let chart = chart_dir();
    for word in &mut words {
        if word == "charts/slo-pr" {
            *word = chart.to_str().unwrap().to_owned();
        }
    }
    for set in [
        format!("host={github_url}"),
        "image.repository=slogate.local/slogate".to_owned(),
        "image.tag=dev".to_owned(),
        "image.pullPolicy=Never".to_owned(),
    ] {
        words.push("--set".to_owned());
        words.push(set);
    }
    words.extend(extra.iter().map(|s| (*s).to_owned()));
    let args: Vec<&str> = words.iter().map(String::as_str).collect();
    let started = Instant::now();
    node.plane()
        .helm(&args)
        .unwrap_or_else(|e| panic!("helm {} failed: {e}", args.join(" ")));
    started
}

/// The CLI run on the developer's side, as the cluster admin.
async fn slogate(node: &Node, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_slogate"));
    cmd.args(args)
        .env_clear()
        .env("KUBECONFIG", node.plane().admin_kubeconfig());
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn result_doc(configmaps: &Api<ConfigMap>) -> serde_json::Value {
    let cm = configmaps.get("my-exp").await.unwrap();
    serde_json::from_str(&cm.data.unwrap()["result.json"]).unwrap()
}

async fn must_finish(node: &Node, job: &str) -> &'static str {
    match node.wait_job_finished("staging", job, JOB_RUN).await {
        Ok(job) => job_finished(&job).unwrap(),
        Err(why) => panic!("{why}\n--- kubelet ---\n{}", node.log_tail("kubelet")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root, the node's tools and `make static`; run by make test and make e2e"]
async fn tutorial_in_real_pods_promotes_gates_a_slow_candidate_and_stops_on_job_deletion() {
    let node = Node::start().await.unwrap_or_else(|e| panic!("{e}"));
    let root = workspace_root();
    let slogate_image = node
        .build_and_import(
            &SLOGATE_IMAGE,
            &root.join(SLOGATE_IMAGE.binary),
            "slogate.local/slogate:dev",
        )
        .unwrap_or_else(|e| panic!("{e}"));
    node.build_and_import(
        &HELLO_IMAGE,
        &root.join(HELLO_IMAGE.binary),
        "slogate.local/hello:dev",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    println!(
        "slogate image layer: {:.1} MB",
        slogate_image.layer_bytes as f64 / 1e6
    );
    let github = GitHubDouble::start_on(&format!("{BRIDGE_ADDRESS}:0"), "me", "app", TOKEN).await;

    // The tutorial's first steps: the namespace, the candidate (its image the imported one),
    // the token Secret.
    let samples = root.join("samples/hello");
    node.kubectl(
        &[
            "apply",
            "-f",
            samples.join("namespace.yaml").to_str().unwrap(),
        ],
        None,
    )
    .unwrap();
    let candidate = std::fs::read_to_string(samples.join("candidate.yaml")).unwrap();
    let patched = candidate.replace(
        "image: gcr.io/google-samples/hello-app:2.0",
        "image: slogate.local/hello:dev\n          imagePullPolicy: Never",
    );
    assert_ne!(patched, candidate, "the candidate names its image");
    node.kubectl(&["apply", "-f", "-"], Some(&patched)).unwrap();
    node.wait_pods_ready("staging", "app=hello", POD_START)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    node.kubectl(
        &[
            "-n",
            "staging",
            "create",
            "secret",
            "generic",
            "ghtoken",
            &format!("--from-literal=token={TOKEN}"),
        ],
        None,
    )
    .unwrap();

    // Restricted Pod Security is enforced on this namespace's real pods.
    let refused = node
        .kubectl(
            &[
                "-n",
                "staging",
                "run",
                "root-shell",
                "--image=slogate.local/hello:dev",
                "--image-pull-policy=Never",
                "--overrides={\"spec\":{\"securityContext\":{\"runAsUser\":0}}}",
            ],
            None,
        )
        .expect_err("a pod that breaks the restricted level is refused");
    assert!(
        refused.contains("violates PodSecurity \"restricted"),
        "{refused}"
    );

    // The README's command: the Job's pod loads hello through its Service by DNS name.
    let started = tutorial_install(&node, &github.url, &[]);
    assert_eq!(must_finish(&node, "my-exp-1").await, "Complete");
    let took = started.elapsed();
    println!(
        "helm upgrade to Job Complete (100 requests): {:.1} s",
        took.as_secs_f64()
    );
    let admin = node.plane().client().await.unwrap();
    let configmaps: Api<ConfigMap> = Api::namespaced(admin.clone(), "staging");
    let doc = result_doc(&configmaps).await;
    assert_eq!(doc["stage"], "Completed", "{doc:#}");
    assert_eq!(doc["progress"]["requestsDone"], 100, "{doc:#}");
    assert_eq!(doc["verdict"]["pass"], true, "{doc:#}");
    assert_eq!(doc["promotion"]["outcome"], "opened", "{doc:#}");
    assert_eq!(github.state().prs.len(), 1, "one pull request");
    github.assert_conforming();
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "staging");
    let job_pods = pods
        .list(&ListParams::default().labels("batch.kubernetes.io/job-name=my-exp-1"))
        .await
        .unwrap()
        .items;
    assert_eq!(job_pods.len(), 1, "one pod ran the Job");
    let ran_as = job_pods[0]
        .spec
        .as_ref()
        .unwrap()
        .security_context
        .clone()
        .unwrap();
    assert_eq!(ran_as.run_as_user, Some(65532));

    // The token never shows: not in the pod's log, the events or the result.
    let logs = node
        .kubectl(&["-n", "staging", "logs", "job/my-exp-1"], None)
        .unwrap();
    assert!(!logs.contains(TOKEN), "the token is not in the log");
    let events = node
        .kubectl(&["-n", "staging", "get", "events", "-o", "json"], None)
        .unwrap();
    assert!(!events.contains(TOKEN), "the token is not in an event");
    assert!(
        !doc.to_string().contains(TOKEN),
        "the token is not in the result"
    );
    // The Job's Role: its own Secret and ConfigMap, nothing more.
    let can = |verb: &str, what: &str| {
        node.kubectl(
            &[
                "auth",
                "can-i",
                verb,
                what,
                "-n",
                "staging",
                "--as=system:serviceaccount:staging:my-exp",
            ],
            None,
        )
        .unwrap_or_else(|e| e)
        .trim()
        .to_owned()
    };
    assert_eq!(can("get", "secret/ghtoken"), "yes");
    assert_eq!(can("list", "secrets"), "no");
    assert_eq!(can("patch", "configmap/other"), "no");

    // The developer's side reads the result from the cluster.
    let described = slogate(&node, &["describe", "-n", "staging", "my-exp"]).await;
    assert_eq!(
        described.status.code(),
        Some(0),
        "{}",
        text(&described.stderr)
    );
    let report = text(&described.stdout);
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
    let gate = [
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
    ];
    let asserted = slogate(&node, &gate).await;
    assert_eq!(
        asserted.status.code(),
        Some(0),
        "{}",
        text(&asserted.stderr)
    );

    // A slow candidate: the gate answers Failed, opens no pull request, the Job still Complete.
    node.kubectl(
        &[
            "-n",
            "staging",
            "patch",
            "deployment",
            "hello",
            "--type=json",
            "-p",
            r#"[{"op":"add","path":"/spec/template/spec/containers/0/args","value":["--behavior","slow"]}]"#,
        ],
        None,
    )
    .unwrap();
    if let Err(why) = node.kubectl(
        &[
            "-n",
            "staging",
            "rollout",
            "status",
            "deployment/hello",
            "--timeout=180s",
        ],
        None,
    ) {
        panic!("{why}\n{}", node.diagnose("staging").await);
    }
    tutorial_install(&node, &github.url, &[]);
    assert_eq!(must_finish(&node, "my-exp-2").await, "Complete");
    let doc = result_doc(&configmaps).await;
    assert_eq!(doc["stage"], "Completed", "{doc:#}");
    assert_eq!(doc["verdict"]["pass"], false, "{doc:#}");
    assert_ne!(doc["promotion"]["outcome"], "opened", "{doc:#}");
    assert_ne!(doc["promotion"]["outcome"], "updated", "{doc:#}");
    assert_eq!(github.state().prs.len(), 1, "no new pull request");
    let asserted = slogate(&node, &gate).await;
    assert_eq!(
        asserted.status.code(),
        Some(1),
        "{}",
        text(&asserted.stdout)
    );

    // `kubectl delete job` mid-run: the pod gets SIGTERM, the last result says Interrupted.
    tutorial_install(
        &node,
        &github.url,
        &[
            "--set",
            "numQueries=null",
            "--set",
            "duration=120s",
            "--set",
            "QPS=20",
        ],
    );
    let jobs: Api<k8s_openapi::api::batch::v1::Job> = Api::namespaced(admin.clone(), "staging");
    let started = Instant::now();
    let job3_uid = loop {
        if let Ok(Some(job)) = jobs.get_opt("my-exp-3").await
            && let Ok(Some(cm)) = configmaps.get_opt("my-exp").await
        {
            let owner = cm
                .metadata
                .owner_references
                .as_ref()
                .map(|o| o[0].uid.clone());
            let doc: serde_json::Value =
                serde_json::from_str(&cm.data.unwrap_or_default()["result.json"]).unwrap();
            if owner == job.metadata.uid && doc["progress"]["requestsDone"].as_u64() > Some(0) {
                break job.metadata.uid.unwrap();
            }
        }
        assert!(
            started.elapsed() < POD_START,
            "the third run did not report progress\n{}",
            node.diagnose("staging").await
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    // The result ConfigMap is owned by the Job and goes with it: watch every version of it.
    let from = configmaps
        .get("my-exp")
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let watched = configmaps
        .watch(
            &WatchParams::default().fields("metadata.name=my-exp"),
            &from,
        )
        .await
        .unwrap();
    let watch = tokio::spawn(async move {
        let mut watched = Box::pin(watched);
        let mut seen = Vec::new();
        while let Some(event) = watched.next().await {
            match event {
                Ok(WatchEvent::Added(cm) | WatchEvent::Modified(cm)) => {
                    let doc = cm
                        .data
                        .as_ref()
                        .and_then(|d| d.get("result.json"))
                        .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
                        .unwrap_or_default();
                    seen.push(format!(
                        "written: stage {} failure {}",
                        doc["stage"], doc["failure"]
                    ));
                    if doc["stage"] == "Failed" {
                        return Ok((cm.metadata.owner_references, doc));
                    }
                }
                Ok(WatchEvent::Deleted(_)) => seen.push("deleted".to_owned()),
                Ok(other) => seen.push(format!("{other:?}")),
                Err(err) => seen.push(format!("watch error: {err}")),
            }
        }
        Err(seen)
    });
    node.kubectl(
        &["-n", "staging", "delete", "job", "my-exp-3", "--wait=false"],
        None,
    )
    .unwrap();
    let Ok(seen) = tokio::time::timeout(Duration::from_secs(90), watch).await else {
        panic!(
            "no Failed result within 90 s of deleting the Job\n{}",
            node.diagnose("staging").await
        );
    };
    let (owners, doc) = match seen.unwrap() {
        Ok(found) => found,
        Err(seen) => panic!(
            "the watch ended without a Failed result; it saw:\n{}\n--- kubelet ---\n{}",
            seen.join("\n"),
            node.log_tail("kubelet")
        ),
    };
    assert_eq!(doc["failure"], "Interrupted: SIGTERM", "{doc:#}");
    assert_eq!(
        owners.unwrap()[0].uid,
        job3_uid,
        "written by the deleted Job's pod"
    );

    // Nothing of the node stays on the host: processes, bridge, iptables, mounts, files,
    // sysctls.
    let left = node.stop();
    assert!(left.is_empty(), "left on the host: {left:#?}");
}
