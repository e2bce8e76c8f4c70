//! Memory that stays right, over HTTP (SPEC §10): restatements deduplicated, slots superseded
//! and hidden, history of every version (after a delete, not after erasure, never to another
//! user), expiry hidden and swept, ranking weights with `explain`.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Instant;

use common::{http, Reply, DEADLINE};
use serde_json::{json, Value};

const JSON: (&str, &str) = ("content-type", "application/json");

struct Server {
    handle: coda_server::ServerHandle,
    _dir: tempfile::TempDir,
}

/// A server on the memory backend with extra `[memory]` and `[search]` keys.
async fn start(memory: &str, search: &str) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[memory]\nbackend = \"memory\"\nembedder = \"hashing\"\n{memory}\n[search]\n{search}\n\
         [stores.fs]\ndir = \"{}\"\n",
        dir.path().join("snapshots").display()
    );
    let mut config = coda::Config::from_toml_str(&toml).unwrap();
    config.server.bind = "127.0.0.1:0".into();
    config.sinks.clear();
    let handle = coda_server::start(config).await.unwrap();
    Server { handle, _dir: dir }
}

impl Server {
    fn addr(&self) -> String {
        self.handle.addr().to_string()
    }
}

async fn post(addr: &str, path: &str, body: Value) -> Reply {
    http(addr, "POST", path, &[JSON], Some(&body.to_string())).await
}

async fn get(addr: &str, path: &str) -> Reply {
    http(addr, "GET", path, &[], None).await
}

fn contents(reply: &Reply, key: &str) -> Vec<String> {
    reply.json[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_value_in_a_slot_supersedes_and_a_restatement_adds_nothing() {
    let server = start("", "").await;
    let addr = server.addr();
    let paris = post(
        &addr,
        "/api/v1/memories",
        json!({"content": "The user lives in Paris.", "slot": "home_city", "user_id": "alice"}),
    )
    .await;
    assert_eq!(paris.status, 201, "{}", paris.text);
    assert_eq!(paris.json["slot"], "home_city");
    let again = post(
        &addr,
        "/api/v1/memories",
        json!({"content": "the user lives in paris", "slot": "home_city", "user_id": "alice"}),
    )
    .await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.json["deduplicated"], true);
    assert_eq!(again.json["id"], paris.json["id"]);
    let berlin = post(
        &addr,
        "/api/v1/memories",
        json!({"content": "The user lives in Berlin.", "slot": "home_city", "user_id": "alice"}),
    )
    .await;
    assert_eq!(berlin.status, 201, "{}", berlin.text);
    assert_eq!(berlin.json["superseded"], json!([paris.json["id"]]));
    let old = get(
        &addr,
        &format!(
            "/api/v1/memories/{}?user_id=alice",
            paris.json["id"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(old.json["superseded_by"], berlin.json["id"]);

    let listed = get(&addr, "/api/v1/memories?user_id=alice").await;
    assert_eq!(contents(&listed, "memories"), ["The user lives in Berlin."]);
    let all = get(
        &addr,
        "/api/v1/memories?user_id=alice&include_superseded=true",
    )
    .await;
    assert_eq!(contents(&all, "memories").len(), 2);
    let found = post(
        &addr,
        "/api/v1/memories/search",
        json!({"query": "where does the user live", "user_id": "alice", "min_similarity": -1}),
    )
    .await;
    assert_eq!(contents(&found, "results"), ["The user lives in Berlin."]);
    let with_old = post(
        &addr,
        "/api/v1/memories/search",
        json!({"query": "where does the user live", "user_id": "alice",
               "min_similarity": -1, "include_superseded": true}),
    )
    .await;
    assert_eq!(contents(&with_old, "results").len(), 2);
    let simple = get(
        &addr,
        "/api/v1/memories/search?q=where+does+the+user+live&user_id=alice&min_similarity=-1&include_superseded=true",
    )
    .await;
    assert_eq!(contents(&simple, "results").len(), 2, "{}", simple.text);
    let bad = get(&addr, "/api/v1/memories?include_superseded=yes").await;
    assert_eq!(bad.status, 422);
    assert_eq!(bad.json["error"]["field"], "include_superseded");

    // Another user's slot is theirs: bob's Paris supersedes nothing of alice's.
    let bob = post(
        &addr,
        "/api/v1/memories",
        json!({"content": "The user lives in Paris.", "slot": "home_city", "user_id": "bob"}),
    )
    .await;
    assert_eq!(bob.status, 201);
    assert!(bob.json.get("superseded").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn similarity_never_merges_different_facts() {
    let server = start("", "").await;
    let addr = server.addr();
    for content in [
        "The user has a dog called Rex.",
        "The user has a cat called Rex.",
    ] {
        let added = post(&addr, "/api/v1/memories", json!({"content": content})).await;
        assert_eq!(added.status, 201, "{content}: {}", added.text);
    }
    let restated = post(
        &addr,
        "/api/v1/memories",
        json!({"content": "The user has a dog called Rex!"}),
    )
    .await;
    assert_eq!(restated.json["deduplicated"], true, "{}", restated.text);
    let listed = get(&addr, "/api/v1/memories").await;
    assert_eq!(contents(&listed, "memories").len(), 2);
    // A conversation memory never takes part.
    for _ in 0..2 {
        let added = post(
            &addr,
            "/api/v1/memories",
            json!({"content": "User: hi", "memory_type": "conversation"}),
        )
        .await;
        assert_eq!(added.status, 201);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_keeps_every_version_after_delete_and_only_for_its_user() {
    let server = start("", "").await;
    let addr = server.addr();
    let added = post(
        &addr,
        "/api/v1/memories",
        json!({"content": "The user likes tea.", "memory_type": "preference", "user_id": "alice"}),
    )
    .await;
    let id = added.json["id"].as_str().unwrap().to_owned();
    let patched = http(
        &addr,
        "PATCH",
        &format!("/api/v1/memories/{id}?user_id=alice"),
        &[JSON],
        Some(&json!({"content": "The user likes green tea.", "importance": 0.8}).to_string()),
    )
    .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert!(patched.json["updated_at"].is_string());
    let deleted = http(
        &addr,
        "DELETE",
        &format!("/api/v1/memories/{id}?user_id=alice"),
        &[],
        None,
    )
    .await;
    assert_eq!(deleted.status, 200);
    let history = get(
        &addr,
        &format!("/api/v1/memories/{id}/history?user_id=alice"),
    )
    .await;
    assert_eq!(history.status, 200, "{}", history.text);
    let versions = history.json["history"].as_array().unwrap();
    let actions: Vec<&str> = versions
        .iter()
        .map(|v| v["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["add", "update", "delete"]);
    assert_eq!(versions[0]["content"], "The user likes tea.");
    assert_eq!(versions[1]["content"], "The user likes green tea.");
    assert_eq!(versions[1]["metadata"]["importance"], 0.8);
    assert!(versions
        .iter()
        .all(|v| v["by"] == "api" && v["at"].is_string()));
    assert_eq!(versions[2]["version"], 3);

    let stranger = get(&addr, &format!("/api/v1/memories/{id}/history?user_id=bob")).await;
    assert_eq!(stranger.status, 404, "another user never sees it");
    let unknown = get(
        &addr,
        &format!("/api/v1/memories/{}/history", uuid::Uuid::new_v4()),
    )
    .await;
    assert_eq!(unknown.status, 404);
    let erased = http(&addr, "DELETE", "/api/v1/users/alice", &[], None).await;
    assert_eq!(erased.status, 200, "{}", erased.text);
    let gone = get(
        &addr,
        &format!("/api/v1/memories/{id}/history?user_id=alice"),
    )
    .await;
    assert_eq!(gone.status, 404, "erasure takes the history with it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_memories_are_hidden_then_swept_with_an_event() {
    let server = start("expiry_sweep_s = 1", "").await;
    let addr = server.addr();
    let manager = std::sync::Arc::clone(server.handle.manager());
    let sink = coda::testkit::CollectingSink::new();
    manager.bus().add_sink(sink.clone());
    let bad = post(
        &addr,
        "/api/v1/memories",
        json!({"content": "x", "ttl_s": 5, "expires_at": "2999-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(bad.status, 422);
    assert_eq!(bad.json["error"]["field"], "ttl_s");
    // Already past: stored expired, so hidden at once (and swept like the rest).
    let past = post(
        &addr,
        "/api/v1/memories",
        json!({"content": "The user was in Rome in 2000.", "expires_at": "2000-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(past.status, 201, "{}", past.text);
    let hidden = get(&addr, "/api/v1/memories").await;
    assert!(
        !contents(&hidden, "memories").contains(&"The user was in Rome in 2000.".to_owned()),
        "an already expired memory is hidden at once: {}",
        hidden.text
    );
    let keep = post(
        &addr,
        "/api/v1/memories",
        json!({"content": "The user is vegetarian."}),
    )
    .await;
    let brief = post(
        &addr,
        "/api/v1/memories",
        json!({"content": "The user is at the airport today.", "ttl_s": 1}),
    )
    .await;
    assert_eq!(brief.status, 201, "{}", brief.text);
    assert!(brief.json["expires_at"].is_string());
    let id = brief.json["id"].as_str().unwrap().to_owned();
    let started = Instant::now();
    loop {
        let reply = get(&addr, &format!("/api/v1/memories/{id}")).await;
        if reply.status == 404 {
            break;
        }
        assert!(started.elapsed() < DEADLINE, "never swept");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let deletes: Vec<Value> = sink
        .events()
        .iter()
        .map(|e| serde_json::from_str::<Value>(e.json()).unwrap())
        .filter(|e| e["type"] == "memory_delete")
        .collect();
    let swept: Vec<&Value> = deletes
        .iter()
        .filter(|e| e["memory_id"] == id.as_str())
        .collect();
    assert_eq!(swept.len(), 1, "{deletes:?}");
    assert_eq!(swept[0]["reason"], "expired");
    assert!(deletes.iter().all(|e| e["reason"] == "expired"));
    let history = get(&addr, &format!("/api/v1/memories/{id}/history")).await;
    let last = history.json["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (last["action"].as_str(), last["by"].as_str()),
        (Some("expire"), Some("expiry"))
    );
    let listed = get(&addr, "/api/v1/memories").await;
    assert_eq!(contents(&listed, "memories"), ["The user is vegetarian."]);
    assert_eq!(keep.status, 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn importance_weight_reorders_and_explain_shows_the_parts() {
    let server = start("", "importance_weight = 1.0").await;
    let addr = server.addr();
    for (content, importance) in [
        ("The user drinks coffee every morning.", 0.1),
        ("The user drinks green tea in the evening.", 1.0),
    ] {
        let added = post(
            &addr,
            "/api/v1/memories",
            json!({"content": content, "importance": importance}),
        )
        .await;
        assert_eq!(added.status, 201);
    }
    let found = post(
        &addr,
        "/api/v1/memories/search",
        json!({"query": "what does the user drink", "explain": true, "min_similarity": -1,
               "mode": "vector"}),
    )
    .await;
    assert_eq!(found.status, 200, "{}", found.text);
    let results = found.json["results"].as_array().unwrap();
    assert_eq!(
        results[0]["content"],
        "The user drinks green tea in the evening."
    );
    for r in results {
        let e = &r["explain"];
        let sum = e["relevance"].as_f64().unwrap()
            + e["importance"].as_f64().unwrap()
            + e["recency"].as_f64().unwrap();
        assert!((sum - r["score"].as_f64().unwrap()).abs() < 1e-4, "{r}");
    }
    let plain = post(
        &addr,
        "/api/v1/memories/search",
        json!({"query": "what does the user drink", "min_similarity": -1, "mode": "vector"}),
    )
    .await;
    assert!(plain.json["results"][0].get("explain").is_none());
}
