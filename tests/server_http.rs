//! The HTTP API (SPEC §6) against a real server on an ephemeral port.

#![allow(clippy::unwrap_used)]

mod common;

use common::{http, Server};
use serde_json::json;

const JSON: (&str, &str) = ("content-type", "application/json");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turns_persist_and_stats() {
    let server = Server::start("", "").await;
    let addr = server.addr();
    let r = http(
        &addr,
        "POST",
        "/api/v1/turns",
        &[JSON],
        Some(r#"{"role":"user","content":"Hi, my name is Alice."}"#),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["turn_index"], 0);
    let r = http(&addr, "GET", "/api/v1/turns", &[], None).await;
    assert_eq!(r.json["turn_count"], 1);
    assert!(r.json["session_start"].is_string());
    let r = http(&addr, "POST", "/api/v1/persist", &[], None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.json["memories_added"].as_u64().unwrap() >= 1);
    assert_eq!(
        r.json["memories"].as_array().unwrap().len() as u64,
        r.json["memories_added"].as_u64().unwrap()
    );
    let r = http(&addr, "GET", "/api/v1/stats", &[], None).await;
    assert_eq!(r.json["short_term"]["turn_count"], 1);
    assert!(r.json["long_term"]["total_memories"].as_u64().unwrap() >= 1);
    let r = http(&addr, "DELETE", "/api/v1/turns", &[], None).await;
    assert_eq!(r.status, 204);
    let r = http(&addr, "GET", "/api/v1/turns", &[], None).await;
    assert_eq!(r.json["turns"], json!([]));
}

/// `mode` picks the ranking per request: `score` is the cosine under `vector`, BM25 divided by
/// the query's best under `lexical` (so the top hit scores 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_mode_is_chosen_per_request() {
    let server = Server::start("", "").await;
    let addr = server.addr();
    for content in [
        "The user likes green tea in the morning.",
        "The user drinks coffee at work.",
        "The user's sister is called Jane.",
    ] {
        let body = json!({ "content": content }).to_string();
        let r = http(&addr, "POST", "/api/v1/memories", &[JSON], Some(&body)).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let results = |r: &common::Reply| r.json["results"].as_array().unwrap().clone();
    let body = json!({"query": "green tea morning", "mode": "lexical"}).to_string();
    let r = http(
        &addr,
        "POST",
        "/api/v1/memories/search",
        &[JSON],
        Some(&body),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let lexical = results(&r);
    // Lexical scores are BM25 over a full match's BM25, in (0, 1]; not the cosine.
    let score = lexical[0]["score"].as_f64().unwrap();
    assert!(score > 0.5 && score <= 1.0, "{}", r.text);
    assert_ne!(lexical[0]["score"], lexical[0]["similarity"], "{}", r.text);
    let path = "/api/v1/memories/search?q=green%20tea%20morning&mode=vector";
    let r = http(&addr, "GET", path, &[], None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    for hit in results(&r) {
        assert_eq!(hit["score"], hit["similarity"], "{}", r.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memories_crud_and_search() {
    let server = Server::start("", "").await;
    let addr = server.addr();
    let body = json!({"content": "The user likes green tea.", "memory_type": "preference",
                      "importance": 0.8, "metadata": {"topics": ["tea"], "channel": "u1"}});
    let r = http(
        &addr,
        "POST",
        "/api/v1/memories",
        &[JSON],
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json["id"].as_str().unwrap().to_owned();
    assert_eq!(r.json["metadata"]["source_type"], "preference");
    http(
        &addr,
        "POST",
        "/api/v1/memories",
        &[JSON],
        Some(r#"{"content":"The user lives in Paris."}"#),
    )
    .await;

    let r = http(&addr, "GET", &format!("/api/v1/memories/{id}"), &[], None).await;
    assert_eq!(r.json["content"], "The user likes green tea.");
    let r = http(&addr, "GET", "/api/v1/memories?limit=1&offset=0", &[], None).await;
    assert_eq!(r.json["memories"].as_array().unwrap().len(), 1);
    let r = http(&addr, "GET", "/api/v1/memories?type=preference", &[], None).await;
    assert_eq!(r.json["memories"][0]["id"], id.as_str());

    let search = json!({"query": "what tea does the user like", "limit": 5,
                        "filter": {"topics": {"contains": "tea"}}});
    let r = http(
        &addr,
        "POST",
        "/api/v1/memories/search",
        &[JSON],
        Some(&search.to_string()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let results = r.json["results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["id"], id.as_str());
    assert!(results[0]["similarity"].is_number());
    let r = http(
        &addr,
        "GET",
        "/api/v1/memories/search?q=Paris&limit=1",
        &[],
        None,
    )
    .await;
    assert_eq!(r.json["results"][0]["content"], "The user lives in Paris.");

    let r = http(
        &addr,
        "PATCH",
        &format!("/api/v1/memories/{id}"),
        &[JSON],
        Some(r#"{"importance":0.3,"metadata":{"channel":null}}"#),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["metadata"]["importance"], 0.3);
    assert!(r.json["metadata"].get("channel").is_none());
    let r = http(
        &addr,
        "DELETE",
        &format!("/api/v1/memories/{id}"),
        &[],
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    let r = http(&addr, "GET", &format!("/api/v1/memories/{id}"), &[], None).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json["error"]["code"], "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_have_the_spec_shape_and_status() {
    let server = Server::start("", "[server]\nmax_body_bytes = 1024").await;
    let addr = server.addr();
    let check = |r: &common::Reply, status: u16, code: &str| {
        assert_eq!(r.status, status, "{}", r.text);
        assert_eq!(r.json["error"]["code"], code, "{}", r.text);
        assert!(r.json["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    };
    // Bad JSON: 400.
    let r = http(&addr, "POST", "/api/v1/turns", &[JSON], Some(r#"{"role":"#)).await;
    check(&r, 400, "bad_json");
    // Each invalid field: 422 naming it.
    for (path, body, field) in [
        ("/api/v1/turns", r#"{"role":"robot","content":"x"}"#, "role"),
        ("/api/v1/turns", r#"{"role":"user"}"#, "content"),
        (
            "/api/v1/turns",
            r#"{"role":"user","content":"  "}"#,
            "content",
        ),
        (
            "/api/v1/turns",
            r#"{"role":"user","content":"x","colour":1}"#,
            "colour",
        ),
        (
            "/api/v1/memories",
            r#"{"content":"x","importance":2}"#,
            "importance",
        ),
        (
            "/api/v1/memories",
            r#"{"content":"x","importance":"high"}"#,
            "importance",
        ),
        (
            "/api/v1/memories/search",
            r#"{"query":"x","limit":0}"#,
            "limit",
        ),
        (
            "/api/v1/memories/search",
            r#"{"query":"x","filter":{"importance":{"bogus":1}}}"#,
            "filter.importance",
        ),
        ("/api/v1/snapshots/load", r#"{"location":""}"#, "location"),
        (
            "/api/v1/memories/search",
            r#"{"query":"x","mode":"fuzzy"}"#,
            "mode",
        ),
    ] {
        let r = http(&addr, "POST", path, &[JSON], Some(body)).await;
        check(&r, 422, "invalid_field");
        let named = r.json["error"]["field"].as_str().unwrap_or_default();
        assert!(
            named.starts_with(field),
            "{path} {body}: field {named}, want {field}"
        );
        assert!(
            r.json["error"]["message"].as_str().unwrap().contains(field),
            "{}",
            r.text
        );
    }
    let r = http(
        &addr,
        "GET",
        "/api/v1/memories/search?q=x&mode=fuzzy",
        &[],
        None,
    )
    .await;
    check(&r, 422, "invalid_field");
    assert_eq!(r.json["error"]["field"], "mode");
    let r = http(&addr, "GET", "/api/v1/memories?limit=lots", &[], None).await;
    check(&r, 422, "invalid_field");
    assert_eq!(r.json["error"]["field"], "limit");
    let r = http(
        &addr,
        "PUT",
        "/api/v1/auto-snapshot",
        &[JSON],
        Some(r#"{"enabled":true,"interval":0}"#),
    )
    .await;
    check(&r, 422, "invalid_field");
    // Over max_body_bytes: 413, whether the length is declared or not.
    let big = format!(r#"{{"role":"user","content":"{}"}}"#, "x".repeat(2000));
    let r = http(&addr, "POST", "/api/v1/turns", &[JSON], Some(&big)).await;
    check(&r, 413, "payload_too_large");
    let chunked = chunked_post(&addr, "/api/v1/memories", &big).await;
    assert!(chunked.starts_with("HTTP/1.1 413"), "{chunked}");
    assert!(chunked.contains("payload_too_large"), "{chunked}");
    // Unknown ids and routes: 404.
    let r = http(
        &addr,
        "GET",
        "/api/v1/memories/00000000-0000-0000-0000-000000000000",
        &[],
        None,
    )
    .await;
    check(&r, 404, "not_found");
    let r = http(&addr, "DELETE", "/api/v1/memories/not-a-uuid", &[], None).await;
    check(&r, 404, "not_found");
    let r = http(
        &addr,
        "GET",
        "/api/v1/snapshots/snapshot_20250101_000000_deadbeef",
        &[],
        None,
    )
    .await;
    check(&r, 404, "not_found");
    let r = http(&addr, "GET", "/api/v1/snapshots/..%2F..%2Fetc", &[], None).await;
    check(&r, 404, "not_found");
    let r = http(&addr, "GET", "/api/v1/nothing", &[], None).await;
    check(&r, 404, "not_found");
    let r = http(&addr, "GET", "/elsewhere", &[], None).await;
    check(&r, 404, "not_found");
    let r = http(&addr, "PUT", "/api/v1/turns", &[], None).await;
    check(&r, 405, "method_not_allowed");
    // Nothing invalid was stored.
    assert_eq!(server.manager().memory_count().unwrap(), 0);
    assert_eq!(server.manager().conversation().turn_count, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_round_trip() {
    let server = Server::start("", "").await;
    let addr = server.addr();
    http(
        &addr,
        "POST",
        "/api/v1/memories",
        &[JSON],
        Some(r#"{"content":"The user's name is Alice."}"#),
    )
    .await;
    let r = http(&addr, "POST", "/api/v1/snapshots", &[], None).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json["snapshot_id"].as_str().unwrap().to_owned();
    assert!(r.json.get("location").is_none());
    assert_eq!(r.json["metadata"]["long_term_memories"], 1);
    let r = http(
        &addr,
        "POST",
        &format!("/api/v1/snapshots/{id}/save"),
        &[],
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let location = r.json["location"].as_str().unwrap().to_owned();
    let r = http(&addr, "GET", &format!("/api/v1/snapshots/{id}"), &[], None).await;
    assert_eq!(r.json["long_term"]["memory_count"], 1);
    let r = http(&addr, "GET", "/api/v1/snapshots", &[], None).await;
    assert_eq!(r.json["snapshots"][0]["snapshot_id"], id.as_str());
    let r = http(
        &addr,
        "GET",
        "/api/v1/snapshots?from=2999-01-01T00:00:00Z",
        &[],
        None,
    )
    .await;
    assert_eq!(r.json["snapshots"], json!([]));
    let r = http(&addr, "GET", "/api/v1/snapshots?q=nomatch", &[], None).await;
    assert_eq!(r.json["snapshots"], json!([]));

    http(
        &addr,
        "POST",
        "/api/v1/memories",
        &[JSON],
        Some(r#"{"content":"Something else."}"#),
    )
    .await;
    let r = http(
        &addr,
        "POST",
        &format!("/api/v1/snapshots/{id}/apply"),
        &[],
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(server.manager().memory_count().unwrap(), 1);
    let body = json!({"location": location}).to_string();
    let r = http(
        &addr,
        "POST",
        "/api/v1/snapshots/load",
        &[JSON],
        Some(&body),
    )
    .await;
    assert_eq!(r.json["snapshot_id"], id.as_str(), "{}", r.text);
    let r = http(
        &addr,
        "POST",
        "/api/v1/snapshots",
        &[JSON],
        Some(r#"{"save":true}"#),
    )
    .await;
    assert!(r.json["location"].is_string(), "{}", r.text);

    // Diff against the live state: one memory was added since the snapshot... and applied away,
    // so add one now.
    http(
        &addr,
        "POST",
        "/api/v1/memories",
        &[JSON],
        Some(r#"{"content":"A newer memory."}"#),
    )
    .await;
    let r = http(
        &addr,
        "GET",
        &format!("/api/v1/snapshots/{id}/diff/current"),
        &[],
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (r.json["from"].as_str(), r.json["to"].as_str()),
        (Some(id.as_str()), Some("current"))
    );
    assert_eq!(r.json["memories"]["added"][0]["content"], "A newer memory.");
    assert_eq!(r.json["stats"]["total_memories"], 1);
    let r = http(
        &addr,
        "GET",
        "/api/v1/snapshots/snapshot_20200101_000000_deadbeef/diff/current",
        &[],
        None,
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text);
    let r = http(
        &addr,
        "GET",
        &format!("/api/v1/snapshots/{id}/diff/..%2Fetc"),
        &[],
        None,
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text);

    // Listing filters: by content text and by id.
    let r = http(&addr, "GET", "/api/v1/snapshots?q=ALICE", &[], None).await;
    assert!(
        !r.json["snapshots"].as_array().unwrap().is_empty(),
        "{}",
        r.text
    );
    let r = http(
        &addr,
        "GET",
        &format!("/api/v1/snapshots?q={}", &id[id.len() - 8..]),
        &[],
        None,
    )
    .await;
    assert_eq!(
        r.json["snapshots"][0]["snapshot_id"],
        id.as_str(),
        "{}",
        r.text
    );

    // Loading is confined to what the store holds: anything else names nothing there.
    let r = http(
        &addr,
        "POST",
        "/api/v1/snapshots/load",
        &[JSON],
        Some(r#"{"location":"/etc/passwd"}"#),
    )
    .await;
    assert_eq!(
        (r.status, r.json["error"]["field"].clone()),
        (404, json!("location")),
        "{}",
        r.text
    );
    let body = json!({"location": id}).to_string();
    let r = http(
        &addr,
        "POST",
        "/api/v1/snapshots/load",
        &[JSON],
        Some(&body),
    )
    .await;
    assert_eq!(
        r.json["snapshot_id"],
        id.as_str(),
        "a snapshot id is accepted too: {}",
        r.text
    );

    // Prune: needs a limit; keeps the newest `keep`.
    let r = http(
        &addr,
        "POST",
        "/api/v1/snapshots/prune",
        &[JSON],
        Some("{}"),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.text);
    let r = http(
        &addr,
        "POST",
        "/api/v1/snapshots/prune",
        &[JSON],
        Some(r#"{"older_than":"soon"}"#),
    )
    .await;
    assert_eq!(
        (r.status, r.json["error"]["field"].clone()),
        (422, json!("older_than")),
        "{}",
        r.text
    );
    let r = http(
        &addr,
        "POST",
        "/api/v1/snapshots/prune",
        &[JSON],
        Some(r#"{"keep":1,"older_than":0}"#),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json["removed"],
        json!([id]),
        "the older of the two saved snapshots goes"
    );
    let r = http(&addr, "GET", "/api/v1/snapshots", &[], None).await;
    assert!(r.json["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["snapshot_id"] != id.as_str()));
    let id = r.json["snapshots"][0]["snapshot_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = http(
        &addr,
        "DELETE",
        &format!("/api/v1/snapshots/{id}"),
        &[],
        None,
    )
    .await;
    assert_eq!(r.status, 204);
    let r = http(&addr, "GET", &format!("/api/v1/snapshots/{id}"), &[], None).await;
    assert_eq!(r.status, 404);

    let r = http(
        &addr,
        "PUT",
        "/api/v1/auto-snapshot",
        &[JSON],
        Some(r#"{"enabled":true,"interval":3}"#),
    )
    .await;
    assert_eq!(r.json, json!({"enabled": true, "interval": 3}));
    assert_eq!(server.manager().auto_snapshot_settings(), (true, 3));
    let r = http(
        &addr,
        "PUT",
        "/api/v1/auto-snapshot",
        &[JSON],
        Some(r#"{"enabled":false}"#),
    )
    .await;
    assert_eq!(r.json["enabled"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_guard_everything_but_healthz() {
    let server = Server::start("", "[server]\ntokens = [\"s3cret\"]").await;
    let addr = server.addr();
    for path in ["/api/v1/turns", "/api/v1/stats", "/metrics"] {
        let r = http(&addr, "GET", path, &[], None).await;
        assert_eq!(r.status, 401, "{path}");
        assert_eq!(r.json["error"]["code"], "unauthorized");
        assert_eq!(r.headers["www-authenticate"], "Bearer");
        let r = http(
            &addr,
            "GET",
            path,
            &[("authorization", "Bearer wrong")],
            None,
        )
        .await;
        assert_eq!(r.status, 401, "{path}");
        let r = http(
            &addr,
            "GET",
            path,
            &[("authorization", "Bearer s3cret")],
            None,
        )
        .await;
        assert_eq!(r.status, 200, "{path}");
    }
    // A refused write stores nothing.
    let r = http(
        &addr,
        "POST",
        "/api/v1/memories",
        &[JSON],
        Some(r#"{"content":"x"}"#),
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(server.manager().memory_count().unwrap(), 0);
    assert_eq!(http(&addr, "GET", "/healthz", &[], None).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_metrics_and_openapi() {
    let server = Server::start("", "").await;
    let addr = server.addr();
    let r = http(
        &addr,
        "POST",
        "/api/v1/memories",
        &[JSON],
        Some(r#"{"content":"The sky is blue."}"#),
    )
    .await;
    http(&addr, "GET", "/api/v1/memories/search?q=sky", &[], None).await;
    // The same update twice publishes one event: the second is a suppressed duplicate.
    let path = format!("/api/v1/memories/{}", r.json["id"].as_str().unwrap());
    for _ in 0..2 {
        let r = http(
            &addr,
            "PATCH",
            &path,
            &[JSON],
            Some(r#"{"importance":0.9}"#),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let r = http(&addr, "GET", "/healthz", &[], None).await;
    assert_eq!(r.json["status"], "ok");
    assert_eq!(r.json["epoch"], server.manager().bus().epoch().to_string());
    assert_eq!(r.json["seq"], 3);
    assert!(r.json["uptime_s"].is_number());

    let r = http(&addr, "GET", "/metrics", &[], None).await;
    assert_eq!(r.status, 200);
    for line in [
        "coda_events_total{type=\"memory_store\"} 1",
        "coda_events_total{type=\"memory_retrieve\"} 1",
        "coda_duplicates_suppressed_total 1",
        "coda_events_total{type=\"memory_update\"} 1",
        "coda_websocket_connections 0",
        "coda_websocket_events_dropped_total 0",
        "coda_websocket_lagged_total 0",
        "coda_websocket_disconnected_total{reason=\"overflow\"} 0",
        "coda_operation_duration_seconds_count{op=\"add\"} 1",
        "coda_operation_duration_seconds_count{op=\"search\"} 1",
        "coda_operation_duration_seconds_count{op=\"persist\"} 0",
        "coda_operation_duration_seconds_count{op=\"snapshot\"} 0",
        "coda_memories 1",
        "coda_turns 0",
        "coda_sessions 0",
        "coda_users 1",
    ] {
        assert!(
            r.text.lines().any(|l| l == line),
            "missing `{line}` in\n{}",
            r.text
        );
    }

    let r = http(&addr, "GET", "/api/v1/openapi.json", &[], None).await;
    assert!(r.json["openapi"].as_str().unwrap().starts_with("3."));
    assert!(r.json["paths"]["/memories/search"]["post"].is_object());
    let r = http(&addr, "GET", "/", &[], None).await;
    assert_eq!(r.status, 200);
    assert!(r.text.contains("<html"));
}

/// POSTs `body` with `Transfer-Encoding: chunked` (no declared length); returns the raw response.
async fn chunked_post(addr: &str, path: &str, body: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    for piece in body.as_bytes().chunks(100) {
        request.push_str(&format!(
            "{:x}\r\n{}\r\n",
            piece.len(),
            String::from_utf8_lossy(piece)
        ));
    }
    request.push_str("0\r\n\r\n");
    // The server may answer 413 and close before the whole body is sent.
    let _ = stream.write_all(request.as_bytes()).await;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(common::DEADLINE, stream.read_to_end(&mut response)).await;
    String::from_utf8_lossy(&response).into_owned()
}
