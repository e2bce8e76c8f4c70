//! Snapshots per tenant (SPEC §9): a tenant's saved snapshots live in its own directory of the
//! store, `<dir>/tenants/<id>`; other tenants neither list nor erase them.

#![allow(clippy::unwrap_used)]

mod common;

use common::{http, Server};
use serde_json::Value;

const CONFIG: &str = "[server]\ntokens = [\"root-token\"]\n\
     [[server.tenants]]\nid = \"acme\"\ntokens = [\"acme-token\"]\n\
     [[server.tenants]]\nid = \"beta\"\ntokens = [\"beta-token\"]\n";

/// Every file name under `dir`, recursively, as paths relative to it.
fn files(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_snapshots_live_in_its_own_directory() {
    let server = Server::start("", CONFIG).await;
    let addr = server.addr();
    let call =
        |token: &'static str, method: &'static str, path: String, body: Option<&'static str>| {
            let addr = addr.clone();
            async move {
                let auth = format!("Bearer {token}");
                let headers = [
                    ("authorization", auth.as_str()),
                    ("content-type", "application/json"),
                ];
                http(&addr, method, &path, &headers, body).await
            }
        };
    let memory = call(
        "acme-token",
        "POST",
        "/api/v1/memories".into(),
        Some(r#"{"content":"x","user_id":"alice"}"#),
    )
    .await;
    assert_eq!(memory.status, 201, "{}", memory.text);
    let saved = call(
        "acme-token",
        "POST",
        "/api/v1/snapshots".into(),
        Some(r#"{"save":true,"user_id":"alice"}"#),
    )
    .await;
    assert_eq!(saved.status, 201, "{}", saved.text);
    let id = saved.json["snapshot_id"].as_str().unwrap().to_owned();

    let snaps = server.dir.path().join("snapshots");
    let held = files(&snaps);
    let mine: Vec<&String> = held.iter().filter(|f| f.contains(&id)).collect();
    assert_eq!(mine.len(), 1, "{held:?}");
    assert!(mine[0].starts_with("tenants/acme/"), "{held:?}");

    let listed = |token: &'static str| async move {
        let r = call(token, "GET", "/api/v1/snapshots?user_id=alice".into(), None).await;
        r.json["snapshots"].as_array().cloned().unwrap_or_default()
    };
    assert_eq!(listed("acme-token").await.len(), 1);
    assert!(listed("beta-token").await.is_empty());

    // Beta erasing its own `alice` leaves acme's snapshot.
    let erased = call("beta-token", "DELETE", "/api/v1/users/alice".into(), None).await;
    assert!(
        erased.status == 404 || erased.json["snapshots_deleted"] == 0,
        "{}",
        erased.text
    );
    assert_eq!(listed("acme-token").await.len(), 1);
    let erased = call("acme-token", "DELETE", "/api/v1/users/alice".into(), None).await;
    assert_eq!(
        erased.json["snapshots_deleted"],
        Value::from(1),
        "{}",
        erased.text
    );
    assert!(files(&snaps).iter().all(|f| !f.contains(&id)));
}
