//! Helpers for the cluster tests: a real `nats-server` ([`Nats`]) and Coda nodes pointed at
//! it.

#![allow(dead_code, clippy::unwrap_used)]

mod nats;

use std::path::Path;
use std::time::{Duration, Instant};

pub use nats::{nats_binary, Nats};

use serde_json::Value;

use crate::common::http;

/// A Coda node on 127.0.0.1:0 with a file backend in `dir`.
pub async fn node(dir: &Path, nats: &str, id: &str) -> coda_server::ServerHandle {
    node_with(dir, nats, id, "").await
}

/// A node with extra `[cluster]` lines.
pub async fn node_with(
    dir: &Path,
    nats: &str,
    id: &str,
    cluster: &str,
) -> coda_server::ServerHandle {
    coda_server::start(config_of(dir, nats, id, cluster))
        .await
        .unwrap()
}

/// The configuration of [`node_with`], to change before starting it.
pub fn config_of(dir: &Path, nats: &str, id: &str, cluster: &str) -> coda::Config {
    let toml = format!(
        r#"
        [memory]
        backend = "file"
        embedder = "hashing"
        [backends.file]
        dir = "{data}"
        sync = "never"
        [stores.fs]
        dir = "{snaps}"
        [cluster]
        nats_url = "{nats}"
        node_id = "{id}"
        {cluster}
        [[sinks]]
        type = "websocket"
        "#,
        data = dir.join("memory").display(),
        snaps = dir.join("snapshots").display(),
    );
    let mut config = coda::Config::from_toml_str(&toml).unwrap();
    config.server.bind = "127.0.0.1:0".into();
    config
}

/// `/healthz`'s cluster object.
pub async fn cluster_status(addr: &str) -> Value {
    let reply = http(addr, "GET", "/healthz", &[], None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json["cluster"].clone()
}

/// Waits until every node has applied the same, latest stream sequence; returns it.
pub async fn converged(addrs: &[String]) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut applied = Vec::new();
        for addr in addrs {
            let status = cluster_status(addr).await;
            applied.push((
                status["applied_seq"].as_u64().unwrap(),
                status["stream_seq"].as_u64().unwrap(),
            ));
        }
        let top = applied.iter().map(|(a, s)| *a.max(s)).max().unwrap_or(0);
        if applied.iter().all(|(a, _)| *a == top) {
            return top;
        }
        assert!(
            Instant::now() < deadline,
            "nodes did not converge: {applied:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Everything a node holds for `users`: memories (with ids, times, lifecycle), sessions and
/// their turns, in a canonical order.
pub async fn state_of(addr: &str, users: &[String]) -> Value {
    let mut out = serde_json::Map::new();
    for user in users {
        let memories = http(
            addr,
            "GET",
            &format!("/api/v1/memories?user_id={user}&limit=1000&include_superseded=true"),
            &[],
            None,
        )
        .await;
        assert_eq!(memories.status, 200, "{}", memories.text);
        let sessions = http(
            addr,
            "GET",
            &format!("/api/v1/sessions?user_id={user}"),
            &[],
            None,
        )
        .await;
        assert_eq!(sessions.status, 200, "{}", sessions.text);
        let mut turns = Vec::new();
        for session in sessions.json["sessions"].as_array().unwrap() {
            let sid = session["session_id"].as_str().unwrap();
            let t = http(
                addr,
                "GET",
                &format!("/api/v1/sessions/{sid}/turns?user_id={user}"),
                &[],
                None,
            )
            .await;
            turns.push(t.json);
        }
        out.insert(
            user.clone(),
            serde_json::json!({"memories": memories.json, "sessions": sessions.json, "turns": turns}),
        );
    }
    Value::Object(out)
}
