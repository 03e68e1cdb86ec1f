//! `slogate demo`.

use crate::exit::{CmdResult, Failure};

/// Flags of `slogate demo`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `slogate demo`.
pub async fn run(_args: Args) -> CmdResult {
    Err(Failure::Runtime(anyhow::anyhow!(
        "`slogate demo` is not built yet"
    )))
}
