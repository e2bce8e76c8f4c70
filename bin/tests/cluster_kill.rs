//! Cluster nodes as real `coda serve` processes on one real `nats-server`: a node SIGKILLed
//! in the middle of a write load restarts, cuts the operation it had not committed, catches up
//! from its applied sequence, and ends with exactly the state of the node that never stopped —
//! every write either node acknowledged included, none twice.

#![allow(clippy::unwrap_used)]

#[path = "../../tests/cluster_support/nats.rs"]
mod nats;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A `coda serve` process and its address.
struct Node {
    child: Child,
    addr: String,
}

impl Node {
    fn start(dir: &Path, nats: &str, id: &str) -> Node {
        std::fs::create_dir_all(dir).unwrap();
        let config = dir.join("Coda.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nbind = \"127.0.0.1:0\"\n[memory]\nbackend = \"file\"\nembedder = \"hashing\"\n\
                 [backends.file]\ndir = \"{data}\"\nsync = \"always\"\n\
                 [stores.fs]\ndir = \"{snaps}\"\n[cluster]\nnats_url = \"{nats}\"\nnode_id = \"{id}\"\n\
                 [[sinks]]\ntype = \"websocket\"\n",
                data = dir.join("memory").display(),
                snaps = dir.join("snapshots").display(),
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
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_owned();
        Node { child, addr }
    }

    fn kill(&mut self) {
        // Child::kill is SIGKILL: no shutdown, no flush.
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into()
}

/// GETs JSON.
fn get(addr: &str, path: &str) -> Value {
    let mut response = agent().get(format!("http://{addr}{path}")).call().unwrap();
    serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap()
}

/// Adds a memory; its id when acknowledged (201), `None` when refused or cut off.
fn add(agent: &ureq::Agent, addr: &str, content: &str) -> Option<String> {
    let mut response = agent
        .post(format!("http://{addr}/api/v1/memories"))
        .header("content-type", "application/json")
        .send(serde_json::json!({"content": content}).to_string())
        .ok()?;
    if response.status() != 201 {
        return None;
    }
    let json: Value = serde_json::from_str(&response.body_mut().read_to_string().ok()?).ok()?;
    json["id"].as_str().map(str::to_owned)
}

/// Every memory id a node holds, sorted, and the memories themselves.
fn memories(addr: &str) -> (Vec<String>, Value) {
    let listed = get(addr, "/api/v1/memories?limit=1000");
    let mut ids: Vec<String> = listed["memories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    (ids, listed)
}

/// Waits until both nodes have applied the stream's last entry.
fn converge(a: &str, b: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (x, y) = (get(a, "/healthz"), get(b, "/healthz"));
        let applied = |h: &Value| h["cluster"]["applied_seq"].as_u64().unwrap();
        let stream = |h: &Value| h["cluster"]["stream_seq"].as_u64().unwrap();
        let top = stream(&x).max(stream(&y));
        if applied(&x) == top && applied(&y) == top {
            return;
        }
        assert!(Instant::now() < deadline, "no convergence: {x} {y}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_node_killed_mid_load_restarts_and_catches_up_with_nothing_lost_or_doubled() {
    let Some(binary) = nats::nats_binary() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let nats = nats::Nats::start(&binary, dir.path(), &[]);
    let a = Node::start(&dir.path().join("a"), &nats.url(), "a");
    let mut k = Node::start(&dir.path().join("k"), &nats.url(), "k");
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    // Two writers on each node, as fast as they go.
    let writers: Vec<_> = [&a.addr, &a.addr, &k.addr, &k.addr]
        .into_iter()
        .enumerate()
        .map(|(w, addr)| {
            let (addr, acknowledged, stop) = (addr.clone(), acknowledged.clone(), stop.clone());
            std::thread::spawn(move || {
                let agent = agent();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) && i < 400 {
                    if let Some(id) = add(&agent, &addr, &format!("writer {w} memory {i}")) {
                        acknowledged.lock().unwrap().push(id);
                    }
                    i += 1;
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while acknowledged.lock().unwrap().len() < 120 {
        assert!(Instant::now() < deadline, "the load never got going");
        std::thread::sleep(Duration::from_millis(5));
    }
    k.kill();
    // The survivor keeps taking writes while the victim is down.
    let before = acknowledged.lock().unwrap().len();
    while acknowledged.lock().unwrap().len() < before + 60 {
        assert!(
            Instant::now() < deadline,
            "the survivor stopped taking writes"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.join().unwrap();
    }
    let k = Node::start(&dir.path().join("k"), &nats.url(), "k");
    converge(&a.addr, &k.addr);
    let (a_ids, a_all) = memories(&a.addr);
    let (k_ids, k_all) = memories(&k.addr);
    assert_eq!(k_all, a_all, "the restarted node equals the survivor");
    let mut acked = acknowledged.lock().unwrap().clone();
    acked.sort();
    let missing: Vec<_> = acked
        .iter()
        .filter(|id| a_ids.binary_search(id).is_err())
        .collect();
    assert!(missing.is_empty(), "acknowledged writes lost: {missing:?}");
    let mut unique = a_ids.clone();
    unique.dedup();
    assert_eq!(unique.len(), a_ids.len(), "no memory twice");
    assert_eq!(k_ids, a_ids);
}
