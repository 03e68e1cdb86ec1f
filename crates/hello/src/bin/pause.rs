//! `pause`: the sandbox process of the test node's pods. It holds the pod's namespaces and does
//! nothing else until SIGTERM or SIGINT ends it (as PID 1 of its namespace it would ignore
//! both without handlers).

use std::process::ExitCode;

use tokio::signal::unix::{SignalKind, signal};

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("pause: cannot start: {err}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async {
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            eprintln!("pause: cannot wait for signals");
            return ExitCode::from(2);
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        ExitCode::SUCCESS
    })
}
