//! `slogate load`.

use crate::exit::{CmdResult, Failure};

/// Flags of `slogate load`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `slogate load`.
pub async fn run(_args: Args) -> CmdResult {
    Err(Failure::Runtime(anyhow::anyhow!(
        "`slogate load` is not built yet"
    )))
}
