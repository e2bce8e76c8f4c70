//! A write whose backend hands its fsync wait to the server (`coda::durability`) is answered
//! only once that wait resolves, on the request's own thread (a quick operation) and on the
//! blocking pool alike; a failed wait is a 503, not a success.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use coda::backend_memory::InMemoryBackend;
use coda::durability::{self, Settle};
use coda::{HashingEmbedder, MemoryBackend, MemoryRecord, Result, Scope};
use common::{http, Reply, DEADLINE};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::task::JoinHandle;

/// The memory backend, except that each memory write hands off a durability wait the test
/// settles by hand, as the file backend's fsync thread would.
struct Deferring {
    inner: InMemoryBackend,
    waits: UnboundedSender<Settle>,
}

impl Deferring {
    fn hand_off(&self) {
        let waits = self.waits.clone();
        let handed = durability::hand_off(|| {
            let (settle, durable) = durability::promise();
            waits.send(settle).unwrap();
            durable
        });
        assert!(
            handed,
            "the server runs every write inside a deferral scope"
        );
    }
}

impl MemoryBackend for Deferring {
    fn quick_when_deferred(&self) -> bool {
        true
    }
    fn may_block(&self) -> bool {
        true
    }
    fn insert(&self, scope: &Scope, record: MemoryRecord) -> Result<()> {
        self.inner.insert(scope, record)?;
        self.hand_off();
        Ok(())
    }
    fn update(&self, scope: &Scope, record: MemoryRecord) -> Result<()> {
        self.inner.update(scope, record)?;
        self.hand_off();
        Ok(())
    }
    common::delegate_backend!(inner);
}

async fn server() -> (
    coda_server::ServerHandle,
    UnboundedReceiver<Settle>,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[memory]\nbackend = \"memory\"\nembedder = \"hashing\"\n[stores.fs]\ndir = \"{}\"\n",
        dir.path().join("snapshots").display()
    );
    let mut config = coda::Config::from_toml_str(&toml).unwrap();
    config.server.bind = "127.0.0.1:0".into();
    let embedder: Arc<dyn coda::Embedder> = Arc::new(HashingEmbedder::new(64).unwrap());
    let (waits, handed) = unbounded_channel();
    let backend = Arc::new(Deferring {
        inner: InMemoryBackend::new(64),
        waits,
    });
    let manager = coda::MemoryManager::builder(config.clone())
        .backend(backend)
        .embedder(embedder)
        .configured_sinks(false)
        .build()
        .unwrap();
    let handle = coda_server::start_with(config, manager).await.unwrap();
    (handle, handed, dir)
}

/// Sends a request in the background; returns it and the wait its write handed off.
async fn send(
    addr: &str,
    handed: &mut UnboundedReceiver<Settle>,
    method: &'static str,
    path: String,
    body: &'static str,
) -> (JoinHandle<Reply>, Settle) {
    let addr = addr.to_owned();
    let request = tokio::spawn(async move { http(&addr, method, &path, &[], Some(body)).await });
    let settle = tokio::time::timeout(DEADLINE, handed.recv())
        .await
        .expect("the write handed off its wait in time")
        .unwrap();
    (request, settle)
}

/// The request's answer, once it comes.
async fn answer(request: JoinHandle<Reply>) -> Reply {
    tokio::time::timeout(DEADLINE, request)
        .await
        .expect("answered in time")
        .unwrap()
}

/// The request is still unanswered a while after its write was applied.
async fn still_waiting(request: &mut JoinHandle<Reply>) {
    let early = tokio::time::timeout(Duration::from_millis(300), &mut *request).await;
    assert!(
        early.is_err(),
        "answered before the write was durable: {:?}",
        early.map(|r| r.map(|r| r.text))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_is_answered_only_once_its_handed_off_wait_resolves() {
    let (handle, mut handed, _dir) = server().await;
    let addr = handle.addr().to_string();

    // POST /memories runs on the request's thread (quick, cheap embedder).
    let (mut request, settle) = send(
        &addr,
        &mut handed,
        "POST",
        "/api/v1/memories".into(),
        r#"{"content":"the user keeps bees","user_id":"ann"}"#,
    )
    .await;
    still_waiting(&mut request).await;
    settle.settle(Ok(()));
    let created = answer(request).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.json["id"].as_str().unwrap().to_owned();

    // PATCH runs on the blocking pool; its wait is awaited all the same.
    let (mut request, settle) = send(
        &addr,
        &mut handed,
        "PATCH",
        format!("/api/v1/memories/{id}?user_id=ann"),
        r#"{"content":"the user keeps two hives of bees"}"#,
    )
    .await;
    still_waiting(&mut request).await;
    settle.settle(Ok(()));
    let patched = answer(request).await;
    assert_eq!(patched.status, 200, "{}", patched.text);

    handle.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_wait_fails_is_answered_503_and_the_server_goes_on() {
    let (handle, mut handed, _dir) = server().await;
    let addr = handle.addr().to_string();
    let (request, settle) = send(
        &addr,
        &mut handed,
        "POST",
        "/api/v1/memories".into(),
        r#"{"content":"the user keeps bees","user_id":"ann"}"#,
    )
    .await;
    settle.settle(Err(coda::Error::Unavailable("fsync failed: EIO".into())));
    let failed = answer(request).await;
    assert_eq!(failed.status, 503, "{}", failed.text);
    assert!(failed.text.contains("fsync failed"), "{}", failed.text);

    // A dropped wait (its backend went away) fails the same way instead of hanging.
    let (request, settle) = send(
        &addr,
        &mut handed,
        "POST",
        "/api/v1/memories".into(),
        r#"{"content":"the user keeps wasps","user_id":"bob"}"#,
    )
    .await;
    drop(settle);
    let dropped = answer(request).await;
    assert_eq!(dropped.status, 503, "{}", dropped.text);

    let health = http(&addr, "GET", "/healthz", &[], None).await;
    assert_eq!(health.status, 200);
    handle.shutdown().await.unwrap();
}
