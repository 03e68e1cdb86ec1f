//! The hello service over real loopback connections: answers, statuses, latency, resets,
//! truncated bodies, stalls, h2c.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use slogate_hello::{Behavior, DEFAULT_BODY, HelloServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn h1(server: &HelloServer) -> http1::SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(server.addr()).await.unwrap();
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    sender
}

fn get(server: &HelloServer) -> http::Request<Full<Bytes>> {
    http::Request::get(server.url())
        .header("host", server.addr().to_string())
        .body(Full::default())
        .unwrap()
}

#[tokio::test]
async fn answers_hello_over_one_keep_alive_connection() {
    let server = HelloServer::start(Behavior::new()).await.unwrap();
    let mut sender = h1(&server).await;
    for _ in 0..5 {
        sender.ready().await.unwrap();
        let response = sender.send_request(get(&server)).await.unwrap();
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, DEFAULT_BODY.as_bytes());
    }
    assert_eq!(server.requests_served(), 5);
    assert_eq!(server.connections_accepted(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn error_fraction_and_slow_fraction_hit_the_chosen_requests() {
    let behavior = Behavior::new()
        .error_status(0.25, 503)
        .slow(0.5, Duration::from_millis(30));
    let server = HelloServer::start(behavior).await.unwrap();
    let mut sender = h1(&server).await;
    let mut statuses = Vec::new();
    let mut slow = Vec::new();
    for _ in 0..8 {
        sender.ready().await.unwrap();
        let started = Instant::now();
        let response = sender.send_request(get(&server)).await.unwrap();
        statuses.push(response.status().as_u16());
        slow.push(started.elapsed() >= Duration::from_millis(30));
    }
    assert_eq!(statuses, [200, 200, 200, 503, 200, 200, 200, 503]);
    assert_eq!(slow, [false, true, false, true, false, true, false, true]);
    server.shutdown().await;
}

#[tokio::test]
async fn reset_every_nth_request_resets_the_connection() {
    let server = HelloServer::start(Behavior::new().reset_every(2))
        .await
        .unwrap();
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    let request = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n";
    stream.write_all(request).await.unwrap();
    let mut buf = vec![0; 4096];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    stream.write_all(request).await.unwrap();
    let err = stream.read(&mut buf).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    server.shutdown().await;
}

#[tokio::test]
async fn close_mid_response_sends_half_the_body_then_closes() {
    let body = "0123456789".repeat(10);
    let behavior = Behavior::new()
        .body(body.clone())
        .close_mid_response_every(1);
    let server = HelloServer::start(behavior).await.unwrap();
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut received = Vec::new();
    stream.read_to_end(&mut received).await.unwrap();
    let text = String::from_utf8(received).unwrap();
    let (head, got) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.contains("content-length: 100"), "{head}");
    assert_eq!(got, &body[..50]);
    server.shutdown().await;
}

#[tokio::test]
async fn stall_holds_requests_after_the_first_n() {
    let behavior = Behavior::new().stall(2, Duration::from_millis(300));
    let server = HelloServer::start(behavior).await.unwrap();
    let mut sender = h1(&server).await;
    let mut took = Vec::new();
    for _ in 0..4 {
        sender.ready().await.unwrap();
        let started = Instant::now();
        sender.send_request(get(&server)).await.unwrap();
        took.push(started.elapsed());
    }
    assert!(took[0] < Duration::from_millis(100) && took[1] < Duration::from_millis(100));
    assert!(took[2] >= Duration::from_millis(290), "{took:?}");
    assert!(took[3] < Duration::from_millis(100), "{took:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn serves_h2c_with_prior_knowledge() {
    let server = HelloServer::start(Behavior::new()).await.unwrap();
    let stream = TcpStream::connect(server.addr()).await.unwrap();
    let (mut sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let request = http::Request::post(server.url())
        .header("x-test", "yes")
        .body(Full::new(Bytes::from_static(b"abc")))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), http::Version::HTTP_2);
    let recorded = server.last_request().unwrap();
    assert_eq!(recorded.method, "POST");
    assert_eq!(recorded.version, "HTTP/2.0");
    assert_eq!(recorded.body_len, 3);
    assert!(recorded.headers.contains(&("x-test".into(), "yes".into())));
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_idle_keep_alive_connections() {
    let server = HelloServer::start(Behavior::new()).await.unwrap();
    let stream = TcpStream::connect(server.addr()).await.unwrap();
    let (mut sender, conn) = http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
        .await
        .unwrap();
    let conn = tokio::spawn(conn);
    let request = http::Request::get("/").body(Empty::new()).unwrap();
    sender.send_request(request).await.unwrap();
    let started = Instant::now();
    server.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(1));
    tokio::time::timeout(Duration::from_secs(1), conn)
        .await
        .expect("client connection ends once the server closed it")
        .unwrap()
        .unwrap();
}
