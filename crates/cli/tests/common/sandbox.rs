//! What the kubelet would do for a Job's pod, done on the host: the pod's volumes as files
//! under a scratch root, its downward-API environment resolved, and a token of its service
//! account, so the Job's container command runs here as it would in the pod.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Namespace, Secret};
use kube::api::{Api, PostParams};
use slogate_k8s::testing::{ControlPlane, meta, restricted_namespace};

/// The tutorial's namespace `staging` (Pod Security `restricted`) with the `ghtoken` Secret
/// holding `token`, as `kubectl create secret generic ghtoken --from-literal=token=…` makes it.
pub async fn staging_with_token(admin: &kube::Client, token: &str) {
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    namespaces
        .create(&PostParams::default(), &restricted_namespace("staging"))
        .await
        .unwrap();
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), "staging");
    let ghtoken = Secret {
        metadata: meta("ghtoken", Some("staging")),
        string_data: Some(BTreeMap::from([("token".into(), token.into())])),
        ..Secret::default()
    };
    secrets
        .create(&PostParams::default(), &ghtoken)
        .await
        .unwrap();
}

/// What the kubelet would have prepared for one Job's pod, with paths under `root`.
pub struct PodSandbox {
    /// The scratch root the pod's files are under.
    pub root: PathBuf,
    /// The container's arguments, paths moved under the root.
    pub args: Vec<String>,
    /// The container's environment, resolved.
    pub env: BTreeMap<String, String>,
}

impl PodSandbox {
    /// Materialises the volumes of `job`'s pod and resolves its environment.
    pub async fn prepare(
        plane: &ControlPlane,
        admin: &kube::Client,
        job: &Job,
        root: &Path,
    ) -> Self {
        Self::prepare_index(plane, admin, job, root, 0).await
    }

    /// As [`PodSandbox::prepare`], for the pod of completion `index` of an Indexed Job: the
    /// Job controller annotates it with its index and names it after it.
    pub async fn prepare_index(
        plane: &ControlPlane,
        admin: &kube::Client,
        job: &Job,
        root: &Path,
        index: u32,
    ) -> Self {
        let ns = job.metadata.namespace.clone().unwrap();
        let pod = job.spec.as_ref().unwrap().template.spec.clone().unwrap();
        let container: &Container = &pod.containers[0];
        let volumes = pod.volumes.clone().unwrap_or_default();
        let configmaps: Api<ConfigMap> = Api::namespaced(admin.clone(), &ns);
        let secrets: Api<Secret> = Api::namespaced(admin.clone(), &ns);
        for mount in container.volume_mounts.clone().unwrap_or_default() {
            let dir = under(root, &mount.mount_path);
            std::fs::create_dir_all(&dir).unwrap();
            let volume = volumes.iter().find(|v| v.name == mount.name).unwrap();
            if let Some(source) = &volume.config_map {
                let data = configmaps
                    .get(&source.name)
                    .await
                    .unwrap()
                    .data
                    .unwrap_or_default();
                for item in source.items.clone().unwrap_or_default() {
                    std::fs::write(dir.join(&item.path), &data[&item.key]).unwrap();
                }
            }
            if let Some(source) = &volume.secret {
                let name = source.secret_name.clone().unwrap();
                // An optional Secret that does not exist mounts as an empty directory.
                if let Some(secret) = secrets.get_opt(&name).await.unwrap() {
                    let data = secret.data.unwrap_or_default();
                    for item in source.items.clone().unwrap_or_default() {
                        std::fs::write(dir.join(&item.path), &data[&item.key].0).unwrap();
                    }
                }
            }
        }

        // Downward API: the labels the Job controller puts on its pods.
        let labels = BTreeMap::from([
            (
                "batch.kubernetes.io/job-name".to_owned(),
                job.metadata.name.clone().unwrap(),
            ),
            (
                "batch.kubernetes.io/controller-uid".to_owned(),
                job.metadata.uid.clone().unwrap(),
            ),
        ]);
        let job_name = job.metadata.name.clone().unwrap();
        let annotations = BTreeMap::from([(
            "batch.kubernetes.io/job-completion-index".to_owned(),
            index.to_string(),
        )]);
        let mut env = BTreeMap::new();
        for var in container.env.clone().unwrap_or_default() {
            let value = match (
                &var.value,
                var.value_from.as_ref().and_then(|v| v.field_ref.as_ref()),
            ) {
                (Some(value), _) => value.clone(),
                (None, Some(field)) if field.field_path == "metadata.namespace" => ns.clone(),
                (None, Some(field)) if field.field_path == "metadata.name" => {
                    format!("{job_name}-{index}-h0st{index}")
                }
                (None, Some(field)) if field.field_path == "metadata.uid" => {
                    format!("pod-uid-{index}")
                }
                (None, Some(field)) if field.field_path.starts_with("metadata.annotations") => {
                    let key = field
                        .field_path
                        .trim_start_matches("metadata.annotations['")
                        .trim_end_matches("']");
                    annotations
                        .get(key)
                        .cloned()
                        .unwrap_or_else(|| panic!("unexpected field {}", field.field_path))
                }
                (None, Some(field)) => {
                    let key = field
                        .field_path
                        .trim_start_matches("metadata.labels['")
                        .trim_end_matches("']");
                    labels
                        .get(key)
                        .cloned()
                        .unwrap_or_else(|| panic!("unexpected field {}", field.field_path))
                }
                _ => panic!("unexpected env source for {}", var.name),
            };
            env.insert(var.name, value);
        }
        // In-cluster credentials: the API server's address and the service account's token.
        let sa = pod.service_account_name.clone().unwrap();
        let token = plane.service_account_token(&ns, &sa).await.unwrap();
        let kubeconfig = root.join("service-account.kubeconfig");
        plane.write_kubeconfig(&kubeconfig, &token, &ns).unwrap();
        env.insert("KUBERNETES_SERVICE_HOST".into(), "127.0.0.1".into());
        env.insert("KUBERNETES_SERVICE_PORT".into(), plane.port().to_string());
        env.insert("KUBECONFIG".into(), kubeconfig.to_str().unwrap().into());
        // The spec names the token file at its mount path; point the runner at the copy.
        let token_file = under(root, "/var/run/secrets/slogate/github/token");
        env.insert(
            "SLOGATE_TOKEN_FILE".into(),
            token_file.to_str().unwrap().into(),
        );
        env.insert("HOME".into(), root.to_str().unwrap().into());

        // The arguments, with the mounted spec's path moved under the scratch root.
        let mounts: Vec<String> = container
            .volume_mounts
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|m| m.mount_path)
            .collect();
        let args = container
            .args
            .clone()
            .unwrap()
            .into_iter()
            .map(|a| {
                if mounts.iter().any(|m| a.starts_with(m.as_str())) {
                    under(root, &a).to_str().unwrap().to_owned()
                } else {
                    a
                }
            })
            .collect();
        Self {
            root: root.to_owned(),
            args,
            env,
        }
    }

    /// The container's command, started as the pod would start it.
    pub fn command(&self, extra: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_slogate"));
        cmd.args(&self.args)
            .args(extra)
            .env_clear()
            .envs(&self.env)
            .current_dir(&self.root);
        cmd
    }
}

/// `absolute` as a path under `root`.
pub fn under(root: &Path, absolute: &str) -> PathBuf {
    root.join(absolute.trim_start_matches('/'))
}
