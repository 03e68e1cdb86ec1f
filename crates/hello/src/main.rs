//! `hello [--listen ADDR] [--behavior stable|slow|flaky|instant] [--grpc]`: the sample service
//! as a program, serving until SIGTERM or SIGINT. The test node runs it in a pod behind a
//! Service; `slow` is the failing candidate of the tutorial; `instant` answers at once (for
//! benchmarks). `--grpc` serves `slogate.hello.v1.Greeter/SayHello` (plaintext HTTP/2)
//! instead of HTTP, with the `stable` or `instant` behaviour.

use std::net::SocketAddr;
use std::process::ExitCode;

use slogate_hello::grpc::{GrpcBehavior, GrpcHelloServer};
use slogate_hello::{Behavior, HelloServer};

const USAGE: &str = "usage: hello [--listen ADDR] [--behavior stable|slow|flaky|instant] [--grpc]";

/// A running service of either kind.
enum Server {
    Http(HelloServer),
    Grpc(GrpcHelloServer),
}

fn main() -> ExitCode {
    let mut listen: SocketAddr = SocketAddr::from(([0, 0, 0, 0], 8080));
    let mut behavior = Behavior::stable();
    let mut grpc_behavior = GrpcBehavior::stable();
    let mut grpc = false;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--grpc" {
            grpc = true;
            continue;
        }
        let value = args.next();
        match (flag.as_str(), value.as_deref()) {
            ("--listen", Some(addr)) => match addr.parse() {
                Ok(addr) => listen = addr,
                Err(err) => return invalid(&format!("--listen {addr}: {err}")),
            },
            ("--behavior", Some("stable")) => behavior = Behavior::stable(),
            ("--behavior", Some("slow")) => behavior = Behavior::slow_candidate(),
            ("--behavior", Some("flaky")) => behavior = Behavior::flaky_candidate(),
            ("--behavior", Some("instant")) => {
                behavior = Behavior::new();
                grpc_behavior = GrpcBehavior::new();
            }
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
        let started = if grpc {
            GrpcHelloServer::start_on(listen, grpc_behavior)
                .await
                .map(Server::Grpc)
        } else {
            HelloServer::start_on(listen, behavior)
                .await
                .map(Server::Http)
        };
        let server = match started {
            Ok(server) => server,
            Err(err) => {
                eprintln!("hello: {err}");
                return ExitCode::from(2);
            }
        };
        match &server {
            Server::Http(s) => eprintln!("hello: serving on {}", s.addr()),
            Server::Grpc(s) => eprintln!("hello: serving gRPC on {}", s.addr()),
        }
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
        match server {
            Server::Http(s) => s.shutdown().await,
            Server::Grpc(s) => s.shutdown().await,
        }
        ExitCode::SUCCESS
    })
}

fn invalid(reason: &str) -> ExitCode {
    eprintln!("hello: {reason}\n{USAGE}");
    ExitCode::from(64)
}
