//! The `slogate` command: wires the crates together and owns the exit codes.

fn main() {
    // One process-level crypto provider, installed before any TLS client exists.
    let _ = rustls::crypto::ring::default_provider().install_default();
    println!("slogate {}", env!("CARGO_PKG_VERSION"));
}
