//! Running the built `slogate` binary from the CLI's integration tests.

// Each test binary includes this module and uses only part of it.
#![allow(dead_code)]

pub mod prometheus;
pub mod sandbox;

use std::process::{Command, Output};

/// Runs `slogate` with `args` and waits for it.
pub fn slogate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_slogate"))
        .args(args)
        .output()
        .expect("the slogate binary runs")
}

/// Runs `slogate` off the async runtime so an in-process server keeps answering.
pub async fn slogate_async(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        slogate(&args)
    })
    .await
    .unwrap()
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Sends the signal `name` (e.g. `TERM`) to process `pid`, as Kubernetes or a user would.
pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{name} {pid}");
}
