//! The `slogate` command: parses flags, wires the crates together and owns the exit codes.
//!
//! Exit codes: 0 done / condition true, 1 an `assert` condition false, 2 runtime failure,
//! 64 invalid input (bad flag, spec or value).

mod cluster;
mod cmd;
mod driver;
mod exec;
mod exit;
mod experiment;
mod gitops;
mod load_source;
mod partials;
mod parts;
mod prometheus_source;
mod promote;
mod rollout;
mod source;
mod traffic;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// SLO gate for Kubernetes: load a service, judge its SLOs with confidence, promote by pull request.
#[derive(Debug, Parser)]
#[command(name = "slogate", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Send HTTP load to a URL, or gRPC calls to a grpc:// target, and print latency and
    /// error statistics.
    Load(Box<cmd::load::Args>),
    /// Run one experiment from a spec: load, judge SLOs, write the result, promote.
    Run(cmd::run::Args),
    /// Print an experiment result as text, markdown, json or html.
    Describe(cmd::describe::Args),
    /// Exit 0 when every condition holds, 1 when one is false, 2 on error.
    Assert(cmd::assert::Args),
    /// Run a whole experiment against an in-process sample service: no cluster, no token.
    Demo(cmd::demo::Args),
    /// Merge the evidence files of several `load --evidence-out` runs exactly (benchmarks).
    #[command(hide = true)]
    Merge(cmd::merge::Args),
}

fn main() -> ExitCode {
    // One process-level crypto provider, installed before any TLS client exists: with two
    // providers compiled in, rustls cannot pick one and the first connection panics.
    let _ = rustls::crypto::ring::default_provider().install_default();
    init_tracing();

    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if err.use_stderr() => {
            // clap quotes a bad value whole; a line of it is cut short like every message.
            eprint!("{}", exit::clap_message(&err));
            return ExitCode::from(exit::INVALID_INPUT);
        }
        Err(err) => {
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
    };

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(exit::RUNTIME_FAILURE);
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Load(args) => cmd::load::run(*args).await,
            Command::Run(args) => cmd::run::run(args).await,
            Command::Describe(args) => cmd::describe::run(args).await,
            Command::Assert(args) => cmd::assert::run(args).await,
            Command::Demo(args) => cmd::demo::run(args).await,
            Command::Merge(args) => cmd::merge::run(args).await,
        }
    });
    match outcome {
        Ok(code) => code,
        Err(failure) => failure.report(),
    }
}

/// Logs go to stderr, filtered by `RUST_LOG` (default `warn`), so stdout stays machine-readable.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn unknown_flag_is_invalid_input() {
        let err = Cli::try_parse_from(["slogate", "load", "--no-such-flag"]).unwrap_err();
        assert!(err.use_stderr());
    }
}
