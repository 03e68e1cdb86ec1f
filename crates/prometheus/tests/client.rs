//! The client against a loopback server speaking Prometheus' query API: the bearer token of
//! a mounted file (read again at each query, so a rotated Secret is used), the form sent, and
//! Prometheus' own error answers passed on with their message.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use slogate_prometheus::{Client, Error, single_value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Serves `answers` in turn (status, body) and keeps each request's text.
async fn server(answers: Vec<(u16, &'static str)>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        for (status, body) in answers {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Head, then the body its content-length announces.
            loop {
                let n = stream.read(&mut chunk).await.unwrap();
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length: ")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + length {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            log.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf).to_string());
            let reply = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(reply.as_bytes()).await.unwrap();
        }
    });
    (url, seen)
}

const ONE: &str = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000.5,"0.25"]}]}}"#;

#[tokio::test]
async fn the_token_file_is_sent_as_a_bearer_token_and_read_at_each_query() {
    let (url, seen) = server(vec![(200, ONE), (200, ONE)]).await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "first\n").unwrap();
    let client = Client::new(&url, None, Some(token.clone()), Duration::from_secs(5)).unwrap();
    let samples = client.instant("up == 1", SystemTime::now()).await.unwrap();
    assert_eq!(single_value(&samples).unwrap(), 0.25);
    std::fs::write(&token, "second").unwrap();
    client.instant("up", SystemTime::now()).await.unwrap();
    let seen = seen.lock().unwrap();
    assert!(seen[0].starts_with("POST /api/v1/query "), "{}", seen[0]);
    assert!(
        seen[0]
            .to_ascii_lowercase()
            .contains("authorization: bearer first\r\n"),
        "{}",
        seen[0]
    );
    assert!(seen[0].contains("query=up+%3D%3D+1&time="), "{}", seen[0]);
    assert!(
        seen[1]
            .to_ascii_lowercase()
            .contains("authorization: bearer second\r\n"),
        "{}",
        seen[1]
    );
}

#[tokio::test]
async fn prometheus_errors_are_passed_on_with_their_message() {
    let (url, _) = server(vec![
        (400, r#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected end of input"}"#),
        (502, "<html>bad gateway</html>"),
    ])
    .await;
    let client = Client::new(&url, None, None, Duration::from_secs(5)).unwrap();
    let err = client.instant("sum(", SystemTime::now()).await.unwrap_err();
    assert!(matches!(err, Error::Api { status: 400, .. }), "{err:?}");
    assert!(err.to_string().contains("parse error"), "{err}");
    let err = client.instant("up", SystemTime::now()).await.unwrap_err();
    assert!(matches!(err, Error::Decode { status: 502, .. }), "{err:?}");
}

#[tokio::test]
async fn a_missing_token_file_is_an_error_naming_it() {
    let client = Client::new(
        "http://127.0.0.1:9",
        None,
        Some("/nonexistent/token".into()),
        Duration::from_secs(1),
    )
    .unwrap();
    let err = client.instant("up", SystemTime::now()).await.unwrap_err();
    assert!(err.to_string().contains("/nonexistent/token"), "{err}");
}
