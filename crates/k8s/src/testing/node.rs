//! A one-node Kubernetes cluster that runs real pods, for end-to-end tests: etcd,
//! kube-apiserver, kube-controller-manager (every controller), kube-scheduler, kube-proxy
//! (iptables), a kubelet on containerd + runc with CNI bridge networking (10.244.0.0/24), and
//! CoreDNS as cluster DNS, so `hello.staging.svc.cluster.local` resolves in pods.
//!
//! It needs root and changes the host: a bridge, iptables chains, mounts, sysctls, files under
//! /run and /var. [`Node`] undoes all of it when dropped (a failing test included) and, before
//! it starts, removes what an earlier run that was killed left behind. Its addresses, ports and
//! names are fixed, so one node runs at a time on a machine.
//!
//! The API server, the kubelet and CoreDNS listen on the bridge's address [`BRIDGE_ADDRESS`]:
//! the kubelet's node IP cannot be loopback, and pods reach the host only there. A test server
//! that pods must reach (the GitHub double) listens there too.

use std::fmt::Write as _;
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Node as NodeObject, Pod};
use kube::Api;
use kube::api::ListParams;

use super::oci::{ImageArchive, ImageSpec, PAUSE_IMAGE, workspace_root, write_image};
use super::{ControlPlane, HarnessError, PlaneOptions, Process, free_port, io, tool};

/// The pod bridge's address: the node IP, the API server's, the kubelet's and CoreDNS's.
pub const BRIDGE_ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 244, 0, 1);
/// The Kubernetes node's name.
pub const NODE_NAME: &str = "slogate-node";
/// The pause image containerd runs as every pod's sandbox.
pub const PAUSE_IMAGE_NAME: &str = "slogate.local/pause:dev";

const BRIDGE: &str = "slogate0";
const POD_CIDR: &str = "10.244.0.0/24";
const API_PORT: u16 = 6443;
/// Everything the node writes lives here (fixed, so leftovers of a killed run are found).
const ROOT: &str = "/var/tmp/slogate-node";
const NODE_TOKEN: &str = "slogate-test-node-token";
const CNI_NETWORK: &str = "slogate";
/// Kernel settings the node's parts may change, put back as they were.
const SYSCTLS: &[&str] = &[
    "net/ipv4/ip_forward",
    "net/ipv4/conf/all/route_localnet",
    "net/bridge/bridge-nf-call-iptables",
    "net/bridge/bridge-nf-call-ip6tables",
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
];
/// libcni's cache of plugin results.
const CNI_RESULTS: &str = "/var/lib/cni/results";
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A running one-node cluster, torn down (host changes undone) on drop.
pub struct Node {
    /// Node daemons in start order; stopped in reverse.
    daemons: Vec<Process>,
    plane: Option<ControlPlane>,
    sysctls: Vec<(PathBuf, String)>,
    containerd_socket: PathBuf,
    /// What CNI's result cache held before the node started: containerd's loopback results
    /// are named after containers, not after the network, so the new ones are found by
    /// difference.
    cni_results_before: Vec<std::ffi::OsString>,
    /// Which of [`HOST_PATHS`] existed before the node started.
    paths_before: Vec<String>,
}

impl Node {
    /// Whether this machine can run a node: root, and every tool installed.
    pub fn missing_requirements() -> Vec<String> {
        let mut missing = Vec::new();
        if !is_root() {
            missing.push("root (the node changes the network and mounts)".to_owned());
        }
        for name in [
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kube-proxy",
            "kubelet",
            "coredns",
            "kubectl",
            "helm",
        ] {
            if let Err(err) = tool(name) {
                missing.push(err.to_string());
            }
        }
        for name in ["containerd", "ctr", "runc", "iptables", "ip"] {
            if which(name).is_none() {
                missing.push(format!("{name} (run scripts/setup.sh)"));
            }
        }
        missing
    }

    /// Starts the whole node and waits until it is Ready and CoreDNS answers.
    pub async fn start() -> Result<Self, HarnessError> {
        let missing = Self::missing_requirements();
        if !missing.is_empty() {
            return Err(HarnessError::NotReady {
                tool: "node",
                reason: format!("missing: {}", missing.join("; ")),
                log_tail: String::new(),
            });
        }
        let root = PathBuf::from(ROOT);
        cleanup_host(&root);
        fs::create_dir_all(&root).map_err(io(format!("cannot create {ROOT}")))?;
        let sysctls = SYSCTLS
            .iter()
            .filter_map(|name| {
                let path = Path::new("/proc/sys").join(name);
                let value = fs::read_to_string(&path).ok()?;
                Some((path, value.trim().to_owned()))
            })
            .collect();
        let mut node = Self {
            daemons: Vec::new(),
            plane: None,
            sysctls,
            containerd_socket: root.join("containerd/containerd.sock"),
            cni_results_before: dir_names(Path::new(CNI_RESULTS)),
            paths_before: HOST_PATHS
                .iter()
                .filter(|p| Path::new(p).exists())
                .map(|p| (*p).to_owned())
                .collect(),
        };
        // From here on, a failure drops `node`, which undoes what was done so far.
        node.start_parts(&root).await?;
        Ok(node)
    }

    async fn start_parts(&mut self, root: &Path) -> Result<(), HarnessError> {
        let bridge = BRIDGE_ADDRESS.to_string();
        host(&["ip", "link", "add", BRIDGE, "type", "bridge"])?;
        host(&["ip", "addr", "add", &format!("{bridge}/24"), "dev", BRIDGE])?;
        host(&["ip", "link", "set", BRIDGE, "up"])?;

        // containerd with its state under the root, the CNI bridge network, and the pause image.
        let cni_dir = root.join("cni/net.d");
        fs::create_dir_all(&cni_dir).map_err(io("cannot create the CNI config directory"))?;
        let cni = serde_json::json!({
            "cniVersion": "0.4.0",
            "name": CNI_NETWORK,
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": BRIDGE,
                    "isGateway": true,
                    "ipMasq": false,
                    "hairpinMode": true,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": POD_CIDR, "gateway": bridge}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": root.join("cni/ipam"),
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": true}},
            ],
        });
        fs::write(cni_dir.join("10-slogate.conflist"), cni.to_string())
            .map_err(io("cannot write the CNI config"))?;
        let containerd_dir = root.join("containerd");
        fs::create_dir_all(&containerd_dir).map_err(io("cannot create containerd's directory"))?;
        let containerd_config = containerd_dir.join("config.toml");
        fs::write(
            &containerd_config,
            containerd_config_text(root, &self.containerd_socket, &cni_dir),
        )
        .map_err(io("cannot write containerd's config"))?;
        let containerd_bin = which("containerd").expect("checked above");
        let mut containerd = Process::spawn_at(
            "containerd",
            &containerd_bin,
            &[format!("--config={}", containerd_config.display())],
            root,
        )?;
        let started = Instant::now();
        while !self.containerd_socket.exists() {
            containerd.check_alive()?;
            if started.elapsed() > Duration::from_secs(30) {
                return Err(containerd.not_ready("no socket after 30 s"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.daemons.push(containerd);
        let images = root.join("images");
        fs::create_dir_all(&images).map_err(io("cannot create the image directory"))?;
        let pause = write_image(
            &PAUSE_IMAGE,
            &workspace_root().join(PAUSE_IMAGE.binary),
            PAUSE_IMAGE_NAME,
            &images,
        )?;
        self.import(&pause)?;

        // The control plane, on the bridge's address.
        let plane = ControlPlane::start_with(PlaneOptions {
            serve: Some((BRIDGE_ADDRESS, API_PORT)),
            extra_tokens: format!(
                "{NODE_TOKEN},system:node:{NODE_NAME},system:node:{NODE_NAME},system:nodes\n"
            ),
            dir_in: Some(root.to_owned()),
            for_node: true,
        })
        .await?;
        let plane_dir = plane.dir().to_owned();
        let admin = plane.admin_kubeconfig().to_owned();
        let ca_file = plane_dir.join("certs/apiserver.crt");
        let node_kubeconfig = root.join("kubelet.kubeconfig");
        plane
            .write_kubeconfig(&node_kubeconfig, NODE_TOKEN, "default")
            .map_err(io("cannot write the kubelet's kubeconfig"))?;
        self.plane = Some(plane);

        let cm = Process::spawn(
            "kube-controller-manager",
            &[
                format!("--kubeconfig={}", admin.display()),
                "--controllers=*".to_owned(),
                "--leader-elect=false".to_owned(),
                "--bind-address=127.0.0.1".to_owned(),
                format!("--secure-port={}", free_port()?),
                format!(
                    "--cert-dir={}",
                    root.join("controller-manager-certs").display()
                ),
                // Token volumes need the `kube-root-ca.crt` ConfigMap and the signing key.
                format!("--root-ca-file={}", ca_file.display()),
                format!(
                    "--service-account-private-key-file={}",
                    plane_dir.join("service-account.key").display()
                ),
            ],
            root,
        )?;
        self.daemons.push(cm);
        let scheduler = Process::spawn(
            "kube-scheduler",
            &[
                format!("--kubeconfig={}", admin.display()),
                "--leader-elect=false".to_owned(),
                "--bind-address=127.0.0.1".to_owned(),
                format!("--secure-port={}", free_port()?),
            ],
            root,
        )?;
        self.daemons.push(scheduler);

        let kubelet_config = root.join("kubelet.yaml");
        fs::write(
            &kubelet_config,
            kubelet_config_text(root, &self.containerd_socket),
        )
        .map_err(io("cannot write the kubelet's config"))?;
        let kubelet = Process::spawn(
            "kubelet",
            &[
                format!("--config={}", kubelet_config.display()),
                format!("--kubeconfig={}", node_kubeconfig.display()),
                format!("--hostname-override={NODE_NAME}"),
                format!("--node-ip={BRIDGE_ADDRESS}"),
                format!("--root-dir={}", root.join("kubelet").display()),
                // Its self-signed serving certificate, else written to /var/lib/kubelet/pki.
                format!("--cert-dir={}", root.join("kubelet-pki").display()),
            ],
            root,
        )?;
        self.daemons.push(kubelet);
        let proxy = Process::spawn(
            "kube-proxy",
            &[
                format!("--kubeconfig={}", admin.display()),
                format!("--hostname-override={NODE_NAME}"),
                "--proxy-mode=iptables".to_owned(),
                // Leave the host's conntrack settings alone (the machine may not allow them).
                "--conntrack-max-per-core=0".to_owned(),
                "--conntrack-tcp-timeout-established=0".to_owned(),
                "--conntrack-tcp-timeout-close-wait=0".to_owned(),
                // A pod reaching a Service whose endpoint is on the same bridge gets its reply
                // back through the host only when the request was masqueraded.
                "--masquerade-all".to_owned(),
                format!("--cluster-cidr={POD_CIDR}"),
                format!("--nodeport-addresses={BRIDGE_ADDRESS}/32"),
                "--iptables-localhost-nodeports=false".to_owned(),
                "--metrics-bind-address=127.0.0.1:10249".to_owned(),
                "--healthz-bind-address=127.0.0.1:10256".to_owned(),
            ],
            root,
        )?;
        self.daemons.push(proxy);
        let corefile = root.join("Corefile");
        fs::write(
            &corefile,
            format!(
                ".:53 {{\n    bind {BRIDGE_ADDRESS}\n    errors\n    kubernetes cluster.local in-addr.arpa ip6.arpa {{\n        kubeconfig {} test\n    }}\n}}\n",
                admin.display()
            ),
        )
        .map_err(io("cannot write the Corefile"))?;
        let coredns = Process::spawn(
            "coredns",
            &[
                "-conf".to_owned(),
                corefile.display().to_string(),
                "-dns.port=53".to_owned(),
            ],
            root,
        )?;
        self.daemons.push(coredns);

        self.wait_node_ready(Duration::from_secs(120)).await?;
        let started = Instant::now();
        loop {
            self.check_daemons()?;
            if std::net::TcpStream::connect((BRIDGE_ADDRESS, 53)).is_ok() {
                break;
            }
            if started.elapsed() > Duration::from_secs(30) {
                let coredns = self.daemons.last_mut().expect("coredns started");
                return Err(coredns.not_ready(format!("nothing listens on {BRIDGE_ADDRESS}:53")));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(())
    }

    async fn wait_node_ready(&mut self, limit: Duration) -> Result<(), HarnessError> {
        let client = self.plane().client().await?;
        let nodes: Api<NodeObject> = Api::all(client);
        let started = Instant::now();
        loop {
            self.check_daemons()?;
            let seen = match nodes.get_opt(NODE_NAME).await {
                Ok(Some(node)) => {
                    let conditions = node.status.and_then(|s| s.conditions).unwrap_or_default();
                    if conditions
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.status == "True")
                    {
                        return Ok(());
                    }
                    conditions
                        .iter()
                        .map(|c| {
                            format!(
                                "{}={} ({})",
                                c.type_,
                                c.status,
                                c.message.clone().unwrap_or_default()
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                }
                Ok(None) => "the node has not registered".to_owned(),
                Err(err) => err.to_string(),
            };
            if started.elapsed() > limit {
                let kubelet = self
                    .daemons
                    .iter_mut()
                    .find(|d| d.tool == "kubelet")
                    .expect("kubelet started");
                return Err(kubelet.not_ready(format!(
                    "node {NODE_NAME} not Ready after {} s: {seen}",
                    limit.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    fn check_daemons(&mut self) -> Result<(), HarnessError> {
        for daemon in &mut self.daemons {
            daemon.check_alive()?;
        }
        Ok(())
    }

    /// The node's control plane (API server URL, admin kubeconfig, helm, clients).
    pub fn plane(&self) -> &ControlPlane {
        self.plane.as_ref().expect("the control plane runs")
    }

    /// A scratch directory that lives as long as the node.
    pub fn dir(&self) -> &Path {
        self.plane().dir()
    }

    /// Writes the image `spec` with the binary at `binary` named `name`, imports it into the
    /// node's containerd, and returns the archive (its size included).
    pub fn build_and_import(
        &self,
        spec: &ImageSpec,
        binary: &Path,
        name: &str,
    ) -> Result<ImageArchive, HarnessError> {
        let dir = Path::new(ROOT).join("images");
        let archive = write_image(spec, binary, name, &dir)?;
        self.import(&archive)?;
        Ok(archive)
    }

    /// Imports an image archive into the node's containerd, where the kubelet finds it.
    pub fn import(&self, archive: &ImageArchive) -> Result<(), HarnessError> {
        let ctr = which("ctr").expect("checked at start");
        let address = self.containerd_socket.display().to_string();
        let file = archive.file.display().to_string();
        let ctr = ctr.display().to_string();
        host(&[
            &ctr,
            "--address",
            &address,
            "-n",
            "k8s.io",
            "images",
            "import",
            &file,
        ])
        .map(|_| ())
    }

    /// Runs the real kubectl as the cluster admin: Ok(stdout) or Err(stderr and stdout).
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
        let kubectl = tool("kubectl").map_err(|e| e.to_string())?;
        let mut child = Command::new(kubectl)
            .args(args)
            .env("KUBECONFIG", self.plane().admin_kubeconfig())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run kubectl: {e}"))?;
        if let Some(text) = stdin {
            use std::io::Write as _;
            let mut pipe = child.stdin.take().expect("piped");
            pipe.write_all(text.as_bytes())
                .map_err(|e| format!("cannot write to kubectl: {e}"))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| format!("kubectl failed: {e}"))?;
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        if out.status.success() {
            Ok(text(&out.stdout))
        } else {
            Err(format!("{}{}", text(&out.stderr), text(&out.stdout)))
        }
    }

    /// Waits until every pod matching `selector` in `namespace` is Ready (at least one).
    /// On timeout the error says what the pods wait for: their status and the events.
    pub async fn wait_pods_ready(
        &self,
        namespace: &str,
        selector: &str,
        limit: Duration,
    ) -> Result<(), String> {
        let client = self.plane().client().await.map_err(|e| e.to_string())?;
        let pods: Api<Pod> = Api::namespaced(client, namespace);
        let started = Instant::now();
        loop {
            if let Ok(list) = pods.list(&ListParams::default().labels(selector)).await
                && !list.items.is_empty()
                && list.items.iter().all(pod_ready)
            {
                return Ok(());
            }
            if started.elapsed() > limit {
                return Err(format!(
                    "pods {selector} in {namespace} not Ready after {} s\n{}",
                    limit.as_secs(),
                    self.diagnose(namespace).await
                ));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Waits until Job `name` in `namespace` has the condition Complete or Failed and returns
    /// it. On timeout the error says what it waits for: the Job's and pods' status, events.
    pub async fn wait_job_finished(
        &self,
        namespace: &str,
        name: &str,
        limit: Duration,
    ) -> Result<Job, String> {
        let client = self.plane().client().await.map_err(|e| e.to_string())?;
        let jobs: Api<Job> = Api::namespaced(client, namespace);
        let started = Instant::now();
        loop {
            if let Ok(Some(job)) = jobs.get_opt(name).await
                && job_finished(&job).is_some()
            {
                return Ok(job);
            }
            if started.elapsed() > limit {
                return Err(format!(
                    "Job {name} in {namespace} not finished after {} s\n{}",
                    limit.as_secs(),
                    self.diagnose(namespace).await
                ));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The state of `namespace` for a failure message: each pod's phase, conditions and
    /// container states, each Job's conditions, and the namespace's events.
    pub async fn diagnose(&self, namespace: &str) -> String {
        let Ok(client) = self.plane().client().await else {
            return "(no client to the API server)".to_owned();
        };
        let mut text = String::new();
        let jobs: Api<Job> = Api::namespaced(client.clone(), namespace);
        for job in jobs
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default()
        {
            let status = job.status.unwrap_or_default();
            let _ = writeln!(
                text,
                "job {}: active {:?} succeeded {:?} failed {:?} conditions {:?}",
                job.metadata.name.unwrap_or_default(),
                status.active,
                status.succeeded,
                status.failed,
                status
                    .conditions
                    .unwrap_or_default()
                    .into_iter()
                    .map(|c| format!("{}={} {}", c.type_, c.status, c.message.unwrap_or_default()))
                    .collect::<Vec<_>>()
            );
        }
        let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
        for pod in pods
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default()
        {
            let status = pod.status.unwrap_or_default();
            let _ = writeln!(
                text,
                "pod {}: phase {} conditions {:?}",
                pod.metadata.name.unwrap_or_default(),
                status.phase.unwrap_or_default(),
                status
                    .conditions
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|c| c.status != "True")
                    .map(|c| format!("{}={} {}", c.type_, c.status, c.message.unwrap_or_default()))
                    .collect::<Vec<_>>()
            );
            for container in status.container_statuses.unwrap_or_default() {
                let _ = writeln!(
                    text,
                    "  container {}: ready {} state {:?}",
                    container.name, container.ready, container.state
                );
            }
        }
        let events: Api<Event> = Api::namespaced(client, namespace);
        let mut events = events
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default();
        events.sort_by_key(|e| e.metadata.creation_timestamp.clone());
        for event in events {
            let _ = writeln!(
                text,
                "event {} {} {}/{}: {}",
                event.type_.unwrap_or_default(),
                event.reason.unwrap_or_default(),
                event.involved_object.kind.unwrap_or_default(),
                event.involved_object.name.unwrap_or_default(),
                event.message.unwrap_or_default()
            );
        }
        if text.is_empty() {
            text.push_str("(no Job, pod or event in the namespace)\n");
        }
        text
    }

    /// The last lines of one node part's log (`kubelet`, `containerd`, `coredns`, …).
    pub fn log_tail(&self, tool: &str) -> String {
        self.daemons
            .iter()
            .find(|d| d.tool == tool)
            .map(Process::log_tail)
            .unwrap_or_default()
    }
}

/// Host paths the node's parts create; each must be gone after teardown unless it was there
/// before the node started.
const HOST_PATHS: &[&str] = &[
    ROOT,
    "/var/lib/kubelet",
    "/var/log/pods",
    "/var/log/containers",
    "/run/containerd",
    "/run/netns",
    "/var/lib/cni",
];

impl Node {
    /// Tears the node down and returns what it left on the host: running parts, the bridge,
    /// iptables chains, mounts, files and sysctls not as they were. Empty when the host is
    /// as before.
    pub fn stop(mut self) -> Vec<String> {
        self.teardown();
        let mut left = Vec::new();
        let pids = node_processes(Path::new(ROOT));
        if !pids.is_empty() {
            left.push(format!("processes still running: {}", pids.join(" ")));
        }
        if Path::new("/sys/class/net").join(BRIDGE).exists() {
            left.push(format!("the bridge {BRIDGE}"));
        }
        for iptables in ["iptables", "ip6tables"] {
            for table in ["filter", "nat", "mangle"] {
                let rules = quietly(&[iptables, "-w", "-t", table, "-S"]);
                let ours = rules
                    .lines()
                    .filter(|l| l.contains("KUBE-") || l.contains("CNI-"))
                    .count();
                if ours > 0 {
                    left.push(format!("{ours} {iptables} {table} rules or chains"));
                }
            }
        }
        let mounts = node_mounts(Path::new(ROOT));
        if !mounts.is_empty() {
            left.push(format!("mounts: {}", mounts.join(" ")));
        }
        for path in HOST_PATHS {
            if Path::new(path).exists() && !self.paths_before.iter().any(|p| p == path) {
                left.push((*path).to_owned());
            }
        }
        for (path, value) in &self.sysctls {
            let now = fs::read_to_string(path).unwrap_or_default();
            if now.trim() != value {
                left.push(format!(
                    "{} is {} (was {value})",
                    path.display(),
                    now.trim()
                ));
            }
        }
        left
    }

    /// Stops every part and undoes every host change; safe to call twice.
    fn teardown(&mut self) {
        // The kubelet first, so nothing restarts containers; containerd last.
        while let Some(daemon) = self.daemons.pop() {
            if daemon.tool == "containerd" {
                kill_pod_processes();
            }
            drop(daemon);
        }
        self.plane.take();
        cleanup_host(Path::new(ROOT));
        for name in dir_names(Path::new(CNI_RESULTS)) {
            if !self.cni_results_before.contains(&name) {
                let _ = fs::remove_file(Path::new(CNI_RESULTS).join(name));
            }
        }
        let _ = fs::remove_dir(CNI_RESULTS);
        let _ = fs::remove_dir("/var/lib/cni");
        for (path, value) in &self.sysctls {
            if fs::read_to_string(path)
                .map(|v| v.trim() != value)
                .unwrap_or(false)
            {
                let _ = fs::write(path, value);
            }
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// The names in a directory (none when it does not exist).
fn dir_names(dir: &Path) -> Vec<std::ffi::OsString> {
    fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default()
}

/// Whether a pod is Ready.
fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// `Some("Complete")` or `Some("Failed")` once the Job has that condition.
pub fn job_finished(job: &Job) -> Option<&'static str> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    ["Complete", "Failed"].into_iter().find(|wanted| {
        conditions
            .iter()
            .any(|c| c.type_ == *wanted && c.status == "True")
    })
}

fn containerd_config_text(root: &Path, socket: &Path, cni_dir: &Path) -> String {
    let root = root.display();
    let socket = socket.display();
    let cni_dir = cni_dir.display();
    format!(
        r#"version = 2
root = "{root}/containerd/root"
state = "{root}/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.internal.v1.opt", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "{socket}"

[ttrpc]
  address = "{socket}.ttrpc"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE_NAME}"
  # Without CAP_SYS_RESOURCE runc cannot lower oom_score_adj and every container fails.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "{root}/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni_dir}"
"#
    )
}

fn kubelet_config_text(root: &Path, socket: &Path) -> String {
    let root = root.display();
    let socket = socket.display();
    format!(
        r#"apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: {BRIDGE_ADDRESS}
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
# This machine kind is cgroup v1.
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
containerRuntimeEndpoint: unix://{socket}
authentication:
  anonymous: {{enabled: true}}
  webhook: {{enabled: false}}
authorization:
  mode: AlwaysAllow
clusterDomain: cluster.local
clusterDNS: [{BRIDGE_ADDRESS}]
resolvConf: ""
podLogsDir: {root}/pod-logs
evictionHard: {{memory.available: "1Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
shutdownGracePeriod: 0s
"#
    )
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// A system program by name, on PATH or in the sbin directories.
fn which(name: &str) -> Option<PathBuf> {
    PATH.split(':')
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.is_file())
}

/// Runs a host command; its failure is an error naming it and what it printed.
fn host(args: &[&str]) -> Result<String, HarnessError> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .env("PATH", PATH)
        .stdin(Stdio::null())
        .output()
        .map_err(io(format!("cannot run {}", args[0])))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(HarnessError::NotReady {
            tool: "host",
            reason: format!("`{}` failed with {}", args.join(" "), out.status),
            log_tail: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// Runs a host command for cleanup, where failing (nothing to undo) is fine.
fn quietly(args: &[&str]) -> String {
    host(args).unwrap_or_default()
}

/// The cgroup directories the kubelet made for pods, deepest first.
fn pod_cgroups() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let Ok(controllers) = fs::read_dir("/sys/fs/cgroup") else {
        return dirs;
    };
    for controller in controllers.flatten() {
        let top = controller.path().join("kubepods");
        if top.is_dir() {
            collect_dirs(&top, &mut dirs);
        }
    }
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    dirs
}

fn collect_dirs(dir: &Path, into: &mut Vec<PathBuf>) {
    into.push(dir.to_owned());
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                collect_dirs(&entry.path(), into);
            }
        }
    }
}

/// Kills every process in a pod's cgroup (the containers and their sandboxes).
fn kill_pod_processes() {
    for _ in 0..20 {
        let mut pids = Vec::new();
        for dir in pod_cgroups() {
            if let Ok(procs) = fs::read_to_string(dir.join("cgroup.procs")) {
                pids.extend(procs.split_whitespace().map(str::to_owned));
            }
        }
        pids.sort();
        pids.dedup();
        if pids.is_empty() {
            return;
        }
        let mut args = vec!["kill", "-KILL"];
        args.extend(pids.iter().map(String::as_str));
        quietly(&args);
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Processes whose command line names the node's root: its daemons, containerd's shims, and
/// those of an earlier run that was killed before it could clean up.
fn node_processes(root: &Path) -> Vec<String> {
    let me = std::process::id().to_string();
    let needle = root.display().to_string();
    let mut pids = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return pids;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) || name == me {
            continue;
        }
        if let Ok(cmdline) = fs::read(entry.path().join("cmdline"))
            && String::from_utf8_lossy(&cmdline).contains(&needle)
        {
            pids.push(name);
        }
    }
    pids
}

/// Mount points the node's parts make (the kubelet's volumes and its root, containers' root
/// filesystems and shm, the pods' network namespaces), deepest first.
fn node_mounts(root: &Path) -> Vec<String> {
    let root_text = root.display().to_string();
    let mut mounts: Vec<String> = fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split(' ').nth(4).map(unescape_mount_path))
        .filter(|m| {
            m.starts_with(&root_text)
                || m.starts_with("/run/netns/cni-")
                || m.starts_with("/var/run/netns/cni-")
                || m.starts_with("/run/containerd/")
        })
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.matches('/').count()));
    mounts.dedup();
    mounts
}

/// Undoes every change a node makes to the host. Safe to run when there is nothing to undo.
fn cleanup_host(root: &Path) {
    for _ in 0..20 {
        let pids = node_processes(root);
        if pids.is_empty() {
            break;
        }
        let mut args = vec!["kill", "-KILL"];
        args.extend(pids.iter().map(String::as_str));
        quietly(&args);
        std::thread::sleep(Duration::from_millis(100));
    }
    kill_pod_processes();
    for dir in pod_cgroups() {
        let _ = fs::remove_dir(dir);
    }

    // Mounts: the kubelet's volumes and its root, containers' root filesystems and shm, the
    // pods' network namespaces. Deepest first.
    for mount in &node_mounts(root) {
        quietly(&["umount", "-l", mount]);
    }
    let _ = fs::remove_dir_all(root);
    for dir in ["/run/netns"] {
        if let Ok(entries) = fs::read_dir(dir) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with("cni-") {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
        let _ = fs::remove_dir(dir);
    }
    for dir in [
        "/run/containerd/s",
        "/run/containerd/fifo",
        "/run/containerd/runc",
        "/run/containerd/io.containerd.runtime.v2.task",
    ] {
        let _ = fs::remove_dir_all(dir);
    }
    let _ = fs::remove_dir("/run/containerd");

    // CNI's cache of results for our network, and the directories if nothing else is in them.
    for dir in [CNI_RESULTS, "/var/lib/cni/networks"] {
        if let Ok(entries) = fs::read_dir(dir) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with(CNI_NETWORK) {
                    let _ = fs::remove_dir_all(entry.path());
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
        let _ = fs::remove_dir(dir);
    }
    let _ = fs::remove_dir("/var/lib/cni");
    // The kubelet's links to its pods' logs, and the fixed directories it makes.
    if let Ok(entries) = fs::read_dir("/var/log/containers") {
        for entry in entries.flatten() {
            let target = fs::read_link(entry.path()).unwrap_or_default();
            if target.starts_with(root) || !entry.path().exists() {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
    let _ = fs::remove_dir("/var/log/containers");
    let _ = fs::remove_dir("/var/log/pods");
    for dir in [
        "device-plugins",
        "pod-resources",
        "plugins",
        "plugins_registry",
    ] {
        let _ = fs::remove_dir_all(Path::new("/var/lib/kubelet").join(dir));
    }
    let _ = fs::remove_dir("/var/lib/kubelet");

    // iptables: the rules that jump to kube-proxy's, the kubelet's and CNI's chains, then the
    // chains themselves.
    for iptables in ["iptables", "ip6tables"] {
        for table in ["filter", "nat", "mangle"] {
            remove_chains(iptables, table);
        }
    }
    quietly(&["ip", "link", "del", BRIDGE]);
    quietly(&["conntrack", "-D", "-s", POD_CIDR]);
}

fn remove_chains(iptables: &str, table: &str) {
    let ours = |chain: &str| chain.starts_with("KUBE-") || chain.starts_with("CNI-");
    let rules = quietly(&[iptables, "-w", "-t", table, "-S"]);
    for rule in rules.lines() {
        let Some(rest) = rule.strip_prefix("-A ") else {
            continue;
        };
        let chain = rest.split(' ').next().unwrap_or_default();
        let target = rest
            .split(" -j ")
            .nth(1)
            .and_then(|t| t.split(' ').next())
            .unwrap_or_default();
        if !ours(chain) && ours(target) {
            // `-S` prints rules quoted the way a shell reads them.
            quietly(&["sh", "-c", &format!("{iptables} -w -t {table} -D {rest}")]);
        }
    }
    let chains: Vec<String> = rules
        .lines()
        .filter_map(|l| l.strip_prefix("-N "))
        .filter(|c| ours(c))
        .map(str::to_owned)
        .collect();
    for chain in &chains {
        quietly(&[iptables, "-w", "-t", table, "-F", chain]);
    }
    for chain in &chains {
        quietly(&[iptables, "-w", "-t", table, "-X", chain]);
    }
}

/// Mount points in mountinfo escape space, tab, newline and backslash as octal.
fn unescape_mount_path(raw: &str) -> String {
    let mut out = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let code: String = chars.by_ref().take(3).collect();
            if let Ok(byte) = u8::from_str_radix(&code, 8) {
                out.push(char::from(byte));
                continue;
            }
            out.push(c);
            out.push_str(&code);
        } else {
            out.push(c);
        }
    }
    out
}
