//! HTTP and gRPC load engine of slogate: open and closed models, every request recorded
//! into HdrHistograms so memory stays flat however long the run. gRPC unary calls are HTTP/2
//! requests whose outcome is the `grpc-status` of their trailers.
//!
//! Check the spec's load section into [`slogate_core::spec::LoadSettings`]
//! ([`slogate_core::spec::LoadSpec::settings`]), build a [`LoadPlan`] from a version and those
//! settings (this resolves the body and checks the URL), then [`run`] it. Progress is published on a watch channel; cancelling the
//! stop token ends the run early and still returns what was measured.

mod connect;
mod engine;
mod failure;
mod grpc;
mod h1;
mod hpack;
mod http2;
mod plan;
pub mod summary;

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use slogate_core::measure::Measurement;
use tokio_util::sync::CancellationToken;

pub use failure::RequestError;
pub use grpc::GrpcError;
pub use plan::{LoadPlan, StopAfter, Warmup};

/// Why a load run could not start or continue.
///
/// Failed requests are never an error of the run: they are counted in the [`Measurement`].
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A setting the load settings' rules cannot check is invalid; `field` names it (e.g.
    /// `url`, `headers`).
    #[error("{field}: {reason}")]
    Invalid {
        /// The offending field or flag.
        field: String,
        /// Why it is invalid.
        reason: String,
    },
    /// The version's gRPC call cannot be made: the proto file, the method or the message is
    /// wrong ([`GrpcError::field`] says which).
    #[error("grpc.{}", .0.field())]
    Grpc(#[source] GrpcError),
    /// The body file could not be read.
    #[error("bodyFile: cannot read {}", path.display())]
    BodyFile {
        /// The file named by `bodyFile`.
        path: PathBuf,
        /// Why reading failed.
        #[source]
        source: std::io::Error,
    },
    /// The payload could not be downloaded from `payloadUrl`.
    #[error("payloadUrl: cannot download {url}")]
    Payload {
        /// The payload URL.
        url: String,
        /// Why the download failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The TLS client configuration could not be built.
    #[error("cannot configure TLS")]
    Tls(#[source] rustls::Error),
    /// A load thread's runtime could not be started.
    #[error("cannot start a load thread's runtime")]
    Runtime(#[source] std::io::Error),
    /// A connection task ended abnormally (a bug: it panicked).
    #[error("a load connection task failed")]
    Task(#[source] tokio::task::JoinError),
}

/// Which part of the run is under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    /// Requests sent and discarded.
    #[default]
    Warmup,
    /// Requests measured.
    Measure,
}

/// A progress snapshot, published at least once a second.
#[derive(Debug, Clone, Default)]
pub struct LoadProgress {
    /// Phase under way.
    pub phase: Phase,
    /// Measured requests finished so far.
    pub requests: u64,
    /// Measured errors so far.
    pub errors: u64,
    /// Time since measuring began.
    pub elapsed: Duration,
}

/// How a caller follows and stops a run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Receives progress snapshots.
    pub progress: Option<tokio::sync::watch::Sender<LoadProgress>>,
    /// Cancel to stop sending; the run then returns what was measured.
    pub stop: CancellationToken,
    /// Load threads, each an event loop over its share of the connections; `None` for one
    /// per worker thread of the calling runtime. Never more than the connections.
    pub threads: Option<NonZeroUsize>,
}

/// Runs several plans at the same time, one per version, each on its own share of the
/// calling runtime's worker threads (at least one): the versions are measured in the same
/// time window. Build each plan from its version's share of the load
/// ([`slogate_core::spec::LoadSettings::share`]). Results come back in the order of
/// `runs`; cancelling one run's stop token stops only that run.
pub async fn run_together(
    runs: Vec<(LoadPlan, RunOptions)>,
) -> Vec<Result<Measurement, LoadError>> {
    let workers = tokio::runtime::Handle::current().metrics().num_workers();
    let threads = NonZeroUsize::new((workers / runs.len().max(1)).max(1));
    let mut out: Vec<Option<Result<Measurement, LoadError>>> = runs.iter().map(|_| None).collect();
    let mut set = tokio::task::JoinSet::new();
    for (i, (plan, mut options)) in runs.into_iter().enumerate() {
        if options.threads.is_none() {
            options.threads = threads;
        }
        set.spawn(async move { (i, engine::run(plan, options).await) });
    }
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((i, result)) => out[i] = Some(result),
            // A panicking run is a bug; its slot says so below.
            Err(err) => tracing::error!(%err, "a load run failed"),
        }
    }
    out.into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Err(LoadError::Invalid {
                    field: "load".into(),
                    reason: "a load run ended abnormally".into(),
                })
            })
        })
        .collect()
}

/// Runs the plan to its end (count or duration) or until stopped.
///
/// Every connection is opened first; failures to connect, resets, timeouts and error statuses
/// are counted as errors and the connection is re-established, so the run itself only fails
/// on a bug or when its threads cannot start. The connections are shared out among
/// `options.threads` single-threaded event loops (by default as many as the calling runtime
/// has worker threads), each on a blocking thread of that runtime. Cancelling `options.stop`
/// drops the requests in flight and returns what was measured until then.
pub async fn run(plan: LoadPlan, options: RunOptions) -> Result<Measurement, LoadError> {
    engine::run(plan, options).await
}
