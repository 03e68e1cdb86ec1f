//! `slogate describe`.

use crate::exit::{CmdResult, Failure};

/// Flags of `slogate describe`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `slogate describe`.
pub async fn run(_args: Args) -> CmdResult {
    Err(Failure::Runtime(anyhow::anyhow!(
        "`slogate describe` is not built yet"
    )))
}
