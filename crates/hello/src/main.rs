//! `hello [--listen ADDR] [--behavior stable|slow|flaky]`: the sample service as a program,
//! serving until SIGTERM or SIGINT. The test node runs it in a pod behind a Service; `slow` is
//! the failing candidate of the tutorial.

use std::net::SocketAddr;
use std::process::ExitCode;

use slogate_hello::{Behavior, HelloServer};

const USAGE: &str = "usage: hello [--listen ADDR] [--behavior stable|slow|flaky]";

fn main() -> ExitCode {
    let mut listen: SocketAddr = SocketAddr::from(([0, 0, 0, 0], 8080));
    let mut behavior = Behavior::stable();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next();
        match (flag.as_str(), value.as_deref()) {
            ("--listen", Some(addr)) => match addr.parse() {
                Ok(addr) => listen = addr,
                Err(err) => return invalid(&format!("--listen {addr}: {err}")),
            },
            ("--behavior", Some("stable")) => behavior = Behavior::stable(),
            ("--behavior", Some("slow")) => behavior = Behavior::slow_candidate(),
            ("--behavior", Some("flaky")) => behavior = Behavior::flaky_candidate(),
            _ => return invalid(&format!("unexpected argument {flag}")),
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("hello: cannot start the async runtime: {err}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async {
        let server = match HelloServer::start_on(listen, behavior).await {
            Ok(server) => server,
            Err(err) => {
                eprintln!("hello: {err}");
                return ExitCode::from(2);
            }
        };
        eprintln!("hello: serving on {}", server.addr());
        // Kubernetes stops a pod with SIGTERM: finish open requests, then exit.
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(err) => {
                    eprintln!("hello: cannot wait for SIGTERM: {err}");
                    return ExitCode::from(2);
                }
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        server.shutdown().await;
        ExitCode::SUCCESS
    })
}

fn invalid(reason: &str) -> ExitCode {
    eprintln!("hello: {reason}\n{USAGE}");
    ExitCode::from(64)
}
