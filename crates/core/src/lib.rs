//! slogate-core: everything a verdict is made of, with no I/O.
//!
//! The flow is one direction: an [`spec::ExperimentSpec`] says what to load and which SLOs to
//! judge; the load engine turns it into one [`measure::Measurement`] per version; [`metrics`]
//! and [`stats`] turn measurements into values with confidence intervals; [`verdict`] judges
//! each SLO; and [`result::ExperimentResult`] is the document every sink (ConfigMap, GitHub,
//! reports) reads.

pub mod actions;
pub mod custom;
pub mod document;
pub mod grpc;
pub mod looks;
pub mod measure;
pub mod metrics;
pub mod parallel;
pub mod quote;
pub mod result;
pub mod result_read;
pub mod rollout;
mod shape;
pub mod spec;
pub mod stats;
pub mod text_duration;
pub mod verdict;
