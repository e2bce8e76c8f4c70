//! Cluster snapshots (SPEC §12): one node at a time holds the lease and writes them into the
//! JetStream object store; a node behind the stream's first sequence (a stale one, or a new
//! one on an empty directory) bootstraps from the newest and ends with the others' state; a
//! node no snapshot covers refuses to start and says what to do.

#![allow(clippy::unwrap_used)]

mod cluster_support;
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use cluster_support::{config_of, converged, nats_binary, node_with, state_of, Nats};
use coda_cluster_nats::Cluster;
use common::http;
use futures_util::StreamExt;
use serde_json::{json, Value};

/// Snapshots every second, kept two at a time.
const FAST: &str = "snapshot_every_s = 1";

async fn post(addr: &str, path: &str, body: Value) -> common::Reply {
    http(addr, "POST", path, &[], Some(&body.to_string())).await
}

async fn add(addr: &str, content: &str) {
    let r = post(addr, "/api/v1/memories", json!({ "content": content })).await;
    assert_eq!(r.status, 201, "{}", r.text);
}

async fn stream(url: &str) -> jetstream::stream::Stream {
    let client = async_nats::connect(url).await.unwrap();
    jetstream::new(client).get_stream("CODA").await.unwrap()
}

/// The sequences of the finished snapshots in the object store.
async fn snapshots(url: &str) -> Vec<u64> {
    let client = async_nats::connect(url).await.unwrap();
    let Ok(store) = jetstream::new(client)
        .get_object_store("CODA_snapshots")
        .await
    else {
        return Vec::new();
    };
    let mut list = store.list().await.unwrap();
    let mut found = Vec::new();
    while let Some(object) = list.next().await {
        let name = object.unwrap().name;
        if let Some(seq) = name
            .strip_prefix("snapshot/")
            .and_then(|rest| rest.strip_suffix("/manifest.json"))
        {
            found.push(seq.parse::<u64>().unwrap());
        }
    }
    found.sort_unstable();
    found
}

/// Waits until a snapshot holds stream sequence `seq`; returns the newest.
async fn snapshot_at_least(url: &str, seq: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(&newest) = snapshots(url).await.last() {
            if newest >= seq {
                return newest;
            }
        }
        assert!(Instant::now() < deadline, "no snapshot reached {seq}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn stale_dirs(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().starts_with("memory.stale-")
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_behind_the_stream_bootstraps_from_the_newest_snapshot() {
    let Some(binary) = nats_binary() else { return };
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(&binary, dir.path(), &[]);
    let url = nats.url();
    let a = node_with(&dir.path().join("a"), &url, "a", FAST).await;
    let a_addr = a.addr().to_string();
    let b_dir = dir.path().join("b");
    let b = node_with(&b_dir, &url, "b", FAST).await;
    for i in 0..5 {
        add(&a_addr, &format!("before {i}")).await;
    }
    converged(&[a_addr.clone(), b.addr().to_string()]).await;
    b.shutdown().await.unwrap();
    for i in 0..10 {
        add(&a_addr, &format!("while b was away {i}")).await;
    }
    let last = converged(std::slice::from_ref(&a_addr)).await;
    let covered = snapshot_at_least(&url, last).await;
    assert!(
        snapshots(&url).await.len() <= 2,
        "snapshot_keep = 2 prunes older ones"
    );
    // Retention, in fast motion: every entry the snapshot holds leaves the stream.
    stream(&url)
        .await
        .purge()
        .sequence(covered + 1)
        .await
        .unwrap();
    for i in 0..3 {
        add(&a_addr, &format!("after the purge {i}")).await;
    }

    let b = node_with(&b_dir, &url, "b", FAST).await;
    let b_addr = b.addr().to_string();
    let d = node_with(&dir.path().join("d"), &url, "d", FAST).await;
    let d_addr = d.addr().to_string();
    converged(&[a_addr.clone(), b_addr.clone(), d_addr.clone()]).await;
    let users = ["default".to_string()];
    let state = state_of(&a_addr, &users).await;
    assert_eq!(
        state["default"]["memories"]["memories"]
            .as_array()
            .unwrap()
            .len(),
        18
    );
    assert_eq!(state_of(&b_addr, &users).await, state, "the stale node");
    assert_eq!(state_of(&d_addr, &users).await, state, "the new node");
    assert_eq!(stale_dirs(&b_dir), 1, "the stale data was moved aside");
    assert_eq!(
        stale_dirs(&dir.path().join("d")),
        0,
        "nothing to move aside"
    );
    // Writes go on everywhere after a bootstrap.
    add(&d_addr, "written on the bootstrapped node").await;
    converged(&[a_addr.clone(), b_addr.clone(), d_addr.clone()]).await;
    assert_eq!(
        state_of(&b_addr, &users).await,
        state_of(&d_addr, &users).await
    );
    for n in [a, b, d] {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_no_snapshot_covers_refuses_to_start_and_says_why() {
    let Some(binary) = nats_binary() else { return };
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(&binary, dir.path(), &[]);
    let url = nats.url();
    // The default period (an hour): no snapshot is written during the test.
    let a = node_with(&dir.path().join("a"), &url, "a", "").await;
    let a_addr = a.addr().to_string();
    for i in 0..4 {
        add(&a_addr, &format!("memory {i}")).await;
    }
    let last = converged(std::slice::from_ref(&a_addr)).await;
    a.shutdown().await.unwrap();
    stream(&url).await.purge().sequence(last).await.unwrap();
    let toml = format!(
        "[memory]\nbackend = \"file\"\nembedder = \"hashing\"\n[backends.file]\ndir = \"{}\"\n\
         [cluster]\nnats_url = \"{url}\"\nnode_id = \"new\"\n",
        dir.path().join("new").display()
    );
    let mut config = coda::Config::from_toml_str(&toml).unwrap();
    config.server.bind = "127.0.0.1:0".into();
    let error = match coda_server::start(config).await {
        Ok(_) => panic!("a node no snapshot covers started"),
        Err(e) => e.to_string(),
    };
    assert!(error.contains("no cluster snapshot covers"), "{error}");
    assert!(error.contains("copy the data directory"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_at_a_time_holds_the_snapshot_lease() {
    let Some(binary) = nats_binary() else { return };
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(&binary, dir.path(), &[]);
    let mut config = coda::cluster::ClusterConfig {
        nats_url: nats.url(),
        ..Default::default()
    };
    // A lease lasts two periods: two seconds here.
    config.snapshot_every_s = 1;
    let one = Cluster::<()>::connect(&config, "one".into()).await.unwrap();
    let two = Cluster::<()>::connect(&config, "two".into()).await.unwrap();
    assert!(one.snapshots().hold_lease().await.unwrap());
    assert!(!two.snapshots().hold_lease().await.unwrap(), "held by one");
    assert!(one.snapshots().hold_lease().await.unwrap(), "renewed");
    assert!(!two.snapshots().hold_lease().await.unwrap(), "still held");
    // One stops renewing: after the lease ends, two takes it, and one no longer has it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !two.snapshots().hold_lease().await.unwrap() {
        assert!(
            Instant::now() < deadline,
            "two never took the expired lease"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!one.snapshots().hold_lease().await.unwrap(), "taken over");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_memories_are_swept_alike_on_every_node() {
    let Some(binary) = nats_binary() else { return };
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(&binary, dir.path(), &[]);
    let mut nodes = Vec::new();
    for id in ["a", "b"] {
        let mut config = config_of(&dir.path().join(id), &nats.url(), id, "");
        config.memory.expiry_sweep_s = 1;
        nodes.push(coda_server::start(config).await.unwrap());
    }
    let addrs: Vec<String> = nodes.iter().map(|n| n.addr().to_string()).collect();
    let r = post(
        &addrs[0],
        "/api/v1/memories",
        json!({"content": "a passing remark", "ttl_s": 1}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let passing = r.json["id"].as_str().unwrap().to_owned();
    add(&addrs[1], "a lasting fact").await;
    // Each node asks for a sweep every second; the first one past the expiry deletes it,
    // on every node, at the same point of the stream.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut gone = true;
        for addr in &addrs {
            let r = http(
                addr,
                "GET",
                &format!("/api/v1/memories/{passing}"),
                &[],
                None,
            )
            .await;
            gone &= r.status == 404;
        }
        if gone {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the expired memory was never swept"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    converged(&addrs).await;
    let users = ["default".to_string()];
    let state = state_of(&addrs[0], &users).await;
    let left = state["default"]["memories"]["memories"].as_array().unwrap();
    assert_eq!(left.len(), 1, "{state}");
    assert_eq!(left[0]["content"], "a lasting fact");
    assert_eq!(state_of(&addrs[1], &users).await, state);
    // The deletion is the same event on both: same seq, same id.
    let mut deletes = Vec::new();
    for addr in &addrs {
        let history = http(
            addr,
            "GET",
            &format!("/api/v1/memories/{passing}/history"),
            &[],
            None,
        )
        .await;
        assert_eq!(history.status, 200, "{}", history.text);
        deletes.push(history.json);
    }
    assert_eq!(deletes[0], deletes[1]);
    for n in nodes {
        n.shutdown().await.unwrap();
    }
}
