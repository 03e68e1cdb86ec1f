//! A real, throwaway Kubernetes control plane for tests: etcd and kube-apiserver (and
//! optionally kube-controller-manager) started from `$SLOGATE_TOOLS/bin` on free loopback
//! ports, the way controller-runtime's envtest does it.
//!
//! Authentication is a static admin token (group `system:masters`); authorization is RBAC,
//! so service-account tokens from the TokenRequest API are held to their Roles. Admission
//! runs the API server's default plugins, Pod Security among them. There is no kubelet: pods
//! are stored and admitted, never run.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;

use crate::Connection;

pub mod node;
pub mod oci;

/// Why the control plane could not be started.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// A binary is not installed.
    #[error("{tool} not found at {}: run scripts/setup.sh (or `make setup`) to install it", path.display())]
    MissingTool {
        /// The binary's name.
        tool: &'static str,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// A file or process operation failed.
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// A component exited or did not become ready in time.
    #[error("{tool} did not become ready: {reason}\n--- last lines of its log ---\n{log_tail}")]
    NotReady {
        /// The component.
        tool: &'static str,
        /// What was seen.
        reason: String,
        /// The end of its log.
        log_tail: String,
    },
    /// A client could not be built for the started API server.
    #[error("cannot connect to the test API server")]
    Client(#[source] Box<crate::Error>),
    /// The service-account signing key could not be generated.
    #[error("cannot generate the service-account signing key")]
    Key,
    /// A CRD manifest is not there: scripts/setup.sh fetches them.
    #[error("CRD manifest {} not found: run `scripts/setup.sh crds` to fetch it", path.display())]
    MissingCrd {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// A CRD manifest is not YAML CustomResourceDefinitions.
    #[error("{} does not hold CustomResourceDefinitions: {reason}", path.display())]
    CrdManifest {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The API server refused a CRD.
    #[error("cannot create CustomResourceDefinition {name}")]
    CrdCreate {
        /// The CRD's name.
        name: String,
        /// Why.
        #[source]
        source: Box<kube::Error>,
    },
    /// The API server refused an object the test set up (a namespace, an account, a Role).
    #[error("cannot create {what}")]
    Setup {
        /// The object.
        what: String,
        /// Why.
        #[source]
        source: Box<kube::Error>,
    },
    /// A CRD did not become Established in time.
    #[error("CustomResourceDefinition {name} is not Established: {last}")]
    CrdNotEstablished {
        /// The CRD's name.
        name: String,
        /// Its last Established condition, or what went wrong reading it.
        last: String,
    },
}

fn setup(what: String) -> impl FnOnce(kube::Error) -> HarnessError {
    move |source| HarnessError::Setup {
        what,
        source: Box::new(source),
    }
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> HarnessError {
    let what = what.into();
    move |source| HarnessError::Io { what, source }
}

/// The directory the test tools are installed in: `$SLOGATE_TOOLS/bin`, by default
/// `~/.cache/slogate-tools/bin` (where `scripts/setup.sh` puts them).
pub fn tools_bin() -> PathBuf {
    let root = std::env::var_os("SLOGATE_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_default();
            Path::new(&home).join(".cache/slogate-tools")
        });
    root.join("bin")
}

/// A CRD manifest that `scripts/setup.sh` fetched into `$SLOGATE_TOOLS/crds/`:
/// `gateway-api-httproutes.yaml` (Gateway API HTTPRoute), `istio.yaml` (every Istio CRD,
/// VirtualService among them) or `knative-serving-services.yaml` (Knative Service).
pub fn crd_manifest(name: &str) -> PathBuf {
    tools_bin()
        .parent()
        .map(|root| root.join("crds").join(name))
        .unwrap_or_else(|| PathBuf::from(name))
}

/// The slo-pr chart in this source tree.
pub fn chart_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../charts/slo-pr")
}

/// The `--set` flags of the slo-pr tutorial's `helm upgrade` command after `URL`: its three
/// limits and its promotion settings. Tests add `URL` (and anything else) themselves.
pub const TUTORIAL_SETS: &[&str] = &[
    "--set",
    "limitMeanLatency=50.0",
    "--set",
    "limitErrorRate=0.0",
    "--set",
    "limit95thPercentileLatency=100.0",
    "--set",
    "owner=me",
    "--set",
    "repo=app",
    "--set",
    "base=master",
    "--set",
    "head=staging",
];

/// Object metadata with a name and, for namespaced objects, a namespace.
pub fn meta(name: &str, namespace: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: namespace.map(str::to_owned),
        ..ObjectMeta::default()
    }
}

/// A namespace that enforces the `restricted` Pod Security Standard, as `staging` does in
/// the tutorial.
pub fn restricted_namespace(name: &str) -> Namespace {
    let mut namespace = Namespace {
        metadata: meta(name, None),
        ..Namespace::default()
    };
    namespace.metadata.labels = Some(BTreeMap::from([(
        "pod-security.kubernetes.io/enforce".to_owned(),
        "restricted".to_owned(),
    )]));
    namespace
}

/// The path of an installed tool, or [`HarnessError::MissingTool`].
pub fn tool(name: &'static str) -> Result<PathBuf, HarnessError> {
    let path = tools_bin().join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(HarnessError::MissingTool { tool: name, path })
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; the component binds it right after).
fn free_port() -> Result<u16, HarnessError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io("cannot find a free port"))?;
    let port = listener
        .local_addr()
        .map_err(io("cannot find a free port"))?
        .port();
    Ok(port)
}

/// A child process that is killed when dropped, with its output in a log file.
struct Process {
    tool: &'static str,
    child: Child,
    log: PathBuf,
}

impl Process {
    fn spawn(tool: &'static str, args: &[String], dir: &Path) -> Result<Self, HarnessError> {
        let bin = self::tool(tool)?;
        Self::spawn_at(tool, &bin, args, dir)
    }

    /// Like [`Process::spawn`], for the binary at `bin`.
    fn spawn_at(
        tool: &'static str,
        bin: &Path,
        args: &[String],
        dir: &Path,
    ) -> Result<Self, HarnessError> {
        let log = dir.join(format!("{tool}.log"));
        let out = fs::File::create(&log).map_err(io(format!("cannot create {}", log.display())))?;
        let err = out.try_clone().map_err(io("cannot duplicate a log file"))?;
        let child = Command::new(bin)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(io(format!("cannot start {}", bin.display())))?;
        Ok(Self { tool, child, log })
    }

    fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = fs::File::open(&self.log) {
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            let _ = f.seek(SeekFrom::Start(len.saturating_sub(4000)));
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    fn not_ready(&mut self, reason: impl Into<String>) -> HarnessError {
        HarnessError::NotReady {
            tool: self.tool,
            reason: reason.into(),
            log_tail: self.log_tail(),
        }
    }

    /// Fails if the process has exited.
    fn check_alive(&mut self) -> Result<(), HarnessError> {
        match self.child.try_wait() {
            Ok(Some(status)) => Err(self.not_ready(format!("it exited with {status}"))),
            _ => Ok(()),
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running etcd + kube-apiserver, torn down on drop.
pub struct ControlPlane {
    // Field order is drop order: stop the controller manager and the API server before etcd,
    // and all of them before their directory goes.
    controller_manager: Option<Process>,
    apiserver: Process,
    etcd: Process,
    dir: tempfile::TempDir,
    url: String,
    ca_pem: String,
    admin_kubeconfig: PathBuf,
}

/// The static token of the test's cluster admin.
const ADMIN_TOKEN: &str = "slogate-test-admin-token";
/// Issuer of service-account tokens.
const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// Where and how the API server of a [`ControlPlane`] listens.
#[derive(Debug, Default)]
struct PlaneOptions {
    /// Serve on this address and port, advertised to clients (default: a free loopback port).
    serve: Option<(std::net::Ipv4Addr, u16)>,
    /// More lines for the static token file (`token,user,uid,"group1,group2"`).
    extra_tokens: String,
    /// Create the scratch directory under this one (default: the system's temporary directory).
    dir_in: Option<PathBuf>,
    /// Run as a node's control plane: Node authorization and NodeRestriction, the
    /// `kubernetes` Service's endpoints kept, the kubelet reached by its InternalIP.
    for_node: bool,
}

impl ControlPlane {
    /// Starts etcd and kube-apiserver and waits until `/readyz` answers `ok`.
    pub async fn start() -> Result<Self, HarnessError> {
        Self::start_with(PlaneOptions::default()).await
    }

    async fn start_with(options: PlaneOptions) -> Result<Self, HarnessError> {
        // Look for both binaries first so a missing one is reported before anything starts.
        tool("etcd")?;
        tool("kube-apiserver")?;
        let mut builder = tempfile::Builder::new();
        builder.prefix("slogate-control-plane-");
        let dir = match &options.dir_in {
            Some(parent) => builder.tempdir_in(parent),
            None => builder.tempdir(),
        }
        .map_err(io("cannot create a temporary directory"))?;
        let root = dir.path().to_owned();

        let (client_port, peer_port) = (free_port()?, free_port()?);
        let etcd_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let mut etcd = Process::spawn(
            "etcd",
            &[
                format!("--data-dir={}", root.join("etcd").display()),
                format!("--listen-client-urls={etcd_url}"),
                format!("--advertise-client-urls={etcd_url}"),
                format!("--listen-peer-urls={peer_url}"),
                format!("--initial-advertise-peer-urls={peer_url}"),
                format!("--initial-cluster=default={peer_url}"),
                "--name=default".to_owned(),
            ],
            &root,
        )?;
        wait_for_port(&mut etcd, client_port, Duration::from_secs(30))?;

        let (private_pem, public_pem) = service_account_keys()?;
        let key = root.join("service-account.key");
        let public_key = root.join("service-account.pub");
        fs::write(&key, private_pem).map_err(io("cannot write the signing key"))?;
        fs::write(&public_key, public_pem).map_err(io("cannot write the verifying key"))?;
        let tokens = root.join("tokens.csv");
        fs::write(
            &tokens,
            format!(
                "{ADMIN_TOKEN},admin,admin,system:masters\n{}",
                options.extra_tokens
            ),
        )
        .map_err(io("cannot write the token file"))?;
        let certs = root.join("certs");
        let (address, port) = match options.serve {
            Some(serve) => serve,
            None => (std::net::Ipv4Addr::LOCALHOST, free_port()?),
        };
        let mut args = vec![
            format!("--etcd-servers={etcd_url}"),
            format!("--secure-port={port}"),
            format!("--bind-address={address}"),
            format!("--advertise-address={address}"),
            format!("--cert-dir={}", certs.display()),
            format!("--token-auth-file={}", tokens.display()),
            format!("--service-account-issuer={ISSUER}"),
            format!("--service-account-key-file={}", public_key.display()),
            format!("--service-account-signing-key-file={}", key.display()),
            // Without a node nothing is ever sent to this range; with one, kube-proxy routes it.
            "--service-cluster-ip-range=10.0.0.0/24".to_owned(),
        ];
        if options.for_node {
            args.extend([
                "--authorization-mode=Node,RBAC".to_owned(),
                "--enable-admission-plugins=NodeRestriction".to_owned(),
                // Else `kubectl logs` looks the node's name up in DNS.
                "--kubelet-preferred-address-types=InternalIP".to_owned(),
            ]);
        } else {
            args.extend([
                "--authorization-mode=RBAC".to_owned(),
                // The `kubernetes` Service's endpoints would be the loopback address, which
                // endpoint validation refuses.
                "--endpoint-reconciler-type=none".to_owned(),
            ]);
        }
        let mut apiserver = Process::spawn("kube-apiserver", &args, &root)?;
        let url = format!("https://{address}:{port}");
        let cert = certs.join("apiserver.crt");
        let started = Instant::now();
        let ca_pem = loop {
            apiserver.check_alive()?;
            if let Ok(pem) = fs::read_to_string(&cert)
                && pem.contains("END CERTIFICATE")
            {
                break pem;
            }
            if started.elapsed() > Duration::from_secs(60) {
                return Err(
                    apiserver.not_ready(format!("no serving certificate at {}", cert.display()))
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let admin_kubeconfig = root.join("admin.kubeconfig");
        write_kubeconfig(&admin_kubeconfig, &url, &ca_pem, ADMIN_TOKEN, "default")
            .map_err(io("cannot write the admin kubeconfig"))?;

        let mut plane = Self {
            controller_manager: None,
            apiserver,
            etcd,
            dir,
            url,
            ca_pem,
            admin_kubeconfig,
        };
        plane.wait_ready(Duration::from_secs(120)).await?;
        plane.etcd.check_alive()?;
        Ok(plane)
    }

    async fn wait_ready(&mut self, limit: Duration) -> Result<(), HarnessError> {
        let client = self.client().await?;
        let started = Instant::now();
        loop {
            self.apiserver.check_alive()?;
            let request = http::Request::get("/readyz")
                .body(Vec::new())
                .expect("a valid request");
            let last = match client.request_text(request).await {
                Ok(body) if body.trim() == "ok" => return Ok(()),
                Ok(body) => body,
                Err(err) => err.to_string(),
            };
            if started.elapsed() > limit {
                return Err(self
                    .apiserver
                    .not_ready(format!("/readyz still says: {last}")));
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Also starts kube-controller-manager with the Job and garbage-collector controllers,
    /// so Jobs get Pods and owned objects go with their owners.
    pub async fn start_controller_manager(&mut self) -> Result<(), HarnessError> {
        let root = self.dir.path();
        let mut cm = Process::spawn(
            "kube-controller-manager",
            &[
                format!("--kubeconfig={}", self.admin_kubeconfig.display()),
                "--controllers=job-controller,garbage-collector-controller,ttl-after-finished-controller".to_owned(),
                "--leader-elect=false".to_owned(),
                "--bind-address=127.0.0.1".to_owned(),
                format!("--secure-port={}", free_port()?),
                format!("--cert-dir={}", root.join("controller-manager-certs").display()),
            ],
            root,
        )?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        cm.check_alive()?;
        self.controller_manager = Some(cm);
        Ok(())
    }

    /// Whether kube-controller-manager is installed.
    pub fn controller_manager_installed() -> bool {
        tool("kube-controller-manager").is_ok()
    }

    /// The API server's URL (`https://127.0.0.1:PORT`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The port the API server listens on.
    pub fn port(&self) -> u16 {
        self.url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0)
    }

    /// PEM of the API server's serving certificate chain, to trust it.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The cluster admin's kubeconfig.
    pub fn admin_kubeconfig(&self) -> &Path {
        &self.admin_kubeconfig
    }

    /// A scratch directory that lives as long as the control plane.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A client authenticated as the cluster admin.
    pub async fn client(&self) -> Result<Client, HarnessError> {
        Connection::infer(Some(&self.admin_kubeconfig))
            .await
            .map(|c| c.client)
            .map_err(|e| HarnessError::Client(Box::new(e)))
    }

    /// Writes a kubeconfig at `path` for this API server with a bearer `token` (e.g. a
    /// service account's) and `namespace` as the default.
    pub fn write_kubeconfig(
        &self,
        path: &Path,
        token: &str,
        namespace: &str,
    ) -> std::io::Result<()> {
        write_kubeconfig(path, &self.url, &self.ca_pem, token, namespace)
    }

    /// Runs the real `helm` against this API server as the cluster admin: Ok(stdout) or
    /// Err(stderr). Panics (failing the test) if helm is not installed.
    pub fn helm(&self, args: &[&str]) -> Result<String, String> {
        let helm = tool("helm").unwrap_or_else(|e| panic!("{e}"));
        let out = Command::new(helm)
            .args(args)
            .env("KUBECONFIG", &self.admin_kubeconfig)
            .env("HELM_CACHE_HOME", self.dir.path().join("helm/cache"))
            .env("HELM_CONFIG_HOME", self.dir.path().join("helm/config"))
            .env("HELM_DATA_HOME", self.dir.path().join("helm/data"))
            .output()
            .unwrap_or_else(|e| panic!("cannot run helm: {e}"));
        let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
        if out.status.success() {
            Ok(text(out.stdout))
        } else {
            Err(text(out.stderr))
        }
    }

    /// A short-lived token for service account `name` in `namespace`, from the TokenRequest
    /// API: what the kubelet would mount into the pod.
    pub async fn service_account_token(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<String, kube::Error> {
        use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
        use k8s_openapi::api::core::v1::ServiceAccount;
        let client = self
            .client()
            .await
            .map_err(|e| kube::Error::Service(e.into()))?;
        let api: kube::Api<ServiceAccount> = kube::Api::namespaced(client, namespace);
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: Vec::new(),
                expiration_seconds: Some(3600),
                bound_object_ref: None,
            },
            ..TokenRequest::default()
        };
        let answer = api
            .create_token_request(name, &Default::default(), &request)
            .await?;
        Ok(answer.status.map(|s| s.token).unwrap_or_default())
    }

    /// Creates the CustomResourceDefinitions in YAML `files` (any number of documents each;
    /// one already there is left as it is) and waits until every one is Established.
    pub async fn install_crds(&self, files: &[PathBuf]) -> Result<(), HarnessError> {
        use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
        let mut crds = Vec::new();
        for path in files {
            let text = fs::read_to_string(path)
                .map_err(|_| HarnessError::MissingCrd { path: path.clone() })?;
            let bad = |reason: String| HarnessError::CrdManifest {
                path: path.clone(),
                reason,
            };
            let docs: Vec<Option<serde_json::Value>> =
                serde_saphyr::from_multiple(&text).map_err(|e| bad(e.to_string()))?;
            for doc in docs.into_iter().flatten() {
                if doc.get("kind").and_then(|k| k.as_str()) != Some("CustomResourceDefinition") {
                    continue;
                }
                let crd: CustomResourceDefinition =
                    serde_json::from_value(doc).map_err(|e| bad(e.to_string()))?;
                crds.push(crd);
            }
        }
        let api: kube::Api<CustomResourceDefinition> = kube::Api::all(self.client().await?);
        for crd in &crds {
            let name = crd.metadata.name.clone().unwrap_or_default();
            match api.create(&Default::default(), crd).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.is_already_exists() => {}
                Err(source) => {
                    return Err(HarnessError::CrdCreate {
                        name,
                        source: Box::new(source),
                    });
                }
            }
        }
        let started = Instant::now();
        for crd in &crds {
            let name = crd.metadata.name.clone().unwrap_or_default();
            loop {
                let last = match api.get(&name).await {
                    Ok(found) => {
                        let established = found
                            .status
                            .and_then(|s| s.conditions)
                            .unwrap_or_default()
                            .into_iter()
                            .find(|c| c.type_ == "Established");
                        match established {
                            Some(c) if c.status == "True" => break,
                            Some(c) => format!(
                                "{} {}",
                                c.reason.unwrap_or_default(),
                                c.message.unwrap_or_default()
                            ),
                            None => "no Established condition yet".to_owned(),
                        }
                    }
                    Err(err) => err.to_string(),
                };
                if started.elapsed() > Duration::from_secs(60) {
                    return Err(HarnessError::CrdNotEstablished { name, last });
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Ok(())
    }

    /// Creates namespace `name`, with no labels.
    pub async fn create_namespace(&self, name: &str) -> Result<(), HarnessError> {
        use k8s_openapi::api::core::v1::Namespace;
        let admin = self.client().await?;
        let namespace = Namespace {
            metadata: meta(name, None),
            ..Namespace::default()
        };
        kube::Api::<Namespace>::all(admin)
            .create(&Default::default(), &namespace)
            .await
            .map_err(setup(format!("namespace {name}")))?;
        Ok(())
    }

    /// Service account `name` in `ns`, bound to a Role of the same name holding `rules`, and
    /// a client holding its token: what a pod running as that account can do.
    pub async fn service_account_client(
        &self,
        ns: &str,
        name: &str,
        rules: Vec<k8s_openapi::api::rbac::v1::PolicyRule>,
    ) -> Result<Client, HarnessError> {
        let path = self.service_account_kubeconfig(ns, name, rules).await?;
        Connection::infer(Some(&path))
            .await
            .map(|c| c.client)
            .map_err(|e| HarnessError::Client(Box::new(e)))
    }

    /// As [`ControlPlane::service_account_client`], but the kubeconfig file holding the
    /// account's token, for a process to run as that account.
    pub async fn service_account_kubeconfig(
        &self,
        ns: &str,
        name: &str,
        rules: Vec<k8s_openapi::api::rbac::v1::PolicyRule>,
    ) -> Result<PathBuf, HarnessError> {
        use k8s_openapi::api::core::v1::ServiceAccount;
        use k8s_openapi::api::rbac::v1::{Role, RoleBinding, RoleRef, Subject};
        let admin = self.client().await?;
        let post = kube::api::PostParams::default();
        let account = ServiceAccount {
            metadata: meta(name, Some(ns)),
            ..ServiceAccount::default()
        };
        kube::Api::<ServiceAccount>::namespaced(admin.clone(), ns)
            .create(&post, &account)
            .await
            .map_err(setup(format!("service account {ns}/{name}")))?;
        let role = Role {
            metadata: meta(name, Some(ns)),
            rules: Some(rules),
        };
        kube::Api::<Role>::namespaced(admin.clone(), ns)
            .create(&post, &role)
            .await
            .map_err(setup(format!("Role {ns}/{name}")))?;
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
        kube::Api::<RoleBinding>::namespaced(admin, ns)
            .create(&post, &binding)
            .await
            .map_err(setup(format!("RoleBinding {ns}/{name}")))?;
        let token = self
            .service_account_token(ns, name)
            .await
            .map_err(setup(format!("a token for {ns}/{name}")))?;
        let path = self.dir().join(format!("{ns}-{name}.kubeconfig"));
        self.write_kubeconfig(&path, &token, ns)
            .map_err(io(format!("cannot write {}", path.display())))?;
        Ok(path)
    }

    /// The last lines of the API server's log, for a failing test's message.
    pub fn apiserver_log_tail(&self) -> String {
        self.apiserver.log_tail()
    }
}

fn write_kubeconfig(
    path: &Path,
    url: &str,
    ca_pem: &str,
    token: &str,
    namespace: &str,
) -> std::io::Result<()> {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let text = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: {url}
    certificate-authority-data: {ca}
users:
- name: test
  user:
    token: {token}
contexts:
- name: test
  context:
    cluster: test
    user: test
    namespace: {namespace}
current-context: test
"
    );
    fs::write(path, text)
}

/// An ECDSA P-256 key pair as PEM: the private key (PKCS#8) kube-apiserver signs
/// service-account tokens with, and its public key (SubjectPublicKeyInfo) it verifies them with.
fn service_account_keys() -> Result<(String, String), HarnessError> {
    use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
        .map_err(|_| HarnessError::Key)?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|_| HarnessError::Key)?;
    // DER header of a SubjectPublicKeyInfo for id-ecPublicKey on prime256v1, followed by the
    // 65-byte uncompressed point.
    const P256_SPKI_PREFIX: [u8; 26] = [
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08,
        0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ];
    let mut spki = P256_SPKI_PREFIX.to_vec();
    spki.extend_from_slice(pair.public_key().as_ref());
    Ok((pem("PRIVATE KEY", pkcs8.as_ref()), pem("PUBLIC KEY", &spki)))
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut text = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        text.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        text.push('\n');
    }
    text.push_str(&format!("-----END {label}-----\n"));
    text
}

fn wait_for_port(process: &mut Process, port: u16, limit: Duration) -> Result<(), HarnessError> {
    let started = Instant::now();
    loop {
        process.check_alive()?;
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if started.elapsed() > limit {
            return Err(process.not_ready(format!("nothing listens on 127.0.0.1:{port}")));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
