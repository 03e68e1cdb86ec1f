//! A real Prometheus for tests: `/usr/bin/prometheus` (Debian's package) started per test
//! with its own configuration and storage in a temporary directory, on a free loopback
//! port, scraping an [`Exporter`] every second. The exporter serves Knative's revision
//! metrics (`revision_app_request_latencies_{bucket,sum,count}` in ms by `revision_name`
//! and `response_code_class`, as the Iter8 Knative tutorial queries them) and a gauge, for
//! revisions whose traffic a test chooses; its counters grow as if that traffic flowed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The buckets of the latency histogram, in ms (Knative's are of this kind).
pub const BUCKETS_MS: [f64; 8] = [5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0];

/// The traffic one revision serves, as its metrics show it.
#[derive(Debug, Clone)]
pub struct Traffic {
    /// Requests per second.
    pub rps: f64,
    /// Share of the requests answered 5xx.
    pub error_fraction: f64,
    /// Share of the requests in each bucket of [`BUCKETS_MS`] (not cumulative; the rest is
    /// above the last bucket).
    pub bucket_shares: [f64; 8],
    /// The mean latency in ms.
    pub mean_ms: f64,
    /// A gauge the revision reports (`app_memory_bytes`).
    pub memory_bytes: f64,
}

impl Traffic {
    /// A good revision: 400 requests/s, no errors, 90 % within 25 ms and all within 50 ms, mean 12 ms.
    pub fn good() -> Self {
        Self {
            rps: 400.0,
            error_fraction: 0.0,
            bucket_shares: [0.3, 0.3, 0.3, 0.1, 0.0, 0.0, 0.0, 0.0],
            mean_ms: 12.0,
            memory_bytes: 50e6,
        }
    }
}

#[derive(Debug, Default, Clone)]
struct Counters {
    ok: f64,
    errors: f64,
    sum_ms: f64,
    buckets: [f64; 8],
    inf: f64,
}

#[derive(Default)]
struct State {
    revisions: BTreeMap<String, (Traffic, Counters)>,
}

/// Serves `/metrics` in Prometheus' text format on a loopback port.
pub struct Exporter {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Exporter {
    /// An exporter for these revisions (name → traffic), their counters growing from 0.
    pub async fn start(revisions: &[(&str, Traffic)]) -> Self {
        let state = Arc::new(Mutex::new(State {
            revisions: revisions
                .iter()
                .map(|(n, t)| (n.to_string(), (t.clone(), Counters::default())))
                .collect(),
        }));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let serving = state.clone();
        let server = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let text = render(&serving.lock().unwrap());
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let mut read = 0;
                    while !buf[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf[read..]).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => read += n,
                        }
                        if read == buf.len() {
                            return;
                        }
                    }
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        text.len()
                    );
                    let _ = stream.write_all(head.as_bytes()).await;
                    let _ = stream.write_all(text.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        let growing = state.clone();
        let ticker = tokio::spawn(async move {
            let step = Duration::from_millis(100);
            let mut tick = tokio::time::interval(step);
            loop {
                tick.tick().await;
                let mut s = growing.lock().unwrap();
                for (t, c) in s.revisions.values_mut() {
                    let n = t.rps * step.as_secs_f64();
                    c.errors += n * t.error_fraction;
                    c.ok += n * (1.0 - t.error_fraction);
                    c.sum_ms += n * t.mean_ms;
                    let mut cumulative = 0.0;
                    for (i, share) in t.bucket_shares.iter().enumerate() {
                        cumulative += share;
                        c.buckets[i] += n * cumulative.min(1.0);
                    }
                    c.inf += n;
                }
            }
        });
        Self {
            addr,
            state,
            tasks: vec![server, ticker],
        }
    }

    /// Where Prometheus scrapes it (`127.0.0.1:PORT`).
    pub fn target(&self) -> String {
        self.addr.to_string()
    }

    /// Changes a revision's traffic from now on.
    pub fn set(&self, revision: &str, traffic: Traffic) {
        let mut s = self.state.lock().unwrap();
        if let Some(entry) = s.revisions.get_mut(revision) {
            entry.0 = traffic;
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The metrics text: counters rounded down to whole requests, as a real counter is.
fn render(state: &State) -> String {
    let mut out = String::new();
    out.push_str("# TYPE revision_app_request_latencies histogram\n");
    for (name, (_, c)) in &state.revisions {
        for (class, count) in [("2xx", c.ok), ("5xx", c.errors)] {
            let share = if c.inf > 0.0 { count / c.inf } else { 0.0 };
            let labels = format!("revision_name=\"{name}\",response_code_class=\"{class}\"");
            for (le, b) in BUCKETS_MS.iter().zip(c.buckets) {
                out.push_str(&format!(
                    "revision_app_request_latencies_bucket{{{labels},le=\"{le}\"}} {}\n",
                    (b * share).floor()
                ));
            }
            out.push_str(&format!(
                "revision_app_request_latencies_bucket{{{labels},le=\"+Inf\"}} {}\n",
                count.floor()
            ));
            out.push_str(&format!(
                "revision_app_request_latencies_sum{{{labels}}} {}\n",
                c.sum_ms * share
            ));
            out.push_str(&format!(
                "revision_app_request_latencies_count{{{labels}}} {}\n",
                count.floor()
            ));
        }
    }
    out.push_str("# TYPE app_memory_bytes gauge\n");
    for (name, (t, _)) in &state.revisions {
        out.push_str(&format!(
            "app_memory_bytes{{revision_name=\"{name}\"}} {}\n",
            t.memory_bytes
        ));
    }
    out
}

/// A free loopback port (bound and released at once).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A Prometheus server of this test, stopped when dropped.
pub struct Prometheus {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
    log: PathBuf,
    /// Serving https: the PEM file of the certificate to trust.
    ca_file: Option<PathBuf>,
}

/// Where Debian's package installs the server.
pub const PROMETHEUS_BIN: &str = "/usr/bin/prometheus";

impl Prometheus {
    /// Starts Prometheus scraping `target` every second and waits until it is ready and has
    /// scraped the target at least twice (so `increase` over a window has two points).
    pub async fn start(target: &str) -> Self {
        Self::start_with(target, false).await
    }

    /// [`Prometheus::start`] serving https with a fresh self-signed certificate for
    /// `127.0.0.1` ([`Prometheus::ca_file`]), through Prometheus' web configuration file.
    pub async fn start_tls(target: &str) -> Self {
        Self::start_with(target, true).await
    }

    /// The certificate to trust, when it serves https.
    pub fn ca_file(&self) -> Option<&std::path::Path> {
        self.ca_file.as_deref()
    }

    async fn start_with(target: &str, tls: bool) -> Self {
        assert!(
            std::path::Path::new(PROMETHEUS_BIN).exists(),
            "{PROMETHEUS_BIN} is missing: scripts/setup.sh installs Debian's prometheus package"
        );
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let log = dir.path().join("prometheus.log");
        let port = free_port();
        let mut command = Command::new(PROMETHEUS_BIN);
        let mut ca_file = None;
        if tls {
            let rcgen::CertifiedKey { cert, signing_key } =
                rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
            let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
            std::fs::write(&cert_file, cert.pem()).unwrap();
            std::fs::write(&key_file, signing_key.serialize_pem()).unwrap();
            let web = dir.path().join("web.yml");
            std::fs::write(
                &web,
                format!(
                    "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
                    cert_file.display(),
                    key_file.display()
                ),
            )
            .unwrap();
            command.arg(format!("--web.config.file={}", web.display()));
            ca_file = Some(cert_file);
        }
        let child = command
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("prometheus starts");
        let prometheus = Self {
            child,
            port,
            _dir: dir,
            log,
            ca_file,
        };
        prometheus.wait_ready().await;
        prometheus
    }

    /// Its base URL (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        let scheme = if self.ca_file.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    async fn wait_ready(&self) {
        let client = slogate_prometheus::Client::new(
            &self.url(),
            self.ca_file.as_deref(),
            None,
            Duration::from_secs(2),
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(
                Instant::now() < deadline,
                "Prometheus did not get ready with two scrapes in 60 s: {}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            let scrapes = client
                .instant("count_over_time(up{job=\"app\"}[1m])", SystemTime::now())
                .await
                .ok()
                .and_then(|s| slogate_prometheus::single_value(&s).ok());
            if scrapes.is_some_and(|n| n >= 2.0) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
