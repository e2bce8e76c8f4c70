//! `GET /readyz` (SPEC §13): 503 while the backend opens (the listener is bound first), 200 while
//! serving, 503 from the moment shutdown begins while connections drain; `/healthz` answers
//! 200 throughout.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Instant;

use common::{http, DEADLINE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn config(dir: &std::path::Path) -> coda::Config {
    let toml = format!(
        "[server]\ntokens = [\"secret\"]\n[memory]\nbackend = \"memory\"\nembedder = \"hashing\"\n\
         [stores.fs]\ndir = \"{}\"\n[[sinks]]\ntype = \"websocket\"\n",
        dir.join("snapshots").display()
    );
    let mut config = coda::Config::from_toml_str(&toml).unwrap();
    config.server.bind = "127.0.0.1:0".into();
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_until_the_backend_is_open_then_200() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let starting = coda_server::bind(config.clone()).await.unwrap();
    let addr = starting.addr().to_string();

    let ready = http(&addr, "GET", "/readyz", &[], None).await;
    assert_eq!(ready.status, 503, "{}", ready.text);
    assert_eq!(ready.json["status"], "starting");
    assert_eq!(ready.headers["retry-after"], "1");
    let health = http(&addr, "GET", "/healthz", &[], None).await;
    assert_eq!(health.status, 200, "alive while starting: {}", health.text);
    let api = http(
        &addr,
        "GET",
        "/api/v1/stats",
        &[("authorization", "Bearer secret")],
        None,
    )
    .await;
    assert_eq!(api.status, 503, "{}", api.text);
    assert_eq!(api.json["error"]["code"], "starting");
    assert_eq!(api.headers["retry-after"], "1");

    // What `coda serve` does between binding and printing `listening on`.
    let manager = tokio::task::spawn_blocking(move || coda::MemoryManager::open(config))
        .await
        .unwrap()
        .unwrap();
    let server = starting.serve(manager).await.unwrap();
    assert_eq!(server.addr().to_string(), addr, "the same listener serves");
    let ready = http(&addr, "GET", "/readyz", &[], None).await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    assert_eq!(ready.json["status"], "ready");
    let api = http(
        &addr,
        "GET",
        "/api/v1/stats",
        &[("authorization", "Bearer secret")],
        None,
    )
    .await;
    assert_eq!(api.status, 200, "{}", api.text);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_returns_only_once_ready() {
    let dir = tempfile::tempdir().unwrap();
    let server = coda_server::start(config(dir.path())).await.unwrap();
    let ready = http(&server.addr().to_string(), "GET", "/readyz", &[], None).await;
    assert_eq!(ready.status, 200, "no token needed: {}", ready.text);
    let head = http(&server.addr().to_string(), "OPTIONS", "/readyz", &[], None).await;
    assert_eq!(head.status, 204);
    assert_eq!(head.headers["allow"], "GET, HEAD, OPTIONS");
    server.shutdown().await.unwrap();
}

/// `GET path` on a fresh connection: the whole response, or `None` if the connection closed
/// without one.
async fn probe(addr: &str, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    tokio::time::timeout(DEADLINE, stream.read_to_string(&mut response))
        .await
        .ok()?
        .ok()?;
    (!response.is_empty()).then_some(response)
}

/// Sends a request whose body is held back, and returns once the server is handling it (it
/// asked for the body with `100 Continue`): shutdown must then wait for it.
async fn request_in_flight(addr: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /api/v1/memories HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer secret\r\n\
         Content-Type: application/json\r\nContent-Length: 23\r\nExpect: 100-continue\r\n\
         Connection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&seen).contains("100 Continue") {
        let n = tokio::time::timeout(DEADLINE, stream.read(&mut buf))
            .await
            .expect("100 Continue in time")
            .unwrap();
        assert!(n > 0, "closed before 100 Continue");
        seen.extend_from_slice(&buf[..n]);
    }
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_while_shutdown_drains_connections() {
    let dir = tempfile::tempdir().unwrap();
    let server = coda_server::start(config(dir.path())).await.unwrap();
    let addr = server.addr().to_string();
    let mut in_flight = request_in_flight(&addr).await;

    let shutdown = tokio::spawn(server.shutdown());
    let deadline = Instant::now() + DEADLINE;
    // A probe whose connection the serving loop accepted just as shutdown began may be closed
    // unanswered (hyper's graceful shutdown closes connections with no request yet): retry it.
    let ready = loop {
        let ready = probe(&addr, "/readyz").await;
        if ready
            .as_ref()
            .is_some_and(|r| r.starts_with("HTTP/1.1 503"))
            || Instant::now() > deadline
        {
            break ready;
        }
        tokio::task::yield_now().await;
    };
    let ready = ready.expect("an answer to /readyz while draining");
    assert!(ready.starts_with("HTTP/1.1 503"), "{ready}");
    assert!(ready.contains(r#"{"status":"shutting_down"}"#), "{ready}");
    let health = http(&addr, "GET", "/healthz", &[], None).await;
    assert_eq!(health.status, 200, "still alive while draining");
    let api = http(
        &addr,
        "GET",
        "/api/v1/stats",
        &[("authorization", "Bearer secret")],
        None,
    )
    .await;
    assert_eq!(api.json["error"]["code"], "shutting_down", "{}", api.text);
    assert!(
        !shutdown.is_finished(),
        "the in-flight request holds the drain"
    );

    // The held request completes, and only then does shutdown finish.
    in_flight
        .write_all(br#"{"content":"drained!!"}"#)
        .await
        .unwrap();
    let mut response = String::new();
    tokio::time::timeout(DEADLINE, in_flight.read_to_string(&mut response))
        .await
        .expect("the in-flight request is answered")
        .unwrap();
    assert!(response.contains("201 Created"), "{response}");
    tokio::time::timeout(DEADLINE, shutdown)
        .await
        .expect("shutdown finishes")
        .unwrap()
        .unwrap();
    assert!(
        TcpStream::connect(&addr).await.is_err(),
        "the listener closes once shut down"
    );
}
