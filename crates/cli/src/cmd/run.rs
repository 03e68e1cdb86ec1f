//! `slogate run`.

use crate::exit::{CmdResult, Failure};

/// Flags of `slogate run`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `slogate run`.
pub async fn run(_args: Args) -> CmdResult {
    Err(Failure::Runtime(anyhow::anyhow!(
        "`slogate run` is not built yet"
    )))
}
