//! Export and import over HTTP (SPEC §13): a user's memories, histories, sessions and turns
//! round-trip exactly between two servers; re-importing changes nothing; another embedder
//! re-embeds; bad files are refused naming their line and change nothing.

#![allow(clippy::unwrap_used)]

mod common;

use common::{http, Reply, Server};
use serde_json::{json, Value};

const JSON: (&str, &str) = ("content-type", "application/json");
const NDJSON: (&str, &str) = ("content-type", "application/x-ndjson");

async fn call(addr: &str, method: &str, path: &str, body: Option<Value>) -> Reply {
    let text = body.map(|b| b.to_string());
    http(addr, method, path, &[JSON], text.as_deref()).await
}

async fn import(addr: &str, text: &str) -> Reply {
    http(addr, "POST", "/api/v1/import", &[NDJSON], Some(text)).await
}

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Everything of an export but the header's `exported_at`.
fn comparable(text: &str) -> Vec<Value> {
    let mut all = lines(text);
    all[0].as_object_mut().unwrap().remove("exported_at");
    all
}

/// Alice with two memories (one updated, one with a slot and expiry), a deleted one, and a
/// session with turns; bob with one memory.
async fn seed(addr: &str) -> (String, String) {
    let add = |body: Value| async move {
        let r = call(addr, "POST", "/api/v1/memories", Some(body)).await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.json["id"].as_str().unwrap().to_owned()
    };
    let kept = add(json!({"content": "Alice likes green tea", "user_id": "alice",
        "memory_type": "preference", "importance": 0.8, "metadata": {"topics": ["tea"], "channel": "chat"}}))
    .await;
    let patched = call(
        addr,
        "PATCH",
        &format!("/api/v1/memories/{kept}?user_id=alice"),
        Some(json!({"content": "Alice likes jasmine tea"})),
    )
    .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    let slotted = add(
        json!({"content": "Alice lives in Lyon", "user_id": "alice", "agent_id": "travel",
        "slot": "home_city", "ttl_s": 86400}),
    )
    .await;
    let gone = add(json!({"content": "Alice's old phone is 555", "user_id": "alice"})).await;
    let deleted = call(
        addr,
        "DELETE",
        &format!("/api/v1/memories/{gone}?user_id=alice"),
        None,
    )
    .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    for content in ["hello there", "I moved to Lyon"] {
        let r = call(
            addr,
            "POST",
            "/api/v1/sessions/trip-1/turns",
            Some(json!({"role": "user", "content": content, "user_id": "alice"})),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    add(json!({"content": "Bob's dog is called Rex", "user_id": "bob"})).await;
    (kept, slotted)
}

async fn export(addr: &str, path: &str) -> String {
    let r = call(addr, "GET", path, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.headers["content-type"], "application/x-ndjson");
    r.text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_round_trips_exactly_and_a_second_import_changes_nothing() {
    let a = Server::start("", "").await;
    let (kept, _slotted) = seed(&a.addr()).await;
    let text = export(&a.addr(), "/api/v1/users/alice/export").await;
    let all = lines(&text);
    assert_eq!(all[0]["kind"], "header");
    assert_eq!(all[0]["format"], "coda-export");
    assert_eq!(all[0]["version"], 1);
    assert_eq!(all[0]["user_id"], "alice");
    assert_eq!(all[0]["embedder"]["fingerprint"], "hashing-v1/384");
    let kinds: Vec<&str> = all.iter().map(|l| l["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "memory").count(),
        2,
        "{text}"
    );
    // Three histories: the deleted memory's is kept too.
    assert_eq!(
        kinds.iter().filter(|k| **k == "history").count(),
        3,
        "{text}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "session").count(),
        1,
        "{text}"
    );
    assert_eq!(kinds.iter().filter(|k| **k == "turn").count(), 2, "{text}");
    assert_eq!(
        all.last().unwrap(),
        &json!({"kind": "end", "count": all.len() - 2})
    );
    assert!(!text.contains("Rex"), "bob is not in alice's export");

    let b = Server::start("", "").await;
    let seq_before = b.manager().bus().latest_seq();
    let first = import(&b.addr(), &text).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let report = &first.json;
    assert_eq!(report["lines"], all.len() - 2);
    assert_eq!(report["memories_added"], 2, "{report}");
    // The updated and the deleted memory's histories; the other's equals what inserting it
    // derived already.
    assert_eq!(report["histories_imported"], 2, "{report}");
    assert_eq!(report["histories_unchanged"], 1, "{report}");
    assert_eq!(report["sessions_added"], 1, "{report}");
    assert_eq!(
        report["memories_reembedded"], 0,
        "same embedder: vectors reused"
    );
    // Each added memory was announced like any other write.
    assert_eq!(b.manager().bus().latest_seq(), seq_before + 2);

    // The copy exports exactly as the original, and reads the same.
    assert_eq!(
        comparable(&export(&b.addr(), "/api/v1/users/alice/export").await),
        comparable(&text)
    );
    let path = format!("/api/v1/memories/{kept}/history?user_id=alice");
    assert_eq!(
        call(&b.addr(), "GET", &path, None).await.json,
        call(&a.addr(), "GET", &path, None).await.json
    );
    let found = call(
        &b.addr(),
        "GET",
        "/api/v1/memories/search?q=jasmine&user_id=alice",
        None,
    )
    .await;
    assert_eq!(
        found.json["results"][0]["id"],
        kept.as_str(),
        "{}",
        found.text
    );
    let window = call(
        &b.addr(),
        "GET",
        "/api/v1/sessions/trip-1?user_id=alice",
        None,
    )
    .await;
    assert_eq!(window.json["turn_count"], 2, "{}", window.text);

    let seq = b.manager().bus().latest_seq();
    let again = import(&b.addr(), &text).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.json["memories_added"], 0);
    assert_eq!(again.json["memories_updated"], 0);
    assert_eq!(again.json["memories_unchanged"], 2);
    assert_eq!(again.json["histories_unchanged"], 3);
    assert_eq!(again.json["sessions_unchanged"], 1);
    assert_eq!(
        b.manager().bus().latest_seq(),
        seq,
        "nothing changed, nothing published"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_export_holds_every_user() {
    let a = Server::start("", "").await;
    seed(&a.addr()).await;
    let text = export(&a.addr(), "/api/v1/export").await;
    let all = lines(&text);
    assert!(all[0].get("user_id").is_none(), "{}", all[0]);
    assert!(text.contains("Rex") && text.contains("jasmine"), "{text}");
    let b = Server::start("", "").await;
    let r = import(&b.addr(), &text).await;
    assert_eq!(r.json["memories_added"], 3, "{}", r.text);
    let users = call(&b.addr(), "GET", "/api/v1/users", None).await;
    let ids: Vec<&str> = users.json["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["alice", "bob"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_embedder_re_embeds_and_lines_without_vectors_are_embedded() {
    let a = Server::start("", "").await;
    seed(&a.addr()).await;
    let text = export(&a.addr(), "/api/v1/users/alice/export").await;
    let small = Server::start("", "[embedders.hashing]\ndims = 64\n").await;
    let r = import(&small.addr(), &text).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["memories_reembedded"], 2, "{}", r.text);
    let found = call(
        &small.addr(),
        "GET",
        "/api/v1/memories/search?q=jasmine%20tea&user_id=alice",
        None,
    )
    .await;
    assert_eq!(found.status, 200, "{}", found.text);
    assert!(found.json["results"][0]["content"]
        .as_str()
        .unwrap()
        .contains("jasmine"));

    // What a migration script writes: no embedder, no vectors.
    let converted = [
        json!({"kind": "header", "format": "coda-export", "version": 1}),
        json!({"kind": "memory", "id": "00000000-0000-4000-8000-000000000001", "content": "Carol plays the cello",
               "user_id": "carol", "metadata": {"source_type": "fact", "importance": 0.5,
               "timestamp": "2024-05-01T10:00:00Z", "topics": [], "mem0_id": "m-1"}}),
        json!({"kind": "end", "count": 1}),
    ]
    .map(|l| l.to_string())
    .join("\n");
    let r = import(&small.addr(), &converted).await;
    assert_eq!(r.json["memories_added"], 1, "{}", r.text);
    assert_eq!(r.json["memories_reembedded"], 1, "{}", r.text);
    let found = call(
        &small.addr(),
        "GET",
        "/api/v1/memories/search?q=cello&user_id=carol",
        None,
    )
    .await;
    assert_eq!(
        found.json["results"][0]["metadata"]["mem0_id"], "m-1",
        "{}",
        found.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_files_name_their_line_and_change_nothing() {
    let a = Server::start("", "").await;
    seed(&a.addr()).await;
    let text = export(&a.addr(), "/api/v1/users/alice/export").await;
    let all: Vec<&str> = text.lines().collect();
    let n = all.len();
    let b = Server::start("", "").await;
    let seq = b.manager().bus().latest_seq();
    let mut malformed = all.clone();
    malformed[3] = "{\"kind\":\"memory\",\"content\":";
    let mut unknown = all.clone();
    unknown[2] = "{\"kind\":\"memo\"}";
    let truncated = all[..n - 1].join("\n");
    let cut_mid = all[..3].join("\n");
    let wrong_version = text.replacen("\"version\":1", "\"version\":7", 1);
    let cases: Vec<(String, &str, &str)> = vec![
        (truncated, "line ", "without its `end` line"),
        (cut_mid, "line ", "cut short"),
        ("{\"hello\":\"world\"}\n".into(), "line 1", "has no `kind`"),
        (
            "{\"kind\":\"header\",\"format\":\"mem0\",\"version\":1}\n".into(),
            "line 1",
            "not a `coda-export`",
        ),
        (wrong_version, "line 1", "version 7"),
        ("not json at all".into(), "line 1", "not a JSON object"),
        ("".into(), "line 1", "empty"),
        (malformed.join("\n"), "line 4", "not a JSON object"),
        (unknown.join("\n"), "line 3", "unknown kind `memo`"),
        (
            format!("{text}{{\"kind\":\"end\",\"count\":0}}\n"),
            "line ",
            "follows the end line",
        ),
        (
            text.replacen(
                "\"kind\":\"end\",\"count\":",
                "\"kind\":\"end\",\"count\":9",
                1,
            ),
            "line ",
            "counts",
        ),
    ];
    for (body, field, reason) in cases {
        let r = import(&b.addr(), &body).await;
        assert_eq!(r.status, 422, "{reason}: {}", r.text);
        let error = &r.json["error"];
        assert!(
            error["field"].as_str().unwrap().starts_with(field),
            "{reason}: {}",
            r.text
        );
        assert!(
            error["message"].as_str().unwrap().contains(reason),
            "{reason}: {}",
            r.text
        );
    }
    assert_eq!(b.manager().bus().latest_seq(), seq, "nothing was published");
    let users = call(&b.addr(), "GET", "/api/v1/users", None).await;
    assert_eq!(users.json["users"], json!([]), "nothing was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_may_be_far_over_max_body_bytes_but_not_over_max_import_bytes() {
    let a = Server::start("", "").await;
    for i in 0..40 {
        let r = call(&a.addr(), "POST", "/api/v1/memories",
            Some(json!({"content": format!("fact number {i} {}", "x".repeat(200)), "user_id": "dana"}))).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let text = export(&a.addr(), "/api/v1/users/dana/export").await;
    assert!(text.len() > 4096);
    let b = Server::start("", "[server]\nmax_body_bytes = 4096\n").await;
    let r = import(&b.addr(), &text).await;
    assert_eq!(r.json["memories_added"], 40, "{}", r.text);
    let c = Server::start("", "[server]\nmax_import_bytes = 4096\n").await;
    let r = import(&c.addr(), &text).await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert!(r.text.contains("max_import_bytes"), "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_lands_in_the_importers_tenant_and_never_touches_another() {
    let tenants = "[server]\ntokens = [\"root\"]\n\
                   [[server.tenants]]\nid = \"acme\"\ntokens = [\"acme-t\"]\n\
                   [[server.tenants]]\nid = \"beta\"\ntokens = [\"beta-t\"]\n";
    let server = Server::start("", tenants).await;
    let addr = server.addr();
    let as_ = |token: &'static str| [("authorization", token), JSON];
    let added = http(
        &addr,
        "POST",
        "/api/v1/memories",
        &as_("Bearer acme-t"),
        Some(&json!({"content": "acme's roadmap is secret", "user_id": "alice"}).to_string()),
    )
    .await;
    assert_eq!(added.status, 201, "{}", added.text);
    let id = added.json["id"].as_str().unwrap().to_owned();
    let text = http(
        &addr,
        "GET",
        "/api/v1/users/alice/export",
        &as_("Bearer acme-t"),
        None,
    )
    .await
    .text;
    assert!(text.contains("\"tenant\":\"acme\""), "{text}");

    let edited = text.replace("acme's roadmap is secret", "beta was here");
    let r = http(
        &addr,
        "POST",
        "/api/v1/import",
        &as_("Bearer beta-t"),
        Some(&edited),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["memories_added"], 1, "{}", r.text);
    assert_eq!(r.json["ids_remapped"], 1, "acme holds that id: {}", r.text);
    let mine = http(
        &addr,
        "GET",
        "/api/v1/memories?user_id=alice",
        &as_("Bearer beta-t"),
        None,
    )
    .await;
    let copy = &mine.json["memories"][0];
    assert_eq!(copy["content"], "beta was here", "{}", mine.text);
    assert_ne!(copy["id"], id.as_str());
    let theirs = http(
        &addr,
        "GET",
        &format!("/api/v1/memories/{id}?user_id=alice"),
        &as_("Bearer acme-t"),
        None,
    )
    .await;
    assert_eq!(
        theirs.json["content"], "acme's roadmap is secret",
        "{}",
        theirs.text
    );
    let count = http(
        &addr,
        "GET",
        "/api/v1/memories?user_id=alice",
        &as_("Bearer acme-t"),
        None,
    )
    .await;
    assert_eq!(count.json["memories"].as_array().unwrap().len(), 1);
    // Importing it again finds beta's copy under the same derived id.
    let again = http(
        &addr,
        "POST",
        "/api/v1/import",
        &as_("Bearer beta-t"),
        Some(&edited),
    )
    .await;
    assert_eq!(again.json["memories_unchanged"], 1, "{}", again.text);
}
