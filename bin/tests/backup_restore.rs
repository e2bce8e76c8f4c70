//! Online backup under concurrent writes, restored with the real `coda restore` (SPEC §13):
//! the restored store equals, exactly, the state the events up to the manifest's `seq` build.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const DEADLINE: Duration = Duration::from_secs(60);
const WRITERS: usize = 4;
const USERS: usize = 3;

/// One HTTP/1.1 request on a fresh connection: status and body as JSON (Null if not JSON).
fn call(addr: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).unwrap().parse().unwrap();
    let text = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    (status, serde_json::from_str(text).unwrap_or(Value::Null))
}

fn config(data: &Path, backups: &Path) -> coda::Config {
    let toml = format!(
        r#"
        [server]
        bind = "127.0.0.1:0"
        backup_dir = "{backups}"
        [memory]
        backend = "file"
        embedder = "hashing"
        [backends.file]
        dir = "{data}"
        sync = "never"
        [stores.fs]
        dir = "{data}/snapshots"
        [events]
        replay_capacity = 1000000
        [[sinks]]
        type = "websocket"
        "#,
        data = data.display(),
        backups = backups.display(),
    );
    coda::Config::from_toml_str(&toml).unwrap()
}

/// One writer: adds memories, edits and deletes some, adds turns, until told to stop.
fn writer(addr: String, t: usize, stop: Arc<AtomicBool>, done: Arc<AtomicUsize>) {
    let user = format!("u{}", t % USERS);
    let mut last: Option<String> = None;
    let mut i = 0;
    while !stop.load(Ordering::Acquire) {
        let body =
            json!({"content": format!("note {t}-{i}"), "user_id": user, "memory_type": "note"});
        let (status, memory) = call(&addr, "POST", "/api/v1/memories", Some(&body));
        assert_eq!(status, 201, "{memory}");
        let id = memory["id"].as_str().unwrap().to_owned();
        if i % 3 == 1 {
            let patch = json!({"content": format!("note {t}-{i} edited"), "importance": 0.9});
            let (status, r) = call(
                &addr,
                "PATCH",
                &format!("/api/v1/memories/{id}?user_id={user}"),
                Some(&patch),
            );
            assert_eq!(status, 200, "{r}");
        }
        if i % 5 == 4 {
            if let Some(old) = last.take() {
                let (status, r) = call(
                    &addr,
                    "DELETE",
                    &format!("/api/v1/memories/{old}?user_id={user}"),
                    None,
                );
                assert_eq!(status, 200, "{r}");
            }
        }
        if i % 2 == 0 {
            let turn = json!({"role": "user", "content": format!("turn {t}-{i}"), "user_id": user});
            let (status, r) = call(
                &addr,
                "POST",
                &format!("/api/v1/sessions/s{t}/turns"),
                Some(&turn),
            );
            assert_eq!(status, 201, "{r}");
        }
        last = Some(id);
        i += 1;
        done.fetch_add(1, Ordering::AcqRel);
    }
}

/// Waits until `count` reaches `at_least`, within the deadline.
fn wait_for(count: &AtomicUsize, at_least: usize) {
    let start = Instant::now();
    while count.load(Ordering::Acquire) < at_least {
        assert!(start.elapsed() < DEADLINE, "writers stalled at {count:?}");
        std::thread::yield_now();
    }
}

/// Memories by id (content, metadata) and turns by session, as the events up to `seq` make them.
type State = (
    BTreeMap<String, (String, String, Value)>,
    BTreeMap<String, u64>,
);

fn replay(events: &[serde_json::Map<String, Value>], seq: u64) -> State {
    let (mut memories, mut sessions) = (BTreeMap::new(), BTreeMap::new());
    for event in events.iter().filter(|e| e["seq"].as_u64().unwrap() <= seq) {
        let id = || event["memory_id"].as_str().unwrap().to_owned();
        let user = event["user_id"].as_str().unwrap_or("default").to_owned();
        match event["type"].as_str().unwrap() {
            "memory_store" | "memory_update" => {
                let content = event["content"].as_str().unwrap().to_owned();
                memories.insert(id(), (user, content, event["metadata"].clone()));
            }
            "memory_delete" => {
                memories.remove(&id());
            }
            "conversation_turn" => {
                let session = event["session_id"].as_str().unwrap().to_owned();
                *sessions.entry(session).or_insert(0) += 1;
            }
            _ => {}
        }
    }
    (memories, sessions)
}

/// What a store opened on `data` holds.
fn read_store(data: &Path, backups: &Path) -> State {
    let manager = coda::MemoryManager::builder(config(data, backups))
        .configured_sinks(false)
        .build()
        .unwrap();
    let mut memories = BTreeMap::new();
    for u in 0..USERS {
        let user = format!("u{u}");
        let all = coda::Visibility {
            include_superseded: true,
            include_expired: true,
        };
        for memory in manager
            .user(&user)
            .unwrap()
            .list_visible(0, 1000, None, all)
            .unwrap()
        {
            let metadata = serde_json::to_value(&memory.metadata).unwrap();
            memories.insert(
                memory.id.to_string(),
                (user.clone(), memory.content, metadata),
            );
        }
    }
    let mut sessions = BTreeMap::new();
    manager
        .backend()
        .sessions("default", &mut |state| {
            sessions.insert(state.info.session_id.clone(), state.info.turn_count);
        })
        .unwrap();
    (memories, sessions)
}

fn coda() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_coda"));
    cmd.env_remove("CODA_CONFIG");
    cmd
}

#[test]
fn a_backup_under_concurrent_writes_restores_exactly_the_state_at_its_seq() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, backups) = (tmp.path().join("data"), tmp.path().join("backups"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = runtime
        .block_on(coda_server::start(config(&data, &backups)))
        .unwrap();
    let addr = server.addr().to_string();
    let (status, snap) = call(
        &addr,
        "POST",
        "/api/v1/snapshots",
        Some(&json!({"save": true})),
    );
    assert_eq!(status, 201, "{snap}");

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|t| {
            let (addr, stop, done) = (addr.clone(), Arc::clone(&stop), Arc::clone(&done));
            std::thread::spawn(move || writer(addr, t, stop, done))
        })
        .collect();
    wait_for(&done, 40);
    let (status, manifest) = call(
        &addr,
        "POST",
        "/api/v1/backup",
        Some(&json!({"dir": "under-load"})),
    );
    assert_eq!(status, 201, "{manifest}");
    // Writes went on during the backup and go on after it.
    let after = done.load(Ordering::Acquire);
    wait_for(&done, after + 20);
    stop.store(true, Ordering::Release);
    for w in writers {
        w.join().unwrap();
    }
    let seq = manifest["seq"].as_u64().unwrap();
    let manager = server.manager();
    assert_eq!(manifest["epoch"], manager.bus().epoch().to_string());
    assert_eq!(manifest["backend"], "file");
    assert!(
        manager.bus().latest_seq() > seq,
        "writes went on after the backup"
    );
    let paths: Vec<&str> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"backend/memory.log"), "{paths:?}");
    assert!(
        paths.iter().any(|p| p.starts_with("snapshots/")),
        "{paths:?}"
    );
    let events: Vec<_> = manager
        .bus()
        .replay()
        .after(0)
        .events
        .iter()
        .map(|e| e.to_value())
        .collect();
    assert_eq!(
        events.first().unwrap()["seq"],
        1,
        "the ring holds every event"
    );

    let backup = backups.join("under-load");
    let restored = tmp.path().join("restored");
    let out = coda()
        .arg("restore")
        .arg(&backup)
        .arg("--to")
        .arg(&restored)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = replay(&events, seq);
    assert!(!expected.0.is_empty() && !expected.1.is_empty());
    assert_eq!(
        read_store(&restored, &backups),
        expected,
        "restored state = events up to seq {seq}"
    );
    assert_ne!(
        replay(&events, u64::MAX),
        expected,
        "later writes are not in the backup"
    );
    // The snapshot store came along.
    let id = snap["snapshot_id"].as_str().unwrap();
    let listed = std::fs::read_dir(restored.join("snapshots"))
        .unwrap()
        .any(|e| e.unwrap().file_name().to_string_lossy().contains(id));
    assert!(listed, "snapshot {id} restored");

    // A second restore onto it is refused without --force, and replaces it with --force.
    let again = coda()
        .arg("restore")
        .arg(&backup)
        .arg("--to")
        .arg(&restored)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    let forced = coda()
        .arg("restore")
        .arg(&backup)
        .arg("--to")
        .arg(&restored)
        .arg("--force")
        .output()
        .unwrap();
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    assert_eq!(read_store(&restored, &backups), expected);

    // A damaged backup is refused, naming the file, and restores nothing.
    let log = backup.join("backend/memory.log");
    let mut bytes = std::fs::read(&log).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&log, bytes).unwrap();
    let fresh = tmp.path().join("fresh");
    let damaged = coda()
        .arg("restore")
        .arg(&backup)
        .arg("--to")
        .arg(&fresh)
        .output()
        .unwrap();
    assert!(!damaged.status.success());
    assert!(String::from_utf8_lossy(&damaged.stderr).contains("memory.log"));
    assert!(!fresh.exists());

    // Names outside backup_dir, and names taken, are 422 naming `dir`.
    for bad in ["../escape", "a/b", "/abs", "..", ".hidden", "under-load"] {
        let (status, r) = call(&addr, "POST", "/api/v1/backup", Some(&json!({"dir": bad})));
        assert_eq!(status, 422, "{bad}: {r}");
        assert_eq!(r["error"]["field"], "dir", "{bad}: {r}");
    }
    assert!(!tmp.path().join("escape").exists());
    runtime.block_on(server.shutdown()).unwrap();
}
