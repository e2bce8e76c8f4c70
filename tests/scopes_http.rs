//! Scopes over HTTP (SPEC §8): sessions of several users, ownership conflicts, scoped memories
//! and searches, validation of scope ids, reserved metadata keys, erasure, and concurrent
//! sessions keeping their own order.

#![allow(clippy::unwrap_used)]

mod common;

use common::{http, Reply, Server};
use serde_json::{json, Value};

const JSON: (&str, &str) = ("content-type", "application/json");

async fn post(addr: &str, path: &str, body: Value) -> Reply {
    http(addr, "POST", path, &[JSON], Some(&body.to_string())).await
}

async fn get(addr: &str, path: &str) -> Reply {
    http(addr, "GET", path, &[], None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_belong_to_the_user_of_their_first_turn() {
    let server = Server::start("", "").await;
    let addr = server.addr();
    let first = post(
        &addr,
        "/api/v1/sessions/chat-1/turns",
        json!({"role": "user", "content": "Hi, my name is Alice.", "user_id": "alice"}),
    )
    .await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(first.json["session_id"], "chat-1");
    assert_eq!(first.json["user_id"], "alice");
    assert_eq!(first.json["turn_index"], 0);

    let intruder = post(
        &addr,
        "/api/v1/sessions/chat-1/turns",
        json!({"role": "user", "content": "let me in", "user_id": "bob"}),
    )
    .await;
    assert_eq!(intruder.status, 409, "{}", intruder.text);
    assert_eq!(intruder.json["error"]["code"], "conflict");

    let window = get(&addr, "/api/v1/sessions/chat-1/turns?user_id=alice").await;
    assert_eq!(window.status, 200, "{}", window.text);
    assert_eq!(
        window.json["turn_count"], 1,
        "the refused turn was not added"
    );
    for path in [
        "/api/v1/sessions/chat-1/turns?user_id=bob",
        "/api/v1/sessions/chat-1/turns",
        "/api/v1/sessions/chat-1?user_id=bob",
        "/api/v1/sessions/nope?user_id=alice",
    ] {
        let r = get(&addr, path).await;
        assert_eq!(r.status, 404, "{path}: {}", r.text);
    }
    let detail = get(&addr, "/api/v1/sessions/chat-1?user_id=alice").await;
    assert_eq!(detail.json["user_id"], "alice");
    assert_eq!(detail.json["turns"].as_array().unwrap().len(), 1);

    // Each user has a default session of their own: /turns is user default's.
    post(
        &addr,
        "/api/v1/sessions/default/turns",
        json!({"role": "user", "content": "bob's default", "user_id": "bob"}),
    )
    .await;
    let legacy = get(&addr, "/api/v1/turns").await;
    assert_eq!(legacy.json["turn_count"], 0, "{}", legacy.text);
    let bobs = get(&addr, "/api/v1/sessions/default/turns?user_id=bob").await;
    assert_eq!(bobs.json["turn_count"], 1);

    let listed = get(&addr, "/api/v1/sessions?user_id=alice").await;
    let sessions = listed.json["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{}", listed.text);
    assert_eq!(sessions[0]["session_id"], "chat-1");
    assert_eq!(sessions[0]["turn_count"], 1);

    let users = get(&addr, "/api/v1/users").await;
    let ids: Vec<&str> = users.json["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["alice", "bob"], "{}", users.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persist_tags_memories_and_search_stays_within_the_user() {
    let server = Server::start("", "").await;
    let addr = server.addr();
    for (user, content) in [
        ("alice", "Hi, my name is Alice and I live in Paris."),
        ("bob", "Hi, my name is Bob and I live in Oslo."),
    ] {
        let path = format!("/api/v1/sessions/{user}-chat/turns");
        let body =
            json!({"role": "user", "content": content, "user_id": user, "agent_id": "tutor"});
        assert_eq!(post(&addr, &path, body).await.status, 201);
        let persisted = post(
            &addr,
            &format!("/api/v1/sessions/{user}-chat/persist?user_id={user}"),
            json!({}),
        )
        .await;
        assert_eq!(persisted.status, 200, "{}", persisted.text);
        for memory in persisted.json["memories"].as_array().unwrap() {
            assert_eq!(memory["user_id"], user);
            assert_eq!(memory["session_id"], format!("{user}-chat"));
            assert_eq!(memory["agent_id"], "tutor");
        }
    }
    let again = post(
        &addr,
        "/api/v1/sessions/alice-chat/persist?user_id=alice",
        json!({}),
    )
    .await;
    assert_eq!(
        again.json["memories_added"], 0,
        "nothing is persisted twice"
    );

    let search = get(
        &addr,
        "/api/v1/memories/search?q=where%20does%20the%20user%20live&user_id=bob&limit=10",
    )
    .await;
    let results = search.json["results"].as_array().unwrap();
    assert!(!results.is_empty(), "{}", search.text);
    assert!(
        results.iter().all(|r| r["user_id"] == "bob"),
        "bob's search returns only bob's memories: {}",
        search.text
    );
    let body = post(
        &addr,
        "/api/v1/memories/search",
        json!({"query": "Paris", "user_id": "alice", "session_id": "alice-chat", "limit": 10}),
    )
    .await;
    assert!(body.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["content"].as_str().unwrap().contains("Paris")));
    let nobody = get(&addr, "/api/v1/memories?user_id=carol").await;
    assert_eq!(nobody.json["memories"], json!([]));
    let default_user = get(&addr, "/api/v1/memories").await;
    assert_eq!(
        default_user.json["memories"],
        json!([]),
        "user default sees none of theirs"
    );

    let stats = get(&addr, "/api/v1/users/alice/stats").await;
    assert!(stats.json["long_term"]["total_memories"].as_u64().unwrap() >= 2);
    let session_stats = get(&addr, "/api/v1/stats?user_id=alice&session_id=alice-chat").await;
    assert_eq!(session_stats.json["short_term"]["turn_count"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_scope_ids_and_reserved_keys_are_422_naming_the_field() {
    let server = Server::start("", "").await;
    let addr = server.addr();
    let long = "x".repeat(129);
    let cases = [
        (
            "GET",
            "/api/v1/memories?user_id=has%20space".to_owned(),
            None,
            "user_id",
        ),
        (
            "GET",
            format!("/api/v1/memories?user_id={long}"),
            None,
            "user_id",
        ),
        (
            "GET",
            "/api/v1/memories?user_id=".to_owned(),
            None,
            "user_id",
        ),
        (
            "GET",
            "/api/v1/memories?agent_id=a/b".to_owned(),
            None,
            "agent_id",
        ),
        (
            "GET",
            "/api/v1/sessions/bad%20id/turns".to_owned(),
            None,
            "session_id",
        ),
        (
            "POST",
            "/api/v1/memories".to_owned(),
            Some(json!({"content": "x", "user_id": "a b"})),
            "user_id",
        ),
        (
            "POST",
            "/api/v1/memories".to_owned(),
            Some(json!({"content": "x", "metadata": {"user_id": "bob"}})),
            "metadata.user_id",
        ),
        (
            "POST",
            "/api/v1/memories".to_owned(),
            Some(json!({"content": "x", "metadata": {"session_id": "s"}})),
            "metadata.session_id",
        ),
        (
            "POST",
            "/api/v1/memories?user_id=alice".to_owned(),
            Some(json!({"content": "x", "user_id": "bob"})),
            "user_id",
        ),
        (
            "POST",
            "/api/v1/sessions/s1/turns".to_owned(),
            Some(json!({"role": "user", "content": "x", "agent_id": ""})),
            "agent_id",
        ),
    ];
    for (method, path, body, field) in cases {
        let text = body.map(|b| b.to_string());
        let r = http(&addr, method, &path, &[JSON], text.as_deref()).await;
        assert_eq!(r.status, 422, "{method} {path}: {}", r.text);
        assert_eq!(
            r.json["error"]["field"], field,
            "{method} {path}: {}",
            r.text
        );
    }
    let memory = post(
        &addr,
        "/api/v1/memories?user_id=alice",
        json!({"content": "mine"}),
    )
    .await;
    assert_eq!(memory.status, 201, "{}", memory.text);
    assert_eq!(memory.json["user_id"], "alice");
    let id = memory.json["id"].as_str().unwrap();
    let patch = http(
        &addr,
        "PATCH",
        &format!("/api/v1/memories/{id}?user_id=alice"),
        &[JSON],
        Some(r#"{"user_id":"bob"}"#),
    )
    .await;
    assert_eq!(patch.status, 422, "{}", patch.text);
    assert_eq!(patch.json["error"]["field"], "user_id");
    let patch = http(
        &addr,
        "PATCH",
        &format!("/api/v1/memories/{id}?user_id=alice"),
        &[JSON],
        Some(r#"{"metadata":{"user_id":"bob"}}"#),
    )
    .await;
    assert_eq!(patch.status, 422, "{}", patch.text);
    let still = get(&addr, &format!("/api/v1/memories/{id}?user_id=alice")).await;
    assert_eq!(still.json["user_id"], "alice", "nothing changed");
    assert_eq!(still.json["content"], "mine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interleaved_sessions_keep_their_own_order_and_counters() {
    let server = Server::start("", "").await;
    let addr = server.addr();
    const TURNS: usize = 40;
    let mut clients = Vec::new();
    for (user, session) in [("alice", "a-1"), ("bob", "b-1"), ("alice", "a-2")] {
        let addr = addr.clone();
        clients.push(tokio::spawn(async move {
            for i in 0..TURNS {
                let r = post(
                    &addr,
                    &format!("/api/v1/sessions/{session}/turns"),
                    json!({"role": "user", "content": format!("{session} #{i}"), "user_id": user}),
                )
                .await;
                assert_eq!(r.status, 201, "{}", r.text);
                assert_eq!(
                    r.json["turn_index"], i,
                    "{session}: indexes count per session"
                );
            }
        }));
    }
    for client in clients {
        client.await.unwrap();
    }
    for (user, session) in [("alice", "a-1"), ("bob", "b-1"), ("alice", "a-2")] {
        let r = get(
            &addr,
            &format!("/api/v1/sessions/{session}/turns?user_id={user}"),
        )
        .await;
        assert_eq!(r.json["turn_count"], TURNS);
        let contents: Vec<String> = r.json["turns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["content"].as_str().unwrap().to_owned())
            .collect();
        let expected: Vec<String> = (0..TURNS).map(|i| format!("{session} #{i}")).collect();
        assert_eq!(contents, expected, "{session} kept its own order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasing_a_user_removes_everything_of_theirs_and_nothing_else() {
    let server = Server::start("", "").await;
    let addr = server.addr();
    for user in ["alice", "bob"] {
        post(
            &addr,
            &format!("/api/v1/sessions/{user}-s/turns"),
            json!({"role": "user", "content": format!("I am {user}, remember that I like tea"), "user_id": user}),
        )
        .await;
        post(
            &addr,
            &format!("/api/v1/sessions/{user}-s/persist?user_id={user}"),
            json!({}),
        )
        .await;
        let snap = post(
            &addr,
            "/api/v1/snapshots",
            json!({"save": true, "user_id": user, "session_id": format!("{user}-s")}),
        )
        .await;
        assert_eq!(snap.status, 201, "{}", snap.text);
        assert_eq!(snap.json["metadata"]["scope"]["user_id"], user);
    }
    let alice_memory = get(&addr, "/api/v1/memories?user_id=alice").await.json["memories"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let erased = http(&addr, "DELETE", "/api/v1/users/alice", &[], None).await;
    assert_eq!(erased.status, 200, "{}", erased.text);
    assert!(erased.json["memories_deleted"].as_u64().unwrap() >= 1);
    assert_eq!(erased.json["sessions_deleted"], 1);
    assert_eq!(erased.json["snapshots_deleted"], 1);

    let gone = [
        format!("/api/v1/memories/{alice_memory}?user_id=alice"),
        "/api/v1/sessions/alice-s?user_id=alice".to_owned(),
    ];
    for path in gone {
        assert_eq!(get(&addr, &path).await.status, 404, "{path}");
    }
    let search = get(
        &addr,
        "/api/v1/memories/search?q=tea&user_id=alice&limit=10",
    )
    .await;
    assert_eq!(search.json["results"], json!([]), "{}", search.text);
    assert_eq!(
        get(&addr, "/api/v1/memories?user_id=alice").await.json["memories"],
        json!([])
    );
    assert_eq!(
        get(&addr, "/api/v1/snapshots?user_id=alice").await.json["snapshots"],
        json!([])
    );
    assert_eq!(
        get(&addr, "/api/v1/sessions?user_id=alice").await.json["sessions"],
        json!([])
    );
    let users = get(&addr, "/api/v1/users").await;
    assert_eq!(
        users.json["users"].as_array().unwrap().len(),
        1,
        "{}",
        users.text
    );
    assert_eq!(users.json["users"][0]["user_id"], "bob");
    assert_eq!(
        get(&addr, "/api/v1/snapshots?user_id=bob").await.json["snapshots"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "bob's snapshot stays"
    );
    let again = http(&addr, "DELETE", "/api/v1/users/alice", &[], None).await;
    assert_eq!(again.status, 404, "{}", again.text);
}
