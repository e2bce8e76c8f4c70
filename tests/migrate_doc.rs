//! The mem0 conversion script in docs/migrate.md, run as printed: its output imports, and
//! importing it twice changes nothing.

#![allow(clippy::unwrap_used)]

mod common;

use common::{http, Server};
use serde_json::{json, Value};

/// The first ```python block of docs/migrate.md.
fn script() -> String {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/migrate.md")).unwrap();
    let start = doc.find("```python\n").unwrap() + "```python\n".len();
    let len = doc[start..].find("```").unwrap();
    doc[start..start + len].to_owned()
}

fn python() -> Option<&'static str> {
    let found = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "python3 is needed for this test"
        );
        eprintln!("skipping: python3 is not installed");
        return None;
    }
    Some("python3")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mem0_script_output_imports_and_reimports_as_unchanged() {
    let Some(python) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let script_path = tmp.path().join("mem0_to_coda.py");
    std::fs::write(&script_path, script()).unwrap();
    let mem0 = json!({"results": [
        {"id": "2f7c4c1e-9a52-4a8e-8d8e-0f5a4c1b2d3e", "memory": "Likes hiking in the Alps",
         "hash": "abc", "user_id": "alice", "metadata": {"category": "hobby"},
         "created_at": "2024-07-25T14:22:17.893255-07:00", "updated_at": "2024-07-26T10:00:00-07:00"},
        {"id": "mem-2", "memory": "Works at Acme as a welder", "user_id": "alice",
         "agent_id": "assistant", "run_id": "chat-9", "metadata": null,
         "created_at": "2024-07-25T14:22:17", "updated_at": null}
    ]});
    let input = tmp.path().join("mem0.json");
    std::fs::write(&input, mem0.to_string()).unwrap();
    let out = std::process::Command::new(python)
        .arg(&script_path)
        .arg(&input)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let converted = String::from_utf8(out.stdout).unwrap();
    assert!(
        converted.lines().count() <= 4 && !converted.contains("embedding"),
        "{converted}"
    );

    let server = Server::start("", "").await;
    let addr = server.addr();
    let import = |body: String| {
        let addr = addr.clone();
        async move { http(&addr, "POST", "/api/v1/import", &[], Some(&body)).await }
    };
    let first = import(converted.clone()).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.json["memories_added"], 2, "{}", first.text);
    assert_eq!(first.json["memories_reembedded"], 2, "{}", first.text);
    let found = http(
        &addr,
        "GET",
        "/api/v1/memories/search?q=hiking&user_id=alice&limit=1",
        &[],
        None,
    )
    .await;
    let hit: &Value = &found.json["results"][0];
    assert_eq!(
        hit["id"], "2f7c4c1e-9a52-4a8e-8d8e-0f5a4c1b2d3e",
        "{}",
        found.text
    );
    assert_eq!(hit["metadata"]["category"], "hobby");
    assert_eq!(hit["metadata"]["timestamp"], "2024-07-25T21:22:17.893255Z");
    let welder = http(
        &addr,
        "GET",
        "/api/v1/memories?user_id=alice&session_id=chat-9&agent_id=assistant",
        &[],
        None,
    )
    .await;
    assert_eq!(
        welder.json["memories"][0]["metadata"]["mem0_id"], "mem-2",
        "{}",
        welder.text
    );
    let again = import(converted).await;
    assert_eq!(again.json["memories_unchanged"], 2, "{}", again.text);
}
