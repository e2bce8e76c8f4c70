//! `GET /api/v1/openapi.json` against the routes a real server serves: every documented
//! operation is routed, every route is documented, other methods get 405, every `$ref` resolves,
//! and real responses match the documented schemas of the main objects.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use coda_server::api::ROUTES;
use common::{http, Reply, Server};
use serde_json::{json, Value};

const JSON: (&str, &str) = ("content-type", "application/json");
const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// The document's operations as (METHOD, path template).
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (key, _) in item.as_object().unwrap() {
            if METHODS.contains(&key.to_uppercase().as_str()) {
                out.insert((key.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

/// Whether `template` (with `{name}` segments) matches the concrete `path`.
fn matches(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| t == p || (t.starts_with('{') && t.ends_with('}')))
}

/// A 404 for the route itself, as opposed to an unknown memory or snapshot.
fn route_missing(r: &Reply) -> bool {
    r.status == 404
        && r.json["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("route "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_lists_exactly_the_routes_served() {
    let server = Server::start("", "").await;
    let addr = server.addr();
    let r = http(&addr, "GET", "/api/v1/openapi.json", &[], None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let doc = r.json;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.0"));

    let routes: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    let listed = documented(&doc);
    let undocumented: Vec<_> = routes.difference(&listed).collect();
    let unrouted: Vec<_> = listed.difference(&routes).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from openapi.json: {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "openapi.json lists routes ROUTES lacks: {unrouted:?}"
    );

    // Real ids, so only a missing route can answer 404 `route ... not found`.
    let memory = http(
        &addr,
        "POST",
        "/api/v1/memories",
        &[JSON],
        Some(r#"{"content":"x"}"#),
    )
    .await;
    let memory_id = memory.json["id"].as_str().unwrap().to_owned();
    let snapshot = http(&addr, "POST", "/api/v1/snapshots", &[JSON], Some("{}")).await;
    let snapshot_id = snapshot.json["snapshot_id"].as_str().unwrap().to_owned();
    let concrete = |template: &str| {
        let id = if template.starts_with("/memories") {
            &memory_id
        } else {
            &snapshot_id
        };
        format!(
            "/api/v1{}",
            template
                .replace("{id}", id)
                .replace("{a}", &snapshot_id)
                .replace("{b}", "current")
        )
    };

    // Every documented operation is served (deletes last, so the ids exist throughout).
    let mut operations: Vec<_> = listed.iter().collect();
    operations.sort_by_key(|(method, _)| method == "DELETE");
    for (method, template) in operations {
        let path = concrete(template);
        let body = (method != "GET").then_some("{}");
        let r = http(&addr, method, &path, &[JSON], body).await;
        assert!(
            !route_missing(&r) && r.status != 405,
            "{method} {template} ({path}) is documented but not served: {} {}",
            r.status,
            r.text
        );
    }

    // Any other method on a documented path is refused with 405, unless another documented
    // template serves it (GET /snapshots/load is GET /snapshots/{id} with id `load`).
    for (_, template) in &listed {
        let path = concrete(template);
        let tail = path.trim_start_matches("/api/v1");
        for method in METHODS {
            let served = listed.iter().any(|(m, t)| m == method && matches(t, tail));
            if served {
                continue;
            }
            let body = (method != "GET").then_some("{}");
            let r = http(&addr, method, &path, &[JSON], body).await;
            assert_eq!(
                r.status, 405,
                "{method} {path}: the dispatcher serves an undocumented route? {}",
                r.text
            );
        }
    }
}

/// Resolves `{"$ref": "#/components/..."}`.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(pointer) => {
            let target = doc
                .pointer(pointer.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("dangling $ref {pointer}"));
            resolve(doc, target)
        }
        None => schema,
    }
}

/// Checks `value` against `schema` (types, required and known properties, array items, allOf);
/// returns the problems found, each with its JSON path.
fn check(doc: &Value, schema: &Value, value: &Value, at: &str, problems: &mut Vec<String>) {
    let schema = resolve(doc, schema);
    if let Some(parts) = schema["allOf"].as_array() {
        // Merge the parts' properties so that each part's unknown-key check sees all of them.
        let mut merged = json!({"type": "object", "properties": {}, "required": []});
        for part in parts {
            let part = resolve(doc, part);
            for (k, v) in part["properties"].as_object().into_iter().flatten() {
                merged["properties"][k] = v.clone();
            }
            for r in part["required"].as_array().into_iter().flatten() {
                merged["required"].as_array_mut().unwrap().push(r.clone());
            }
        }
        return check(doc, &merged, value, at, problems);
    }
    if value.is_null() && schema["nullable"] == true {
        return;
    }
    let ok = match schema["type"].as_str() {
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        _ => true,
    };
    if !ok {
        problems.push(format!("{at}: {value} is not {}", schema["type"]));
        return;
    }
    if let Some(object) = value.as_object() {
        let properties = schema["properties"].as_object();
        for name in schema["required"].as_array().into_iter().flatten() {
            if !object.contains_key(name.as_str().unwrap()) {
                problems.push(format!("{at}: required `{name}` is missing"));
            }
        }
        for (key, item) in object {
            match (
                properties.and_then(|p| p.get(key)),
                &schema["additionalProperties"],
            ) {
                (Some(property), _) => check(doc, property, item, &format!("{at}.{key}"), problems),
                (None, Value::Bool(true)) => {}
                // A bare `{"type": "object"}` says nothing about its keys.
                (None, Value::Null) if properties.is_none() => {}
                (None, Value::Object(_)) => check(
                    doc,
                    &schema["additionalProperties"],
                    item,
                    &format!("{at}.{key}"),
                    problems,
                ),
                (None, _) => problems.push(format!("{at}: `{key}` is not documented")),
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, item) in array.iter().enumerate() {
            check(doc, items, item, &format!("{at}[{i}]"), problems);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_responses_match_the_documented_schemas() {
    let server = Server::start("", "").await;
    let addr = server.addr();
    let doc = http(&addr, "GET", "/api/v1/openapi.json", &[], None)
        .await
        .json;
    let post = |path: &'static str, body: &'static str| {
        let addr = addr.clone();
        async move { http(&addr, "POST", path, &[JSON], Some(body)).await }
    };

    let turn = post(
        "/api/v1/turns",
        r#"{"role":"user","content":"Hi, my name is Alice."}"#,
    )
    .await;
    let conversation = http(&addr, "GET", "/api/v1/turns", &[], None).await;
    let before = post("/api/v1/snapshots", r#"{"save":true}"#).await;
    let memory = post(
        "/api/v1/memories",
        r#"{"content":"The user likes green tea.","memory_type":"preference",
            "importance":0.8,"metadata":{"topics":["tea"],"channel":"u1"},"session_id":"s1"}"#,
    )
    .await;
    let persisted = post("/api/v1/persist", "").await;
    let page = http(&addr, "GET", "/api/v1/memories?limit=5", &[], None).await;
    let search = post(
        "/api/v1/memories/search",
        r#"{"query":"green tea","filter":{"importance":{"gte":0.5}},"mode":"hybrid"}"#,
    )
    .await;
    let stats = http(&addr, "GET", "/api/v1/stats", &[], None).await;
    let id = before.json["snapshot_id"].as_str().unwrap();
    let snapshot = http(&addr, "GET", &format!("/api/v1/snapshots/{id}"), &[], None).await;
    let listing = http(&addr, "GET", "/api/v1/snapshots", &[], None).await;
    let diff = http(
        &addr,
        "GET",
        &format!("/api/v1/snapshots/{id}/diff/current"),
        &[],
        None,
    )
    .await;
    let error = post("/api/v1/memories", r#"{"content":"x","importance":2}"#).await;
    let session_turn = post(
        "/api/v1/sessions/chat-1/turns",
        r#"{"role":"user","content":"Hi, I'm Ann.","user_id":"ann","agent_id":"tutor"}"#,
    )
    .await;
    let get = |path: &'static str| {
        let addr = addr.clone();
        async move { http(&addr, "GET", path, &[], None).await }
    };
    let session = get("/api/v1/sessions/chat-1?user_id=ann").await;
    let sessions = get("/api/v1/sessions?user_id=ann").await;
    let users = get("/api/v1/users").await;
    let erased = http(&addr, "DELETE", "/api/v1/users/ann", &[], None).await;

    let cases: Vec<(&str, &Reply, &str)> = vec![
        ("Turn", &turn, ""),
        ("Conversation", &conversation, ""),
        ("CreatedSnapshot", &before, ""),
        ("Memory", &memory, ""),
        ("PersistOutcome", &persisted, ""),
        ("MemoryPage", &page, ""),
        ("SearchResults", &search, ""),
        ("ScoredMemory", &search, "/results/0"),
        ("MemoryStats", &stats, ""),
        ("Snapshot", &snapshot, ""),
        ("SnapshotListing", &listing, "/snapshots/0"),
        ("SnapshotDiff", &diff, ""),
        ("Error", &error, ""),
        ("SessionTurn", &session_turn, ""),
        ("SessionDetail", &session, ""),
        ("SessionPage", &sessions, ""),
        ("UserPage", &users, ""),
        ("UserErasure", &erased, ""),
    ];
    let mut problems = Vec::new();
    for (name, reply, pointer) in cases {
        let value = reply
            .json
            .pointer(pointer)
            .unwrap_or_else(|| panic!("{name}: nothing at `{pointer}` in {}", reply.text));
        let schema = json!({ "$ref": format!("#/components/schemas/{name}") });
        check(&doc, &schema, value, name, &mut problems);
    }
    // The diff must have something in it for its item schemas to be checked.
    assert!(
        !diff.json["memories"]["added"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{}",
        diff.text
    );
    assert!(
        problems.is_empty(),
        "responses differ from openapi.json:\n{}",
        problems.join("\n")
    );

    // Every $ref anywhere in the document resolves.
    fn refs(doc: &Value, value: &Value) {
        match value {
            Value::Object(map) => {
                if map.contains_key("$ref") {
                    resolve(doc, value);
                }
                map.values().for_each(|v| refs(doc, v));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(doc, v)),
            _ => {}
        }
    }
    refs(&doc, &doc);
}

/// Every request body refuses unknown fields, and every operation documents the errors any
/// request can meet; the served document follows the configuration (tokens, content limit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_states_the_servers_rules() {
    let guarded = Server::start("", "[server]\ntokens = [\"doc-token\"]").await;
    let doc = http(&guarded.addr(), "GET", "/api/v1/openapi.json", &[], None)
        .await
        .json;
    let open = Server::start("", "").await;
    let open_doc = http(&open.addr(), "GET", "/api/v1/openapi.json", &[], None)
        .await
        .json;
    assert!(doc["security"].is_array());
    assert!(
        open_doc.get("security").is_none(),
        "an open server asks for no token"
    );

    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if !METHODS.contains(&method.to_uppercase().as_str()) {
                continue;
            }
            if let Some(body) = op.pointer("/requestBody/content/application~1json/schema") {
                let body = resolve(&doc, body);
                assert_eq!(
                    body["additionalProperties"],
                    json!(false),
                    "{method} {path}: unknown body fields are 422"
                );
            }
            if path == "/openapi.json" {
                continue;
            }
            let responses = op["responses"].as_object().unwrap();
            for code in ["400", "401", "404", "414", "422", "429", "503"] {
                assert!(responses.contains_key(code), "{method} {path} lacks {code}");
            }
            if method != "get" {
                assert!(responses.contains_key("413"), "{method} {path} lacks 413");
            }
            let open_op = &open_doc["paths"][path][method]["responses"];
            assert!(
                open_op.get("401").is_none(),
                "{method} {path}: 401 without tokens"
            );
        }
    }
    let id = &doc["components"]["schemas"]["ScopeId"];
    assert_eq!(id["pattern"], "^[A-Za-z0-9._:@-]{1,128}$");
    let query = &doc["components"]["schemas"]["SearchRequest"]["properties"];
    assert_eq!(
        query["query"]["maxLength"], 65536,
        "memory.max_content_bytes"
    );
    assert_eq!(query["limit"]["maximum"], 1000);
}
