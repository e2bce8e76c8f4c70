//! `coda serve` as a real process: it prints its address, and SIGTERM shuts it down without
//! losing any write it acknowledged.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

/// One HTTP/1.1 request on a fresh connection; `None` if the server is gone.
fn post(addr: &str, path: &str, body: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split(' ').nth(1)?.parse().ok()?;
    let body = response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    Some((status, body))
}

#[test]
fn serve_prints_its_address_and_sigterm_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.jsonl");
    let config = dir.path().join("Coda.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nbind = \"127.0.0.1:0\"\n[memory]\nbackend = \"memory\"\nembedder = \"hashing\"\n\
             [stores.fs]\ndir = \"{}\"\n[[sinks]]\ntype = \"websocket\"\n\
             [[sinks]]\ntype = \"log\"\npath = \"{}\"\n",
            dir.path().join("snapshots").display(),
            log.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_coda"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("CODA_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
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

    // A WebSocket client, to see the 1001 close.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut ws = runtime.block_on(async {
        tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
            .await
            .unwrap()
            .0
    });

    // Writers keep adding memories while the server is told to stop.
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (addr, acknowledged, stop) = (addr.clone(), acknowledged.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let body = format!(r#"{{"content":"writer {w} memory {i}"}}"#);
                    // Anything but a 201 (refused, cut off by the shutdown) was not acknowledged.
                    if let Some((201, body)) = post(&addr, "/api/v1/memories", &body) {
                        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
                        let id = json["id"].as_str().unwrap().to_owned();
                        acknowledged.lock().unwrap().push(id);
                    }
                    i += 1;
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while acknowledged.lock().unwrap().len() < 50 {
        assert!(
            Instant::now() < deadline,
            "writes are not being acknowledged"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.join().unwrap();
    }
    assert!(exit.success(), "coda serve exited with {exit}");
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "", "one line on stdout");

    // Every acknowledged write reached the log sink before exit.
    let logged = std::fs::read_to_string(&log).unwrap();
    let stored: std::collections::HashSet<String> = logged
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["type"] == "memory_store")
        .map(|e| e["memory_id"].as_str().unwrap().to_owned())
        .collect();
    let acknowledged = acknowledged.lock().unwrap();
    for id in acknowledged.iter() {
        assert!(
            stored.contains(id),
            "acknowledged memory {id} missing from the event log"
        );
    }

    // The WebSocket client got every event it was sent and then a 1001 close.
    let code = runtime.block_on(async {
        loop {
            match tokio::time::timeout(Duration::from_secs(10), ws.next())
                .await
                .unwrap()
            {
                Some(Ok(Message::Close(Some(frame)))) => break u16::from(frame.code),
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    });
    assert_eq!(code, 1001);
}

#[test]
fn serve_refuses_a_bad_config_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("Coda.toml");
    std::fs::write(
        &config,
        "[[sinks]]\ntype = \"websocket\"\nqueue = \"big\"\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_coda"))
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("sinks[0].queue"), "{stderr}");
    assert!(output.stdout.is_empty());
}
