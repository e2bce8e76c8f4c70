//! Deep resume in a cluster (SPEC §5, §12): a WebSocket client whose `since` is older than a
//! node's replay ring gets the events in between from the cluster's events archive, on any
//! node, with no gap and no duplicate; an entry whose events were never archived is named
//! exactly by a `replay_gap`.

#![allow(clippy::unwrap_used)]

mod cluster_support;
mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Instant;

use cluster_support::{converged, nats_binary, node_with, Nats};
use common::{http, next, send, ws, Ws, DEADLINE};
use serde_json::{json, Value};

/// A ring of 5 events: nearly every resume is older than what a node holds.
const TINY_RING: &str = "\n[events]\nreplay_capacity = 5\n";

async fn post(addr: &str, path: &str, body: Value) {
    let reply = http(addr, "POST", path, &[], Some(&body.to_string())).await;
    assert!(reply.status == 201 || reply.status == 200, "{}", reply.text);
}

/// Writes `n` operations spread over `addrs`, in order: turns, in two sessions and outside
/// any, and searches. Each raises exactly one event (none is ever suppressed as a duplicate).
async fn write(addrs: &[String], tag: &str, n: usize) {
    for i in 0..n {
        let addr = &addrs[i % addrs.len()];
        let turn = json!({"role": "user", "content": format!("{tag} turn {i}")});
        match i % 3 {
            0 => post(addr, "/api/v1/turns", turn).await,
            1 => {
                let path = format!("/api/v1/memories/search?q=turn+{i}");
                let reply = http(addr, "GET", &path, &[], None).await;
                assert_eq!(reply.status, 200, "{}", reply.text);
            }
            _ => post(addr, &format!("/api/v1/sessions/s-{}/turns", i % 2), turn).await,
        }
    }
}

/// Every event (and `replay_gap`) frame until `count` events have arrived, then everything up
/// to the answer of a ping: what the connection was sent before, and nothing it was not.
async fn frames(ws: &mut Ws, count: usize) -> (Vec<Value>, Vec<Value>) {
    let (mut events, mut gaps) = (Vec::new(), Vec::new());
    let mut pinged = false;
    let deadline = Instant::now() + DEADLINE * 3;
    loop {
        assert!(
            Instant::now() < deadline,
            "only {} events arrived",
            events.len()
        );
        if events.len() >= count && !pinged {
            send(ws, r#"{"op":"ping"}"#).await;
            pinged = true;
        }
        let frame = next(ws).await;
        match frame["type"].as_str() {
            Some("pong") => return (events, gaps),
            Some("replay_gap") => gaps.push(frame),
            Some("welcome" | "lagged" | "error" | "batch") => panic!("unexpected {frame}"),
            _ => events.push(frame),
        }
    }
}

fn seqs(events: &[Value]) -> Vec<u64> {
    events.iter().map(|e| e["seq"].as_u64().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_resumes_from_the_archive_on_any_node_with_no_gap_and_no_duplicate() {
    let Some(binary) = nats_binary() else { return };
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(&binary, dir.path(), &[]);
    let mut nodes = Vec::new();
    for id in ["a", "b", "c"] {
        nodes.push(node_with(&dir.path().join(id), &nats.url(), id, TINY_RING).await);
    }
    let addrs: Vec<String> = nodes.iter().map(|n| n.addr().to_string()).collect();
    let (mut live, welcome) = ws(&addrs[0], "replay=0").await;
    write(&addrs, "early", 48).await;
    let (seen, gaps) = frames(&mut live, 48).await;
    assert!(gaps.is_empty(), "{gaps:?}");
    assert_eq!(seen.len(), 48);
    converged(&addrs).await;
    let epoch = welcome["epoch"].as_str().unwrap();
    // Resume from the third event on every node, from the ring's floor's far side: 45 events
    // that no ring of 5 holds.
    let since = seen[2]["seq"].as_u64().unwrap();
    for addr in &addrs {
        let (mut resumed, welcome) = ws(addr, &format!("since={since}&epoch={epoch}")).await;
        assert_eq!(welcome["epoch"], epoch);
        let (events, gaps) = frames(&mut resumed, 45).await;
        assert!(gaps.is_empty(), "{addr}: {gaps:?}");
        assert_eq!(
            events,
            seen[3..],
            "{addr}: every event after `since`, once, in order, as the live client saw it"
        );
    }
    // A filtered resume gets the archived events it wants and no others.
    let (mut turns, _) = ws(
        &addrs[1],
        &format!("since={since}&epoch={epoch}&types=conversation_turn"),
    )
    .await;
    let want: Vec<Value> = seen[3..]
        .iter()
        .filter(|e| e["type"] == "conversation_turn")
        .cloned()
        .collect();
    let (events, gaps) = frames(&mut turns, want.len()).await;
    assert!(gaps.is_empty(), "{gaps:?}");
    assert_eq!(events, want);
    // So does a `replay` op with an old `since`.
    let (mut later, _) = ws(&addrs[2], "replay=0").await;
    send(&mut later, &format!(r#"{{"op":"replay","since":{since}}}"#)).await;
    let (events, gaps) = frames(&mut later, 45).await;
    assert!(gaps.is_empty(), "{gaps:?}");
    assert_eq!(seqs(&events), seqs(&seen[3..]));
    for node in nodes {
        node.shutdown().await.unwrap();
    }
}

/// Publishes `payload` on `subject` with the NATS text protocol (no client library needed):
/// the stream stores it as if a node had published it.
fn publish_raw(port: u16, subject: &str, payload: &str) {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("INFO"), "{line}");
    let mut writer = stream;
    write!(
        writer,
        "CONNECT {{\"verbose\":false,\"pedantic\":false}}\r\nPUB {subject} {}\r\n{payload}\r\nPING\r\n",
        payload.len()
    )
    .unwrap();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        assert!(!line.starts_with("-ERR"), "{line}");
        if line.starts_with("PONG") {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_entry_whose_writer_never_archived_it_is_a_replay_gap_naming_its_numbers() {
    let Some(binary) = nats_binary() else { return };
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(&binary, dir.path(), &[]);
    let a = node_with(&dir.path().join("a"), &nats.url(), "a", TINY_RING).await;
    let b = node_with(&dir.path().join("b"), &nats.url(), "b", TINY_RING).await;
    let addrs = vec![a.addr().to_string(), b.addr().to_string()];
    let (mut live, welcome) = ws(&addrs[0], "replay=0").await;
    write(&addrs, "before", 10).await;
    // An entry from a writer that died after it was stored and before it archived the
    // entry's events: every node applies it (one turn event), nobody archives it.
    let ghost = json!({
        "id": uuid::Uuid::new_v4(),
        "at": chrono::Utc::now(),
        "node": "ghost",
        "op": {
            "kind": "request",
            "tenant": "default",
            "method": "POST",
            "path": ["turns"],
            "query": [],
            "body": json!({"role": "user", "content": "from a writer that died"}).to_string(),
        },
    });
    publish_raw(nats.port, "CODA.log", &ghost.to_string());
    write(&addrs, "after", 10).await;
    let (seen, _) = frames(&mut live, 21).await;
    converged(&addrs).await;
    let ghost_seq = seen
        .iter()
        .find(|e| e["content"] == "from a writer that died")
        .expect("the ghost entry is applied like any other")["seq"]
        .as_u64()
        .unwrap();
    let entry = ghost_seq / 1_000_000;
    assert_eq!(ghost_seq, entry * 1_000_000 + 1);
    let epoch = welcome["epoch"].as_str().unwrap();
    let since = seen[0]["seq"].as_u64().unwrap();
    let (mut resumed, _) = ws(&addrs[1], &format!("since={since}&epoch={epoch}")).await;
    let (events, gaps) = frames(&mut resumed, 19).await;
    assert_eq!(
        gaps,
        [json!({"type": "replay_gap", "from": ghost_seq, "to": entry * 1_000_000 + 999_999})],
        "exactly the ghost entry's numbers"
    );
    let expected: Vec<Value> = seen[1..]
        .iter()
        .filter(|e| e["seq"] != ghost_seq)
        .cloned()
        .collect();
    assert_eq!(events, expected, "everything else, once, in order");
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
