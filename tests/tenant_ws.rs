//! `/ws` between tenants (SPEC §9) against a real server over real sockets: a tenant token's
//! connection carries only its tenant's events, live, on connect, on resume and on a replay op;
//! naming another tenant is a 404 before the upgrade; an admin picks a tenant with `tenant=`.

#![allow(clippy::unwrap_used)]

mod common;

use common::{http, next, send, try_ws, Server, Ws};
use serde_json::{json, Value};

fn config() -> &'static str {
    "[server]\ntokens = [\"root-token\"]\n\
     [[server.tenants]]\nid = \"acme\"\ntokens = [\"acme-token\"]\n\
     [[server.tenants]]\nid = \"beta\"\ntokens = [\"beta-token\"]\n"
}

/// Stores a memory as `token`'s tenant.
async fn store(addr: &str, token: &str, content: &str) {
    let auth = format!("Bearer {token}");
    let body = json!({ "content": content }).to_string();
    let r = http(
        addr,
        "POST",
        "/api/v1/memories",
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        Some(&body),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
}

/// Connects with `query` (which carries the token) and reads the welcome.
async fn connect(addr: &str, query: &str) -> Ws {
    let mut ws = try_ws(addr, query, &[]).await.unwrap();
    assert_eq!(next(&mut ws).await["type"], "welcome");
    ws
}

/// Sends a ping and returns every event that arrives before the pong: whatever was queued
/// ahead of it (a replay, live events already delivered).
async fn events_before_pong(ws: &mut Ws) -> Vec<Value> {
    send(ws, r#"{"op":"ping"}"#).await;
    let mut events = Vec::new();
    loop {
        let frame = next(ws).await;
        match frame["type"].as_str() {
            Some("pong") => return events,
            Some("batch") => events.extend(frame["events"].as_array().unwrap().iter().cloned()),
            Some("welcome" | "lagged" | "replay_gap" | "error") => {}
            _ => events.push(frame),
        }
    }
}

/// Reads events until one with `content`; returns them all.
async fn until(ws: &mut Ws, content: &str) -> Vec<Value> {
    let mut got = Vec::new();
    loop {
        let frame = next(ws).await;
        if frame["type"] == "memory_store" {
            let done = frame["content"] == content;
            got.push(frame);
            if done {
                return got;
            }
        }
    }
}

fn contents(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|e| e["content"].as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_stream_carries_only_its_tenants_events() {
    let server = Server::start("", config()).await;
    let addr = server.addr();
    store(&addr, "acme-token", "acme before").await;
    store(&addr, "beta-token", "beta before").await;

    // Live: acme's events between beta's never reach beta.
    let mut beta = connect(&addr, "token=beta-token&replay=0").await;
    let mut admin_acme = connect(&addr, "token=root-token&replay=0&tenant=acme").await;
    let mut admin_all = connect(&addr, "token=root-token&replay=0&tenant=*").await;
    store(&addr, "acme-token", "acme live").await;
    store(&addr, "beta-token", "beta live").await;
    let live = until(&mut beta, "beta live").await;
    assert_eq!(contents(&live), ["beta live"], "{live:?}");
    assert_eq!(live[0]["tenant"], "beta");
    let acme_seen = until(&mut admin_acme, "acme live").await;
    assert_eq!(contents(&acme_seen), ["acme live"]);
    assert_eq!(
        acme_seen[0]["tenant"], "acme",
        "admin streams carry the tenant"
    );
    let all = until(&mut admin_all, "beta live").await;
    assert_eq!(contents(&all), ["acme live", "beta live"]);

    // A subscribe cannot widen the tenant.
    send(&mut beta, r#"{"op":"subscribe","types":[]}"#).await;
    store(&addr, "acme-token", "acme after subscribe").await;
    store(&addr, "beta-token", "beta after subscribe").await;
    let after = until(&mut beta, "beta after subscribe").await;
    assert_eq!(contents(&after), ["beta after subscribe"]);

    // A replay op, from the start.
    send(&mut beta, r#"{"op":"replay","since":0}"#).await;
    let replayed = events_before_pong(&mut beta).await;
    assert_eq!(
        contents(&replayed),
        ["beta before", "beta live", "beta after subscribe"],
        "{replayed:?}"
    );

    // Replay on connect, and resume.
    for query in ["token=beta-token&replay=100", "token=beta-token&since=0"] {
        let mut fresh = connect(&addr, query).await;
        let held = events_before_pong(&mut fresh).await;
        assert_eq!(
            contents(&held),
            ["beta before", "beta live", "beta after subscribe"],
            "{query}: {held:?}"
        );
        assert!(held.iter().all(|e| e["tenant"] == "beta"), "{held:?}");
    }

    // An admin without `tenant=` is on `default`, like the HTTP API: nothing of acme or beta.
    let mut admin = connect(&addr, "token=root-token&replay=100").await;
    assert!(events_before_pong(&mut admin).await.is_empty());

    // The same change in two tenants is two events: acme's clear never suppresses beta's as a
    // duplicate (the tenant is part of the event, and so of its dedup hash).
    for token in ["acme-token", "beta-token"] {
        let auth = format!("Bearer {token}");
        let r = http(
            &addr,
            "DELETE",
            "/api/v1/turns",
            &[("authorization", &auth)],
            None,
        )
        .await;
        assert_eq!(r.status, 204, "{}", r.text);
    }
    loop {
        let frame = next(&mut beta).await;
        if frame["type"] == "memory_clear" {
            assert_eq!(frame["tenant"], "beta", "{frame}");
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn naming_another_tenant_is_refused_before_the_upgrade() {
    let server = Server::start("", config()).await;
    let addr = server.addr();
    for query in [
        "token=beta-token&tenant=acme",
        "token=beta-token&tenant=nobody",
        "token=beta-token&tenant=*",
        "token=root-token&tenant=nobody",
    ] {
        assert_eq!(try_ws(&addr, query, &[]).await.err(), Some(404), "{query}");
    }
    assert_eq!(
        try_ws(&addr, "token=root-token&tenant=a%20b", &[])
            .await
            .err(),
        Some(422)
    );
    assert_eq!(try_ws(&addr, "token=wrong", &[]).await.err(), Some(401));
    assert_eq!(try_ws(&addr, "", &[]).await.err(), Some(401));
    // Its own tenant, by name, and the header form of the token.
    assert!(try_ws(&addr, "token=beta-token&tenant=beta", &[])
        .await
        .is_ok());
    assert!(try_ws(&addr, "", &[("authorization", "Bearer acme-token")])
        .await
        .is_ok());
}
