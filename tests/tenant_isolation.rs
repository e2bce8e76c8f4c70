//! Isolation between tenants on every route (SPEC §9), generated from the dispatcher's route
//! table: for each entry of `coda_server::api::ROUTES`, tenant `beta`'s token asks for tenant
//! `acme`'s memory, session, snapshot and user ids — the same user id, `alice`, in its own
//! tenant — and gets 404 or an answer holding nothing of acme's; afterwards acme's data is
//! intact. A route added without a case here fails the test. Also: the admin header, `GET
//! /tenants`, `/metrics`, hashed and wrong tokens.

#![allow(clippy::unwrap_used)]

mod common;

use coda_server::api::ROUTES;
use common::{http, seed_victim, Reply, Server, Victim};
use serde_json::{json, Value};

const JSON: (&str, &str) = ("content-type", "application/json");
const ADMIN: &str = "Bearer root-token";
const ACME: &str = "Bearer acme-token";
const BETA: &str = "Bearer beta-token";

/// Admin `root-token`; tenant `acme` with a plain token; tenant `beta` with a hashed one.
fn config() -> String {
    // SHA-256 of "beta-token" (`printf beta-token | sha256sum`).
    let beta = "sha256:863d63c0bd3a94bfca84ed2063a7355a226faff82ca50b90158bf183aa1a9e61";
    format!(
        "[server]\ntokens = [\"root-token\"]\n\
         [[server.tenants]]\nid = \"acme\"\ntokens = [\"acme-token\"]\n\
         [[server.tenants]]\nid = \"beta\"\ntokens = [\"{beta}\"]\n"
    )
}

async fn call(addr: &str, auth: &str, method: &str, path: &str, body: Option<Value>) -> Reply {
    call_as(addr, &[("authorization", auth)], method, path, body).await
}

async fn call_as(
    addr: &str,
    headers: &[(&str, &str)],
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Reply {
    // A string is a raw body (an import's JSON Lines); anything else is sent as JSON.
    let text = body.map(|b| match b {
        Value::String(raw) => raw,
        other => other.to_string(),
    });
    let mut all = vec![JSON];
    all.extend_from_slice(headers);
    http(addr, method, path, &all, text.as_deref()).await
}

/// An export holding one memory of `user` with the id `id` (someone else's) and new content.
fn import_claiming(id: &str, user: &str) -> Value {
    let lines = [
        json!({"kind": "header", "format": "coda-export", "version": 1}),
        json!({"kind": "memory", "id": id, "content": "stolen", "user_id": user,
               "metadata": {"source_type": "fact", "importance": 0.5,
                            "timestamp": "2024-01-01T00:00:00Z"}}),
        json!({"kind": "end", "count": 1}),
    ];
    Value::String(lines.map(|l| l.to_string()).join("\n"))
}

/// What beta sends for one route: acme's ids, user `alice`, which beta may have too.
fn case(method: &str, template: &str, a: &Victim) -> (String, Option<Value>) {
    let (m, s, snap) = (&a.memory, a.session, &a.snapshot);
    let plain = |path: String| (path, None);
    let with = |path: String, body: Value| (path, Some(body));
    let u = "user_id=alice";
    match (method, template) {
        ("POST", "/turns") => with(
            format!("/api/v1/turns?{u}"),
            json!({"role": "user", "content": "hi"}),
        ),
        ("GET", "/turns") | ("DELETE", "/turns") => plain(format!("/api/v1/turns?{u}")),
        ("POST", "/persist") => plain(format!("/api/v1/persist?{u}")),
        ("GET", "/stats") => plain(format!("/api/v1/stats?{u}&session_id={s}")),
        ("POST", "/memories") => with(
            "/api/v1/memories".into(),
            json!({"content": "beta's own", "user_id": "alice"}),
        ),
        ("GET", "/memories") => plain(format!("/api/v1/memories?{u}&limit=100")),
        ("POST", "/memories/search") => with(
            "/api/v1/memories/search".into(),
            json!({"query": a.secret, "user_id": "alice", "limit": 50}),
        ),
        ("GET", "/memories/search") => plain(format!(
            "/api/v1/memories/search?q={}&{u}&limit=50&mode=lexical",
            a.secret
        )),
        ("GET", "/memories/{id}")
        | ("GET", "/memories/{id}/history")
        | ("DELETE", "/memories/{id}") => {
            let tail = if template.ends_with("history") { "/history" } else { "" };
            plain(format!("/api/v1/memories/{m}{tail}?{u}"))
        }
        ("PATCH", "/memories/{id}") => with(
            format!("/api/v1/memories/{m}?{u}"),
            json!({"content": "stolen"}),
        ),
        ("GET", "/snapshots") => plain(format!("/api/v1/snapshots?{u}")),
        ("POST", "/snapshots") => with("/api/v1/snapshots".into(), json!({"user_id": "alice"})),
        ("POST", "/snapshots/load") => with(
            format!("/api/v1/snapshots/load?{u}"),
            json!({"location": snap}),
        ),
        ("POST", "/snapshots/prune") => {
            with(format!("/api/v1/snapshots/prune?{u}"), json!({"keep": 0}))
        }
        ("GET", "/snapshots/{id}") | ("DELETE", "/snapshots/{id}") => {
            plain(format!("/api/v1/snapshots/{snap}?{u}"))
        }
        ("POST", "/snapshots/{id}/save") => plain(format!("/api/v1/snapshots/{snap}/save?{u}")),
        ("POST", "/snapshots/{id}/apply") => {
            plain(format!("/api/v1/snapshots/{snap}/apply?{u}"))
        }
        ("GET", "/snapshots/{a}/diff/{b}") => {
            plain(format!("/api/v1/snapshots/{snap}/diff/current?{u}"))
        }
        ("PUT", "/auto-snapshot") => with("/api/v1/auto-snapshot".into(), json!({"enabled": false})),
        ("GET", "/sessions") => plain(format!("/api/v1/sessions?{u}")),
        ("GET", "/sessions/{sid}") | ("DELETE", "/sessions/{sid}") => {
            plain(format!("/api/v1/sessions/{s}?{u}"))
        }
        ("POST", "/sessions/{sid}/turns") => with(
            format!("/api/v1/sessions/{s}/turns"),
            json!({"role": "user", "content": "hijack", "user_id": "alice"}),
        ),
        ("GET", "/sessions/{sid}/turns") | ("DELETE", "/sessions/{sid}/turns") => {
            plain(format!("/api/v1/sessions/{s}/turns?{u}"))
        }
        ("POST", "/sessions/{sid}/persist") => {
            plain(format!("/api/v1/sessions/{s}/persist?{u}"))
        }
        ("GET", "/users") => plain("/api/v1/users".into()),
        ("GET", "/users/{uid}/stats") => plain("/api/v1/users/alice/stats".into()),
        ("GET", "/users/{uid}/export") => plain("/api/v1/users/alice/export".into()),
        ("GET", "/export") => plain("/api/v1/export".into()),
        // Beta's file names acme's memory id: it lands in beta, under another id.
        ("POST", "/import") => with("/api/v1/import".into(), import_claiming(m, "alice")),
        ("DELETE", "/users/{uid}") => plain("/api/v1/users/alice".into()),
        ("GET", "/tenants") => plain("/api/v1/tenants".into()),
        ("POST", "/backup") => with("/api/v1/backup".into(), json!({"dir": "beta-try"})),
        ("GET", "/openapi.json") => plain("/api/v1/openapi.json".into()),
        (method, template) => panic!(
            "no isolation case for {method} {template}: every route needs one in tests/tenant_isolation.rs"
        ),
    }
}

/// Acme's memory, session and snapshot are exactly as seeded.
async fn assert_intact(addr: &str, a: &Victim) {
    let memory = call(
        addr,
        ACME,
        "GET",
        &format!("/api/v1/memories/{}?user_id=alice", a.memory),
        None,
    )
    .await;
    assert_eq!(memory.status, 200, "{}", memory.text);
    assert!(memory.json["content"].as_str().unwrap().contains(a.secret));
    let turns = call(
        addr,
        ACME,
        "GET",
        &format!("/api/v1/sessions/{}/turns?user_id=alice", a.session),
        None,
    )
    .await;
    assert_eq!(turns.json["turn_count"], 1, "{}", turns.text);
    assert!(!turns.text.contains("hijack"), "{}", turns.text);
    let snapshot = call(
        addr,
        ACME,
        "GET",
        &format!("/api/v1/snapshots/{}?user_id=alice", a.snapshot),
        None,
    )
    .await;
    assert_eq!(snapshot.status, 200, "{}", snapshot.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_route_lets_one_tenant_reach_another_tenants_data() {
    let server = Server::start("", &config()).await;
    let addr = server.addr();
    let acme = seed_victim(
        &addr,
        &[("authorization", ACME)],
        "ACME-SECRET-4242",
        "acme-session-x",
    )
    .await;
    for (method, template) in ROUTES {
        let (path, body) = case(method, template, &acme);
        // Beta's own token, and beta's token naming acme: neither reaches acme.
        for headers in [
            vec![("authorization", BETA)],
            vec![("authorization", BETA), ("x-coda-tenant", "acme")],
        ] {
            let r = call_as(&addr, &headers, method, &path, body.clone()).await;
            let ok = (200..300).contains(&r.status);
            assert!(
                ok || r.status == 404,
                "{method} {path} {headers:?}: {} {}",
                r.status,
                r.text
            );
            if ok && *template != "/openapi.json" {
                for marker in [&*acme.memory, &*acme.snapshot, acme.secret] {
                    assert!(
                        !r.text.contains(marker),
                        "{method} {path} answered beta with acme's `{marker}`: {}",
                        r.text
                    );
                }
            }
        }
    }
    assert_intact(&addr, &acme).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn naming_another_tenant_reads_like_naming_none_that_exists() {
    let server = Server::start("", &config()).await;
    let addr = server.addr();
    let acme = seed_victim(
        &addr,
        &[("authorization", ACME)],
        "ACME-SECRET-4242",
        "acme-session-x",
    )
    .await;
    let path = format!("/api/v1/memories/{}?user_id=alice", acme.memory);
    let as_beta = |tenant: &'static str| {
        let (addr, path) = (addr.clone(), path.clone());
        async move {
            call_as(
                &addr,
                &[("authorization", BETA), ("x-coda-tenant", tenant)],
                "GET",
                &path,
                None,
            )
            .await
        }
    };
    let existing = as_beta("acme").await;
    let missing = as_beta("no-such-tenant").await;
    let malformed = as_beta("not a tenant").await;
    assert_eq!(existing.status, 404, "{}", existing.text);
    assert_eq!(existing.text, missing.text, "existence must not show");
    assert_eq!(
        existing.text, malformed.text,
        "nor must validation, for a tenant token"
    );
    // Beta naming itself is fine: its own (empty) tenant.
    assert_eq!(as_beta("beta").await.status, 404);
    let own = call_as(
        &addr,
        &[("authorization", BETA), ("x-coda-tenant", "beta")],
        "GET",
        "/api/v1/users",
        None,
    )
    .await;
    assert_eq!(own.status, 200, "{}", own.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_names_a_tenant_with_the_header() {
    let server = Server::start("", &config()).await;
    let addr = server.addr();
    let acme = seed_victim(
        &addr,
        &[("authorization", ACME)],
        "ACME-SECRET-4242",
        "acme-session-x",
    )
    .await;
    let path = format!("/api/v1/memories/{}?user_id=alice", acme.memory);
    let admin = |tenant: Option<&'static str>| {
        let (addr, path) = (addr.clone(), path.clone());
        async move {
            let mut headers = vec![("authorization", ADMIN)];
            headers.extend(tenant.map(|t| ("x-coda-tenant", t)));
            call_as(&addr, &headers, "GET", &path, None).await
        }
    };
    let reached = admin(Some("acme")).await;
    assert_eq!(reached.status, 200, "{}", reached.text);
    assert!(reached.text.contains(acme.secret));
    assert_eq!(
        admin(None).await.status,
        404,
        "without the header an admin is on `default`"
    );
    assert_eq!(admin(Some("nobody")).await.status, 404);
    let bad = admin(Some("not a tenant")).await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    assert_eq!(bad.json["error"]["field"], "X-Coda-Tenant");

    let tenants = call(&addr, ADMIN, "GET", "/api/v1/tenants", None).await;
    assert_eq!(tenants.status, 200, "{}", tenants.text);
    assert_eq!(
        tenants.json,
        json!({"tenants": [
            {"id": "default", "memories": 0, "sessions": 0},
            {"id": "acme", "memories": 1, "sessions": 1},
            {"id": "beta", "memories": 0, "sessions": 0},
        ]})
    );
    let hidden = call(&addr, BETA, "GET", "/api/v1/tenants", None).await;
    let unknown = call(&addr, BETA, "GET", "/api/v1/no-such-route", None).await;
    assert_eq!(hidden.status, 404, "{}", hidden.text);
    assert_eq!(
        hidden.json["error"]["code"], unknown.json["error"]["code"],
        "GET /tenants reads like a missing route to a tenant"
    );

    let metrics = |auth: &'static str| {
        let addr = addr.clone();
        async move { http(&addr, "GET", "/metrics", &[("authorization", auth)], None).await }
    };
    assert_eq!(metrics(ADMIN).await.status, 200);
    assert_eq!(
        metrics(ACME).await.status,
        404,
        "metrics count every tenant: admins only"
    );
    // Automatic snapshots are one setting for all tenants: only an admin changes it.
    let auto = |auth: &'static str| {
        let addr = addr.clone();
        async move {
            call(
                &addr,
                auth,
                "PUT",
                "/api/v1/auto-snapshot",
                Some(json!({"enabled": false})),
            )
            .await
        }
    };
    assert_eq!(auto(BETA).await.status, 404);
    assert_eq!(auto(ADMIN).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashed_tokens_work_and_wrong_ones_are_refused() {
    let server = Server::start("", &config()).await;
    let addr = server.addr();
    // Beta's token is configured only as its SHA-256.
    let own = call(
        &addr,
        BETA,
        "POST",
        "/api/v1/memories",
        Some(json!({"content": "beta note"})),
    )
    .await;
    assert_eq!(own.status, 201, "{}", own.text);
    assert_eq!(own.json["tenant"], "beta", "{}", own.text);
    let digest = coda::tenant::TokenDigest::of("beta-token").display();
    for auth in [
        "Bearer beta-toke".to_owned(),
        "Bearer ".to_owned(),
        format!("Bearer {digest}"),
        "Basic beta-token".to_owned(),
    ] {
        let r = call(&addr, &auth, "GET", "/api/v1/memories", None).await;
        assert_eq!(r.status, 401, "{auth}: {}", r.text);
    }
    let none = http(&addr, "GET", "/api/v1/memories", &[], None).await;
    assert_eq!(none.status, 401);
    // Beta's memory is beta's alone.
    let acme_view = call(&addr, ACME, "GET", "/api/v1/memories", None).await;
    assert!(!acme_view.text.contains("beta note"), "{}", acme_view.text);
    let admin_view = call(&addr, ADMIN, "GET", "/api/v1/memories", None).await;
    assert!(
        !admin_view.text.contains("beta note"),
        "{}",
        admin_view.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_metrics_count_every_tenants_sessions_and_users() {
    let server = Server::start("", &config()).await;
    let addr = server.addr();
    seed_victim(
        &addr,
        &[("authorization", ACME)],
        "ACME-SECRET-4242",
        "acme-session-x",
    )
    .await;
    seed_victim(
        &addr,
        &[("authorization", BETA)],
        "BETA-SECRET-4242",
        "beta-session-x",
    )
    .await;
    let r = call(&addr, ADMIN, "GET", "/metrics", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Two tenants' alice are two users, each with one session and one turn.
    for line in ["coda_sessions 2", "coda_users 2", "coda_turns 2"] {
        assert!(
            r.text.lines().any(|l| l == line),
            "missing `{line}` in\n{}",
            r.text
        );
    }
}
