//! `slogate assert`.

use crate::exit::{CmdResult, Failure};

/// Flags of `slogate assert`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `slogate assert`.
pub async fn run(_args: Args) -> CmdResult {
    Err(Failure::Runtime(anyhow::anyhow!(
        "`slogate assert` is not built yet"
    )))
}
