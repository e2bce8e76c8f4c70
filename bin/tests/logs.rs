//! `coda serve` logging (SPEC §13): `CODA_LOG_FORMAT=json` writes one JSON object a line, every
//! HTTP request is logged once at debug with method, route template, status, latency and
//! tenant, and neither the token nor memory content ever reaches the log.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

const TOKEN: &str = "tok-5f3a9c1e-never-logged";
const CONTENT: &str = "the user's secret recipe: cardamom";

/// One HTTP/1.1 request on a fresh connection: (status, body).
fn request(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).unwrap().parse().unwrap();
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

#[test]
fn json_logs_have_one_line_per_request_and_no_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("Coda.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nbind = \"127.0.0.1:0\"\ntokens = [\"{TOKEN}\"]\n\
             [memory]\nbackend = \"memory\"\nembedder = \"hashing\"\n\
             [stores.fs]\ndir = \"{}\"\n\
             [[sinks]]\ntype = \"websocket\"\n[[sinks]]\ntype = \"log\"\npath = \"{}\"\n",
            dir.path().join("snapshots").display(),
            dir.path().join("events.jsonl").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_coda"))
        .args(["serve", "--config"])
        .arg(&config)
        .current_dir(dir.path())
        .env("CODA_LOG", "debug")
        .env("CODA_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_owned();

    // `listening on` means ready.
    assert_eq!(request(&addr, "GET", "/readyz", "").0, 200);
    let (status, body) = request(
        &addr,
        "POST",
        "/api/v1/memories",
        &serde_json::json!({ "content": CONTENT }).to_string(),
    );
    assert_eq!(status, 201, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = request(&addr, "GET", &format!("/api/v1/memories/{id}"), "");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(CONTENT));
    let (status, _) = request(&addr, "GET", &format!("/api/v1/memories/{id}x"), "");
    assert_eq!(status, 404);
    // A browser's WebSocket carries its token in the query string: never logged either.
    let mut ws = TcpStream::connect(&addr).unwrap();
    ws.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        ws,
        "GET /ws?token={TOKEN}&replay=0 HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .unwrap();
    let mut head = [0u8; 12];
    ws.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 101", "upgraded");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(child.wait().unwrap().success(), "{stderr}");

    assert!(!stderr.contains(TOKEN), "the token was logged:\n{stderr}");
    assert!(
        !stderr.contains("cardamom"),
        "content was logged:\n{stderr}"
    );
    assert!(!stderr.contains(&id), "a raw path with an id was logged");
    let lines: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let requests: Vec<&Value> = lines
        .iter()
        .filter(|l| l["target"] == "coda::http")
        .collect();
    let seen: Vec<(String, String, u64)> = requests
        .iter()
        .map(|l| {
            let f = &l["fields"];
            assert_eq!(l["level"], "DEBUG", "{l}");
            assert_eq!(f["message"], "request", "{l}");
            assert!(f["latency_ms"].as_f64().unwrap() >= 0.0, "{l}");
            assert_eq!(f["tenant"], "default", "{l}");
            (
                f["method"].as_str().unwrap().to_owned(),
                f["route"].as_str().unwrap().to_owned(),
                f["status"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("GET", "/readyz", 200),
        ("POST", "/api/v1/memories", 201),
        ("GET", "/api/v1/memories/{id}", 200),
        ("GET", "/api/v1/memories/{id}", 404),
        ("GET", "/ws", 101),
    ];
    let expected: Vec<(String, String, u64)> = expected
        .iter()
        .map(|(m, r, s)| (m.to_string(), r.to_string(), *s))
        .collect();
    assert_eq!(seen, expected, "each request logged exactly once");
}

#[test]
fn an_unknown_log_format_is_a_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_coda"))
        .arg("plugins")
        .current_dir(dir.path())
        .env("CODA_LOG_FORMAT", "jsno")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("CODA_LOG_FORMAT") && stderr.contains("jsno"),
        "{stderr}"
    );
}
