//! HTTPS load against the hello service over TLS, with a certificate made for the test:
//! HTTP/1.1 and HTTP/2 as chosen by ALPN, and a certificate the client does not trust
//! counted as TLS errors.

mod support;

use rustls::pki_types::CertificateDer;
use slogate_core::measure::{ErrorKind, Measurement};
use slogate_core::spec::{LoadSpec, VersionSpec};
use slogate_hello::{Behavior, HelloServer};
use slogate_loadgen::{LoadPlan, RunOptions, run};
use support::identity;

async fn load(
    url: &str,
    requests: u64,
    http2: bool,
    roots: Vec<CertificateDer<'static>>,
) -> Measurement {
    let version = VersionSpec {
        name: "tls".into(),
        url: url.into(),
        headers: Vec::new(),
        role: Default::default(),
        variables: Default::default(),
        weight_obj_ref: None,
        grpc: None,
    };
    let spec = LoadSpec {
        connections: 2,
        num_requests: Some(requests),
        http2,
        ..LoadSpec::default()
    };
    let plan = LoadPlan::with_root_certificates(&version, &spec.settings().unwrap(), roots)
        .await
        .unwrap();
    run(plan, RunOptions::default()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_speaks_http1_or_http2_as_alpn_chooses() {
    for (http2, expected) in [(false, "HTTP/1.1"), (true, "HTTP/2.0")] {
        let (config, cert) = identity();
        let server = HelloServer::start_tls(Behavior::new(), config)
            .await
            .unwrap();
        assert!(server.url().starts_with("https://127.0.0.1:"));
        let m = load(&server.url(), 200, http2, vec![cert]).await;
        assert_eq!((m.requests, m.errors), (200, 0), "http2 {http2}");
        assert_eq!(
            m.bytes_received,
            200 * slogate_hello::DEFAULT_BODY.len() as u64
        );
        assert_eq!(server.last_request().unwrap().version, expected);
        assert_eq!(server.connections_accepted(), 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_counted_as_tls_errors() {
    let (config, _) = identity();
    let server = HelloServer::start_tls(Behavior::new(), config)
        .await
        .unwrap();
    // Each failed handshake is a request that failed; the connections retry with backoff.
    let m = load(&server.url(), 20, false, Vec::new()).await;
    assert_eq!((m.requests, m.errors), (20, 20));
    assert_eq!(m.error_kinds.get(&ErrorKind::Tls), Some(&20));
    assert_eq!(server.requests_served(), 0);
}
