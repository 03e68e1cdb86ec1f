//! `slogate load`: an ad-hoc load test of one URL, printed as text or JSON.
//!
//! Flags are checked by clap's value parsers (each error names its flag and exits 64), then
//! turned into a [`LoadSpec`] and checked by the same rules as a spec's `load:` section into
//! the [`slogate_core::spec::LoadSettings`] the engine takes; every problem names its flag.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::anyhow;
use slogate_core::metrics::Protocol;
use slogate_core::quote::quote;
use slogate_core::spec::{GrpcSpec, Header, LoadSpec, VersionSpec};
use slogate_loadgen::summary::{Summary, parse_percentiles};
use slogate_loadgen::{LoadError, LoadPlan, LoadProgress, Phase, RunOptions};
use tokio_util::sync::CancellationToken;

use crate::exit::{CmdResult, Failure};

/// How often a progress line is printed on stderr.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Flags of `slogate load`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The URL to load: http or https; grpc://HOST:PORT or grpcs://HOST:PORT for gRPC calls
    /// (with --proto and --call).
    url: String,
    /// gRPC: the .proto file that declares the service (compiled here; no protoc needed).
    #[arg(long, value_name = "FILE", help_heading = "gRPC")]
    proto: Option<PathBuf>,
    /// gRPC: a directory the proto file's imports are looked up in; repeat for more (its
    /// own directory is always searched).
    #[arg(long = "import-path", value_name = "DIR", help_heading = "gRPC")]
    import_paths: Vec<PathBuf>,
    /// gRPC: the unary method to call, package.Service/Method.
    #[arg(long, value_name = "METHOD", help_heading = "gRPC")]
    call: Option<String>,
    /// gRPC: the request message as JSON (protobuf's JSON mapping); default {}.
    #[arg(short = 'd', long, value_name = "JSON", value_parser = parse_json, help_heading = "gRPC")]
    data: Option<serde_json::Value>,
    /// gRPC: a metadata entry `key: value` sent with every call; repeat for more.
    #[arg(short = 'M', long = "metadata", value_name = "KEY: VALUE", value_parser = parse_header, help_heading = "gRPC")]
    metadata: Vec<Header>,
    /// Connections, each with one request in flight at a time (see --streams).
    #[arg(short = 'c', long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    connections: u32,
    /// With -q: the most connections to open when every one is busy at a request's due time
    /// (default the larger of 64 and -c). A run that needs more says it is saturated.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: Option<u32>,
    /// Total requests per second (open model, latency corrected for coordinated omission);
    /// without it, every connection sends as fast as responses come (closed model).
    #[arg(short = 'q', long, allow_negative_numbers = true, value_parser = parse_qps)]
    qps: Option<f64>,
    /// Stop after this many measured requests (default 100 unless -z is given).
    #[arg(short = 'n', long = "requests", value_name = "REQUESTS",
          conflicts_with = "duration", value_parser = clap::value_parser!(u64).range(1..))]
    requests: Option<u64>,
    /// Stop after this long, e.g. 30s or 2m.
    #[arg(short = 'z', long, value_name = "DURATION", value_parser = parse_positive_duration)]
    duration: Option<Duration>,
    /// HTTP method (default GET, or POST with a body).
    #[arg(short = 'm', long)]
    method: Option<String>,
    /// A request header `Name: value`; repeat for more.
    #[arg(short = 'H', long = "header", value_name = "HEADER", value_parser = parse_header)]
    headers: Vec<Header>,
    /// Request body.
    #[arg(long, conflicts_with = "body_file")]
    body: Option<String>,
    /// Request body read from a file.
    #[arg(long, value_name = "FILE")]
    body_file: Option<PathBuf>,
    /// Content-Type of the body.
    #[arg(long, value_name = "TYPE")]
    content_type: Option<String>,
    /// Per-request timeout.
    #[arg(long, default_value = "10s", value_parser = parse_positive_duration)]
    timeout: Duration,
    /// Use HTTP/2: ALPN on https, prior-knowledge h2c on http.
    #[arg(long)]
    http2: bool,
    /// With --http2: requests each connection keeps in flight at once, each on its own
    /// stream (closed model: -c × this many in flight in all).
    #[arg(long, value_name = "N", default_value_t = 1)]
    streams: u32,
    /// Load threads, each an event loop over its share of the connections (default: one
    /// per core). With the target on the same machine, fewer leave it more CPU.
    #[arg(short = 't', long, value_name = "N")]
    threads: Option<NonZeroUsize>,
    /// Send and discard this many requests before measuring.
    #[arg(long, value_name = "N", conflicts_with = "warmup")]
    warmup_requests: Option<u64>,
    /// Send and discard requests for this long before measuring.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    warmup: Option<Duration>,
    /// Also write what was measured (histograms in the HdrHistogram V2 encoding) to this
    /// file, the evidence a load pod publishes; `slogate merge` adds such files exactly.
    #[arg(long, value_name = "FILE")]
    evidence_out: Option<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Text)]
    output: Output,
    /// Latency percentiles to report, comma-separated (97.5 and p99.9 forms work).
    #[arg(short = 'p', long, default_value = "50,75,90,95,99,99.9", value_parser = parse_percentile_list)]
    percentiles: Percentiles,
}

/// Output formats of `slogate load`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Output {
    /// A summary for people.
    Text,
    /// The JSON summary (schemas/load-summary.schema.json).
    Json,
}

/// A parsed `--percentiles` list (a newtype, so clap takes it as one value).
#[derive(Debug, Clone)]
struct Percentiles(Vec<f64>);

fn parse_qps(text: &str) -> Result<f64, String> {
    let qps: f64 = text
        .parse()
        .map_err(|_| format!("{} is not a number", quote(text)))?;
    if qps.is_finite() && qps > 0.0 {
        Ok(qps)
    } else {
        Err("must be a positive number of requests per second".to_owned())
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    slogate_core::spec::parse_duration(text).map_err(|err| err.to_string())
}

fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        d if d.is_zero() => Err("must be longer than zero".to_owned()),
        d => Ok(d),
    }
}

fn parse_header(text: &str) -> Result<Header, String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("{} is not `Name: value`", quote(text)))?;
    let name = name.trim();
    if name.is_empty() {
        return Err(format!("{} has no header name", quote(text)));
    }
    Ok(Header {
        name: name.to_owned(),
        value: value.trim().to_owned(),
    })
}

fn parse_json(text: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(text).map_err(|err| format!("not JSON: {err}"))
}

fn parse_percentile_list(text: &str) -> Result<Percentiles, String> {
    match parse_percentiles(text) {
        Ok(list) => Ok(Percentiles(list)),
        Err(LoadError::Invalid { reason, .. }) => Err(reason),
        Err(other) => Err(other.to_string()),
    }
}

/// The second step of a field path: `call` of `grpc.call`.
fn field_path_rest(field: &str) -> &str {
    field.split_once('.').map_or("", |(_, rest)| {
        rest.split(['.', '[']).next().unwrap_or(rest)
    })
}

/// The flag behind a load setting (a field path of the load section), for error messages.
fn flag_of(path: &str) -> &'static str {
    let field = path.split(['.', '[']).next().unwrap_or(path);
    match field {
        "url" => "URL",
        "connections" => "-c/--connections",
        "maxConnections" => "--max-connections",
        "qps" => "-q/--qps",
        "numRequests" => "-n/--requests",
        "duration" => "-z/--duration",
        "method" => "-m/--method",
        "headers" => "-H/--header",
        "body" => "--body",
        "bodyFile" => "--body-file",
        "contentType" => "--content-type",
        "timeout" => "--timeout",
        "warmupRequests" => "--warmup-requests",
        "warmup" => "--warmup",
        "streams" => "--streams",
        "grpc" => match field_path_rest(path) {
            "proto" => "--proto",
            "call" => "--call",
            "data" => "-d/--data",
            "metadata" => "-M/--metadata",
            _ => "a gRPC flag",
        },
        _ => "a flag",
    }
}

impl Args {
    fn load_spec(&self) -> LoadSpec {
        LoadSpec {
            connections: self.connections,
            max_connections: self.max_connections,
            qps: self.qps,
            num_requests: self.requests,
            duration: self.duration,
            warmup_requests: self.warmup_requests,
            warmup: self.warmup,
            method: self.method.clone(),
            headers: self.headers.clone(),
            body: self.body.clone(),
            body_file: self.body_file.clone(),
            payload_url: None,
            content_type: self.content_type.clone(),
            timeout: self.timeout,
            http2: self.http2,
            streams: self.streams,
            ..LoadSpec::default()
        }
    }

    /// The gRPC call the flags describe, for a grpc:// or grpcs:// target; every flag that
    /// does not fit the target is a problem.
    fn grpc(&self) -> Result<Option<GrpcSpec>, Vec<String>> {
        let grpc_target = self.url.starts_with("grpc://") || self.url.starts_with("grpcs://");
        let given = [
            ("--proto", self.proto.is_some()),
            ("--call", self.call.is_some()),
            ("-d/--data", self.data.is_some()),
            ("-M/--metadata", !self.metadata.is_empty()),
            ("--import-path", !self.import_paths.is_empty()),
        ];
        if !grpc_target {
            let stray: Vec<String> = given
                .iter()
                .filter(|(_, set)| *set)
                .map(|(flag, _)| {
                    format!(
                        "{flag}: only for a gRPC target (grpc://HOST:PORT or grpcs://HOST:PORT)"
                    )
                })
                .collect();
            return if stray.is_empty() {
                Ok(None)
            } else {
                Err(stray)
            };
        }
        let mut problems = Vec::new();
        if self.proto.is_none() {
            problems.push("--proto: a gRPC target needs the service's .proto file".to_owned());
        }
        if self.call.is_none() {
            problems
                .push("--call: a gRPC target needs the method, package.Service/Method".to_owned());
        }
        for (flag, set) in [
            ("-m/--method", self.method.is_some()),
            ("--body", self.body.is_some()),
            ("--body-file", self.body_file.is_some()),
            ("--content-type", self.content_type.is_some()),
        ] {
            if set {
                problems.push(format!(
                    "{flag}: not for gRPC calls; the message is -d/--data"
                ));
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut metadata = BTreeMap::new();
        for entry in &self.metadata {
            metadata.insert(entry.name.to_ascii_lowercase(), entry.value.clone());
        }
        Ok(Some(GrpcSpec {
            proto: self.proto.clone().unwrap_or_default(),
            import_paths: self.import_paths.clone(),
            call: self.call.clone().unwrap_or_default(),
            data: self
                .data
                .clone()
                .unwrap_or_else(|| serde_json::Value::Object(Default::default())),
            metadata,
        }))
    }
}

/// Runs `slogate load`.
pub async fn run(args: Args) -> CmdResult {
    let mut problems = Vec::new();
    let grpc = args.grpc().unwrap_or_else(|stray| {
        problems.extend(stray);
        None
    });
    let version = VersionSpec {
        grpc,
        ..VersionSpec::new("target", args.url.clone())
    };
    let protocol = version.protocol();
    let mut load = args.load_spec();
    // gRPC runs on HTTP/2.
    load.http2 |= protocol == Protocol::Grpc;
    problems.extend(
        version
            .grpc_problems()
            .iter()
            .map(|p| format!("{}: {}", flag_of(&p.path), p.reason)),
    );
    let settings = load.settings();
    if let Err(load_problems) = &settings {
        problems.extend(
            load_problems
                .iter()
                .map(|p| format!("{}: {}", flag_of(&p.path), p.reason)),
        );
    }
    let settings = match settings {
        Ok(settings) if problems.is_empty() => settings,
        _ => return Err(Failure::Invalid(anyhow!("{}", problems.join("\n")))),
    };
    let plan = LoadPlan::new(&version, &settings)
        .await
        .map_err(|err| match err {
            LoadError::Invalid { field, reason } => {
                Failure::Invalid(anyhow!("{}: {reason}", flag_of(&field)))
            }
            LoadError::BodyFile { path, source } => Failure::Invalid(anyhow!(
                "--body-file: cannot read {}: {source}",
                path.display()
            )),
            LoadError::Grpc(err) => {
                let flag = flag_of(&format!("grpc.{}", err.field()));
                Failure::Invalid(anyhow!("{flag}: {:#}", anyhow::Error::new(err)))
            }
            other => Failure::Runtime(anyhow::Error::new(other)),
        })?;

    let stop = CancellationToken::new();
    let signals = tokio::spawn(stop_on_signal(stop.clone()));
    let (progress, watch) = tokio::sync::watch::channel(LoadProgress::default());
    let printer = tokio::spawn(print_progress(watch));
    let options = RunOptions {
        progress: Some(progress),
        stop,
        threads: args.threads,
    };
    let measured = slogate_loadgen::run(plan, options).await;
    signals.abort();
    printer.abort();
    let measurement = measured.map_err(|err| Failure::Runtime(anyhow::Error::new(err)))?;
    if let Some(path) = &args.evidence_out {
        let json = serde_json::to_string(&measurement.to_data())
            .map_err(|err| Failure::Runtime(anyhow!("cannot encode the evidence: {err}")))?;
        crate::experiment::write_atomically(path, json.as_bytes())
            .await
            .map_err(Failure::Runtime)?;
    }

    let summary = Summary::for_protocol(
        &measurement,
        protocol,
        &args.url,
        args.connections,
        &args.percentiles.0,
    );
    let text = match args.output {
        Output::Text => summary.to_text(),
        Output::Json => summary.to_json() + "\n",
    };
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        // A closed pipe (`| head`) is the reader's choice, not a failure.
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Failure::Runtime(anyhow!("cannot write the summary: {err}")))
        }
        _ => Ok(std::process::ExitCode::SUCCESS),
    }
}

/// Kubernetes stops a pod with SIGTERM and a terminal with SIGINT: either stops sending, and
/// the summary of what was measured is still printed.
async fn stop_on_signal(stop: CancellationToken) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    eprintln!("slogate load: stopping on signal; summarising what was measured");
    stop.cancel();
}

async fn print_progress(watch: tokio::sync::watch::Receiver<LoadProgress>) {
    let mut every = tokio::time::interval(PROGRESS_EVERY);
    every.tick().await;
    loop {
        every.tick().await;
        let p = watch.borrow().clone();
        match p.phase {
            Phase::Warmup => eprintln!("slogate load: warming up"),
            Phase::Measure => {
                let secs = p.elapsed.as_secs_f64();
                let rate = if secs > 0.0 {
                    p.requests as f64 / secs
                } else {
                    0.0
                };
                eprintln!(
                    "slogate load: {secs:.0}s {} requests, {} errors, {rate:.0} req/s",
                    p.requests, p.errors
                );
            }
        }
    }
}
