//! Helpers shared by the end-to-end tests: a manager with a collecting sink, and for the server
//! tests an in-process server on an ephemeral port, an HTTP client and WebSocket clients that
//! wait on conditions with deadlines.

#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use ::http as http_types;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

// Keep every bundled plugin's registration linked.
use coda as _;

/// How long any single wait in these tests may take.
pub const DEADLINE: Duration = Duration::from_secs(10);

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A server on 127.0.0.1:0 over a temp dir.
pub struct Server {
    pub handle: coda_server::ServerHandle,
    pub dir: tempfile::TempDir,
}

impl Server {
    /// Starts a server with `websocket` sink options `ws` (TOML lines) and extra TOML.
    pub async fn start(ws: &str, extra: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let toml = format!(
            r#"
            {extra}
            [memory]
            backend = "memory"
            embedder = "hashing"
            [stores.fs]
            dir = "{snaps}"
            [[sinks]]
            type = "websocket"
            {ws}
            "#,
            snaps = dir.path().join("snapshots").display(),
        );
        let mut config = coda::Config::from_toml_str(&toml).unwrap();
        config.server.bind = "127.0.0.1:0".into();
        let handle = coda_server::start(config).await.unwrap();
        Server { handle, dir }
    }

    pub fn addr(&self) -> String {
        self.handle.addr().to_string()
    }

    pub fn manager(&self) -> &std::sync::Arc<coda::MemoryManager> {
        self.handle.manager()
    }

    /// Emits `n` distinct conversation turns through the library.
    pub fn turns(&self, n: usize) {
        for i in 0..n {
            self.manager()
                .add_turn(coda::Role::User, &format!("message {i}"))
                .unwrap();
        }
    }
}

/// An HTTP response: status, headers, body parsed as JSON (Null when empty or not JSON).
pub struct Reply {
    pub status: u16,
    pub headers: http_types::HeaderMap,
    pub text: String,
    pub json: Value,
}

/// Sends one HTTP request.
pub async fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Reply {
    http_within(DEADLINE, addr, method, path, headers, body).await
}

/// Sends one HTTP request whose answer may take up to `deadline`.
pub async fn http_within(
    deadline: Duration,
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Reply {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut request = http_types::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let body = Full::new(Bytes::from(body.unwrap_or("").to_owned()));
    let response = tokio::time::timeout(deadline, client.request(request.body(body).unwrap()))
        .await
        .expect("HTTP response in time")
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        text,
        json,
    }
}

/// Connects to `/ws?query` with extra headers; `Err(status)` when refused before the upgrade.
pub async fn try_ws(addr: &str, query: &str, headers: &[(&str, &str)]) -> Result<Ws, u16> {
    let mut request = format!("ws://{addr}/ws?{query}")
        .into_client_request()
        .unwrap();
    for (k, v) in headers {
        request.headers_mut().insert(
            http_types::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    match tokio::time::timeout(DEADLINE, tokio_tungstenite::connect_async(request))
        .await
        .expect("WebSocket handshake in time")
    {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(e) => panic!("unexpected WebSocket error: {e}"),
    }
}

/// Connects and checks the welcome frame; returns the socket and the welcome.
pub async fn ws(addr: &str, query: &str) -> (Ws, Value) {
    let mut ws = try_ws(addr, query, &[]).await.unwrap();
    let welcome = next(&mut ws).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    (ws, welcome)
}

/// The next text frame as JSON (pings are answered by reading).
pub async fn next(ws: &mut Ws) -> Value {
    loop {
        let message = tokio::time::timeout(DEADLINE, ws.next())
            .await
            .expect("a frame in time")
            .expect("the connection is open")
            .expect("a readable frame");
        match message {
            Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            Message::Close(frame) => panic!("closed: {frame:?}"),
            _ => {}
        }
    }
}

/// Reads frames until the next event (skipping protocol frames other than `batch`); for batch
/// frames, returns every event in it.
pub async fn next_events(ws: &mut Ws) -> Vec<Value> {
    loop {
        let frame = next(ws).await;
        match frame["type"].as_str() {
            Some("batch") => return frame["events"].as_array().unwrap().clone(),
            Some("welcome" | "pong" | "lagged" | "replay_gap" | "error") => continue,
            _ => return vec![frame],
        }
    }
}

/// Reads events until `count` have arrived; returns their seqs.
pub async fn seqs(ws: &mut Ws, count: usize) -> Vec<u64> {
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        for event in next_events(ws).await {
            out.push(event["seq"].as_u64().unwrap());
        }
    }
    out
}

/// Sends a text frame.
pub async fn send(ws: &mut Ws, text: &str) {
    ws.send(Message::Text(text.into())).await.unwrap();
}

/// Reads until the server closes; returns the close code.
pub async fn close_code(ws: &mut Ws) -> u16 {
    loop {
        let message = tokio::time::timeout(DEADLINE, ws.next())
            .await
            .expect("a close in time");
        match message {
            Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
            Some(Ok(Message::Close(None))) => return u16::from(CloseCode::Status),
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

/// Sends a ping op and waits for the pong: everything sent before it has been handled.
pub async fn round_trip(ws: &mut Ws) {
    send(ws, r#"{"op":"ping"}"#).await;
    loop {
        if next(ws).await["type"] == "pong" {
            return;
        }
    }
}

/// Every bundled plugin, as the facade lists them.
#[allow(unused_imports)]
pub use coda::BUNDLED;

/// A manager over the memory backend (plus `memory_keys` in `[memory]`) and an `fs` store in
/// `dir`, with a collecting sink and no configured sinks.
pub fn manager_in(
    dir: &std::path::Path,
    memory_keys: &str,
) -> (
    std::sync::Arc<coda::MemoryManager>,
    std::sync::Arc<coda::testkit::CollectingSink>,
) {
    let toml = format!(
        "[memory]\nbackend = \"memory\"\nembedder = \"hashing\"\n{memory_keys}\n[stores.fs]\ndir = \"{}\"\n",
        dir.join("snapshots").display()
    );
    let config = coda::Config::from_toml_str(&toml).expect("test config");
    let sink = coda::testkit::CollectingSink::new();
    let manager = coda::MemoryManager::builder(config)
        .configured_sinks(false)
        .sink(sink.clone())
        .build()
        .expect("manager");
    (manager, sink)
}

/// One user's memory, session and saved snapshot, seeded over HTTP for the isolation tests to
/// probe from another scope; its markers must never appear in an answer to anyone else.
pub struct Victim {
    pub memory: String,
    pub snapshot: String,
    pub secret: &'static str,
    pub session: &'static str,
}

impl Victim {
    /// Strings that only this user's data holds.
    pub fn markers(&self) -> [&str; 4] {
        [&self.memory, &self.snapshot, self.secret, self.session]
    }
}

/// Seeds user `alice` (a turn in `session`, a memory and a saved snapshot holding `secret`),
/// sending `headers` (e.g. a tenant's token) with each request.
pub async fn seed_victim(
    addr: &str,
    headers: &[(&str, &str)],
    secret: &'static str,
    session: &'static str,
) -> Victim {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    let post = |path: String, body: Value| {
        let all = all.clone();
        async move { http(addr, "POST", &path, &all, Some(&body.to_string())).await }
    };
    let turn = post(
        format!("/api/v1/sessions/{session}/turns"),
        serde_json::json!({"role": "user", "content": format!("my pin is {secret}"), "user_id": "alice"}),
    )
    .await;
    assert_eq!(turn.status, 201, "{}", turn.text);
    let memory = post(
        "/api/v1/memories".into(),
        serde_json::json!({"content": format!("{secret} is her pin"), "user_id": "alice", "session_id": session}),
    )
    .await;
    assert_eq!(memory.status, 201, "{}", memory.text);
    let snapshot = post(
        "/api/v1/snapshots".into(),
        serde_json::json!({"save": true, "user_id": "alice", "session_id": session}),
    )
    .await;
    assert_eq!(snapshot.status, 201, "{}", snapshot.text);
    Victim {
        memory: memory.json["id"].as_str().unwrap().to_owned(),
        snapshot: snapshot.json["snapshot_id"].as_str().unwrap().to_owned(),
        secret,
        session,
    }
}

/// Inside `impl MemoryBackend for T`, delegates every call but `insert`, `update` and the
/// defaulted ones to `self.$inner`, for test backends that wrap a real one and change a write.
#[allow(unused_macros)] // not every test binary wraps a backend
macro_rules! delegate_backend {
    ($inner:ident) => {
        fn get(
            &self,
            scope: &coda::Scope,
            id: coda::MemoryId,
        ) -> coda::Result<Option<coda::MemoryRecord>> {
            self.$inner.get(scope, id)
        }
        fn delete(
            &self,
            scope: &coda::Scope,
            id: coda::MemoryId,
            by: coda::By,
        ) -> coda::Result<bool> {
            self.$inner.delete(scope, id, by)
        }
        fn history(
            &self,
            scope: &coda::Scope,
            id: coda::MemoryId,
        ) -> coda::Result<Option<Vec<coda::Version>>> {
            self.$inner.history(scope, id)
        }
        fn list(
            &self,
            scope: &coda::Scope,
            offset: usize,
            limit: usize,
            filter: Option<&coda::Filter>,
        ) -> coda::Result<Vec<coda::Memory>> {
            self.$inner.list(scope, offset, limit, filter)
        }
        fn search(
            &self,
            scope: &coda::Scope,
            query: &[f32],
            limit: usize,
            min_similarity: f32,
            filter: Option<&coda::Filter>,
        ) -> coda::Result<Vec<coda::ScoredMemory>> {
            self.$inner
                .search(scope, query, limit, min_similarity, filter)
        }
        fn len(&self) -> coda::Result<usize> {
            self.$inner.len()
        }
        fn count(&self, scope: &coda::Scope) -> coda::Result<usize> {
            self.$inner.count(scope)
        }
        fn owners(&self, tenant: &str) -> coda::Result<Vec<(coda::Owner, usize)>> {
            self.$inner.owners(tenant)
        }
        fn scan(&self, visit: &mut dyn FnMut(&coda::MemoryRecord)) -> coda::Result<()> {
            self.$inner.scan(visit)
        }
        fn scan_owner(
            &self,
            scope: &coda::Scope,
            visit: &mut dyn FnMut(&coda::MemoryRecord),
        ) -> coda::Result<()> {
            self.$inner.scan_owner(scope, visit)
        }
        fn replace_owner(
            &self,
            scope: &coda::Scope,
            records: Vec<coda::MemoryRecord>,
        ) -> coda::Result<()> {
            self.$inner.replace_owner(scope, records)
        }
        fn erase_owner(&self, scope: &coda::Scope) -> coda::Result<coda::Erased> {
            self.$inner.erase_owner(scope)
        }
        fn apply_session(&self, change: coda::SessionChange) -> coda::Result<()> {
            self.$inner.apply_session(change)
        }
        fn session(&self, key: &coda::SessionKey) -> coda::Result<Option<coda::SessionInfo>> {
            self.$inner.session(key)
        }
        fn session_state(
            &self,
            key: &coda::SessionKey,
        ) -> coda::Result<Option<coda::SessionState>> {
            self.$inner.session_state(key)
        }
        fn sessions(
            &self,
            tenant: &str,
            visit: &mut dyn FnMut(&coda::SessionState),
        ) -> coda::Result<()> {
            self.$inner.sessions(tenant, visit)
        }
    };
}
#[allow(unused_imports)]
pub(crate) use delegate_backend;
