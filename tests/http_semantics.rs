//! RFC 9110 method semantics and CORS over a real socket, for every route `ROUTES` lists and
//! the routes outside `/api/v1`: 405 with `Allow`, `HEAD` wherever `GET` is, `OPTIONS`, the
//! CORS preflight and response headers for a listed origin (none for another), and a 422
//! naming any unknown body field.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use coda_server::api::ROUTES;
use common::{http, Reply, Server};

const TOKEN: &str = "semantics-token";
const AUTH: (&str, &str) = ("authorization", "Bearer semantics-token");
const JSON: (&str, &str) = ("content-type", "application/json");
const LISTED: &str = "https://dash.example";
const OTHER: &str = "https://evil.example";
const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

async fn start() -> Server {
    Server::start(
        "",
        &format!("[server]\ntokens = [\"{TOKEN}\"]\nallowed_origins = [\"{LISTED}\"]"),
    )
    .await
}

/// Real ids, so that only the method decides the answer.
struct Ids {
    memory: String,
    snapshot: String,
}

async fn ids(addr: &str) -> Ids {
    let memory = http(
        addr,
        "POST",
        "/api/v1/memories",
        &[AUTH, JSON],
        Some(r#"{"content":"x"}"#),
    )
    .await;
    let snapshot = http(addr, "POST", "/api/v1/snapshots", &[AUTH, JSON], Some("{}")).await;
    Ids {
        memory: memory.json["id"].as_str().unwrap().to_owned(),
        snapshot: snapshot.json["snapshot_id"].as_str().unwrap().to_owned(),
    }
}

/// `template` of `ROUTES` as a concrete path.
fn concrete(template: &str, ids: &Ids) -> String {
    let id = if template.starts_with("/memories") {
        &ids.memory
    } else {
        &ids.snapshot
    };
    format!(
        "/api/v1{}",
        template
            .replace("{id}", id)
            .replace("{a}", &ids.snapshot)
            .replace("{b}", "current")
            .replace("{sid}", "chat-1")
            .replace("{uid}", "ann")
    )
}

/// Every path to check, concrete, with the methods it must allow (HEAD and OPTIONS included).
async fn paths(addr: &str) -> Vec<(String, BTreeSet<String>)> {
    let ids = ids(addr).await;
    let mut out: Vec<(String, BTreeSet<String>)> = Vec::new();
    for (method, template) in ROUTES {
        let path = concrete(template, &ids);
        match out.iter_mut().find(|(p, _)| *p == path) {
            Some((_, methods)) => {
                methods.insert(method.to_string());
            }
            None => out.push((path, BTreeSet::from([method.to_string()]))),
        }
    }
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/",
        "/assets/app.js",
        "/ws",
    ] {
        out.push((path.to_owned(), BTreeSet::from(["GET".to_owned()])));
    }
    for (_, methods) in &mut out {
        if methods.contains("GET") {
            methods.insert("HEAD".into());
        }
        methods.insert("OPTIONS".into());
    }
    out
}

fn header<'a>(r: &'a Reply, name: &str) -> &'a str {
    r.headers
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or("")
}

fn listed(value: &str) -> BTreeSet<String> {
    value
        .split(',')
        .map(|m| m.trim().to_owned())
        .filter(|m| !m.is_empty())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_405_has_allow_listing_what_the_path_serves() {
    let server = start().await;
    let addr = server.addr();
    for (path, allowed) in paths(&addr).await {
        for method in METHODS.iter().filter(|m| !allowed.contains(**m)) {
            let r = http(&addr, method, &path, &[AUTH, JSON], Some("{}")).await;
            assert_eq!(r.status, 405, "{method} {path}: {}", r.text);
            assert_eq!(
                listed(header(&r, "allow")),
                allowed,
                "{method} {path}: Allow"
            );
            assert_eq!(r.json["error"]["code"], "method_not_allowed", "{}", r.text);
        }
    }
    // TRACE and the like are refused the same way, even without a token.
    let r = http(&addr, "TRACE", "/api/v1/turns", &[], None).await;
    assert_eq!(r.status, 405);
    assert_eq!(header(&r, "allow"), "GET, HEAD, POST, DELETE, OPTIONS");
    // A path nothing serves is 404, whatever the method.
    let r = http(&addr, "PUT", "/api/v1/nothing", &[AUTH], None).await;
    assert_eq!(r.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_answers_wherever_get_does_with_the_same_headers_and_no_body() {
    let server = start().await;
    let addr = server.addr();
    for (path, allowed) in paths(&addr).await {
        if !allowed.contains("GET") || path == "/ws" {
            continue;
        }
        let get = http(&addr, "GET", &path, &[AUTH], None).await;
        let head = http(&addr, "HEAD", &path, &[AUTH], None).await;
        assert_eq!(head.status, get.status, "HEAD {path}: {}", get.text);
        assert!(head.text.is_empty(), "HEAD {path} sent a body");
        assert_eq!(
            header(&head, "content-type"),
            header(&get, "content-type"),
            "HEAD {path}"
        );
        // Exports stream (chunked): their length is not known up front, for HEAD either.
        let streamed = header(&get, "transfer-encoding") == "chunked";
        assert!(
            streamed || !header(&head, "content-length").is_empty(),
            "HEAD {path}"
        );
        // `/healthz` and stats report durations: their length may differ by a digit.
        if path != "/healthz" && !path.ends_with("stats") && !streamed {
            assert_eq!(
                header(&head, "content-length"),
                header(&get, "content-length"),
                "HEAD {path}"
            );
        }
        assert!(!header(&head, "content-type").is_empty(), "HEAD {path}");
    }
    // HEAD where only POST is served is a 405.
    let r = http(&addr, "HEAD", "/api/v1/persist", &[AUTH], None).await;
    assert_eq!(r.status, 405);
    assert_eq!(header(&r, "allow"), "POST, OPTIONS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_answers_204_with_allow_and_needs_no_token() {
    let server = start().await;
    let addr = server.addr();
    for (path, allowed) in paths(&addr).await {
        let r = http(&addr, "OPTIONS", &path, &[], None).await;
        assert_eq!(r.status, 204, "OPTIONS {path}: {}", r.text);
        assert_eq!(listed(header(&r, "allow")), allowed, "OPTIONS {path}");
        assert!(r.text.is_empty());
        // Without an Origin this is no preflight: no CORS headers.
        assert!(r.headers.get("access-control-allow-origin").is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_answers_listed_origins_only() {
    let server = start().await;
    let addr = server.addr();
    for (path, allowed) in paths(&addr).await {
        let method = allowed.iter().find(|m| *m != "HEAD").unwrap().clone();
        let preflight = [
            ("origin", LISTED),
            ("access-control-request-method", method.as_str()),
            (
                "access-control-request-headers",
                "authorization, content-type",
            ),
        ];
        let r = http(&addr, "OPTIONS", &path, &preflight, None).await;
        assert_eq!(r.status, 204, "preflight {path}");
        assert_eq!(header(&r, "access-control-allow-origin"), LISTED, "{path}");
        assert_eq!(
            listed(header(&r, "access-control-allow-methods")),
            allowed,
            "{path}"
        );
        assert_eq!(
            header(&r, "access-control-allow-headers"),
            "authorization, content-type, x-coda-tenant"
        );
        assert!(header(&r, "access-control-max-age").parse::<u32>().unwrap() > 0);
        assert!(header(&r, "vary").contains("origin"), "{path}");

        let refused = [
            ("origin", OTHER),
            ("access-control-request-method", method.as_str()),
        ];
        let r = http(&addr, "OPTIONS", &path, &refused, None).await;
        assert!(
            r.headers.get("access-control-allow-origin").is_none(),
            "{path}"
        );
        assert!(
            r.headers.get("access-control-allow-methods").is_none(),
            "{path}"
        );
    }

    // Normal responses carry the origin back to a listed page, and Vary for caches.
    let r = http(
        &addr,
        "GET",
        "/api/v1/turns",
        &[AUTH, ("origin", LISTED)],
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(header(&r, "access-control-allow-origin"), LISTED);
    assert!(header(&r, "vary").contains("origin"));
    // Errors too, so the page can read them.
    let r = http(&addr, "GET", "/api/v1/turns", &[("origin", LISTED)], None).await;
    assert_eq!(r.status, 401);
    assert_eq!(header(&r, "access-control-allow-origin"), LISTED);
    let r = http(
        &addr,
        "GET",
        "/api/v1/turns",
        &[AUTH, ("origin", OTHER)],
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.headers.get("access-control-allow-origin").is_none());
    assert!(header(&r, "vary").contains("origin"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_body_fields_are_422_naming_them_on_every_route() {
    let server = start().await;
    let addr = server.addr();
    // A valid body for each route that takes one; every other non-GET route takes none.
    let bodies = [
        ("POST /turns", r#"{"role":"user","content":"hi"}"#),
        ("POST /memories", r#"{"content":"x"}"#),
        ("POST /memories/search", r#"{"query":"x"}"#),
        ("PATCH /memories/{id}", r#"{"importance":0.5}"#),
        ("POST /snapshots", "{}"),
        ("POST /snapshots/load", r#"{"location":"x"}"#),
        ("POST /snapshots/prune", r#"{"keep":5}"#),
        ("PUT /auto-snapshot", r#"{"enabled":false}"#),
        (
            "POST /sessions/{sid}/turns",
            r#"{"role":"user","content":"hi"}"#,
        ),
    ];
    let ids = ids(&addr).await;
    let mut checked = 0;
    // An import's body is JSON Lines, not one object with fields: tests/export_import.rs
    // checks that its bad lines are 422 naming the line.
    let object_bodies = ROUTES
        .iter()
        .filter(|(m, t)| *m != "GET" && *t != "/import");
    for (method, template) in object_bodies {
        let key = format!("{method} {template}");
        let base = bodies
            .iter()
            .find(|(k, _)| *k == key)
            .map_or("{}", |(_, b)| b);
        let body = format!(
            "{{\"bogus_field\":1,{}",
            base.trim_start_matches('{').trim_start()
        )
        .replace(",}", "}");
        let path = &concrete(template, &ids);
        let r = http(&addr, method, path, &[AUTH, JSON], Some(&body)).await;
        assert_eq!(r.status, 422, "{key} with {body}: {}", r.text);
        assert_eq!(r.json["error"]["field"], "bogus_field", "{key}: {}", r.text);
        assert!(
            r.json["error"]["message"]
                .as_str()
                .unwrap()
                .contains("bogus_field"),
            "{}",
            r.text
        );
        checked += 1;
    }
    // Every route but the GETs: 19 when this was written.
    assert!(checked >= 19, "{checked}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_segments_are_percent_decoded() {
    let server = start().await;
    let addr = server.addr();
    let r = http(
        &addr,
        "POST",
        "/api/v1/sessions/s%40home/turns",
        &[AUTH, JSON],
        Some(r#"{"role":"user","content":"hi"}"#),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["session_id"], "s@home");
    let r = http(&addr, "GET", "/api/v1/sessions/s@home", &[AUTH], None).await;
    assert_eq!(r.status, 200, "{}", r.text);
}
