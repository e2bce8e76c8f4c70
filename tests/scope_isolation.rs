//! Isolation between users on every route, generated from the dispatcher's route table: for each
//! entry of `coda_server::api::ROUTES`, user `bob` asks for user `alice`'s memory, session or
//! snapshot and gets 404, a conflict, or an answer that holds nothing of hers; afterwards her
//! data is intact. A route added without a case here fails the test.

#![allow(clippy::unwrap_used)]

mod common;

use coda_server::api::ROUTES;
use common::{http, seed_victim, Reply, Server, Victim};
use serde_json::{json, Value};

const JSON: (&str, &str) = ("content-type", "application/json");

async fn call(addr: &str, method: &str, path: &str, body: Option<Value>) -> Reply {
    // A string is a raw body (an import's JSON Lines); anything else is sent as JSON.
    let text = body.map(|b| match b {
        Value::String(raw) => raw,
        other => other.to_string(),
    });
    http(addr, method, path, &[JSON], text.as_deref()).await
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

/// What bob sends for one route, and whether a 409 is an acceptable answer.
struct Case {
    path: String,
    body: Option<Value>,
    conflict_ok: bool,
}

fn case(method: &str, template: &str, a: &Victim) -> Case {
    let (m, s, snap) = (&a.memory, a.session, &a.snapshot);
    let plain = |path: String| Case {
        path,
        body: None,
        conflict_ok: false,
    };
    let with = |path: String, body: Value| Case {
        path,
        body: Some(body),
        conflict_ok: false,
    };
    match (method, template) {
        ("POST", "/turns") => with(
            "/api/v1/turns?user_id=bob".into(),
            json!({"role": "user", "content": "hi"}),
        ),
        ("GET", "/turns") => plain("/api/v1/turns?user_id=bob".into()),
        ("DELETE", "/turns") => plain("/api/v1/turns?user_id=bob".into()),
        ("POST", "/persist") => plain("/api/v1/persist?user_id=bob".into()),
        ("GET", "/stats") => plain(format!("/api/v1/stats?user_id=bob&session_id={s}")),
        ("POST", "/memories") => with(
            "/api/v1/memories".into(),
            json!({"content": "bob's", "user_id": "bob"}),
        ),
        ("GET", "/memories") => plain("/api/v1/memories?user_id=bob".into()),
        ("POST", "/memories/search") => with(
            "/api/v1/memories/search".into(),
            json!({"query": a.secret, "user_id": "bob", "limit": 50}),
        ),
        ("GET", "/memories/search") => plain(format!(
            "/api/v1/memories/search?q={}&user_id=bob&limit=50&mode=lexical",
            a.secret
        )),
        ("GET", "/memories/{id}") => plain(format!("/api/v1/memories/{m}?user_id=bob")),
        ("GET", "/memories/{id}/history") => {
            plain(format!("/api/v1/memories/{m}/history?user_id=bob"))
        }
        ("PATCH", "/memories/{id}") => with(
            format!("/api/v1/memories/{m}?user_id=bob"),
            json!({"content": "stolen"}),
        ),
        ("DELETE", "/memories/{id}") => plain(format!("/api/v1/memories/{m}?user_id=bob")),
        ("GET", "/snapshots") => plain("/api/v1/snapshots?user_id=bob".into()),
        ("POST", "/snapshots") => with("/api/v1/snapshots".into(), json!({"user_id": "bob"})),
        ("POST", "/snapshots/load") => with(
            "/api/v1/snapshots/load?user_id=bob".into(),
            json!({"location": snap}),
        ),
        ("POST", "/snapshots/prune") => with(
            "/api/v1/snapshots/prune?user_id=bob".into(),
            json!({"keep": 0}),
        ),
        ("GET", "/snapshots/{id}") => plain(format!("/api/v1/snapshots/{snap}?user_id=bob")),
        ("DELETE", "/snapshots/{id}") => plain(format!("/api/v1/snapshots/{snap}?user_id=bob")),
        ("POST", "/snapshots/{id}/save") => {
            plain(format!("/api/v1/snapshots/{snap}/save?user_id=bob"))
        }
        ("POST", "/snapshots/{id}/apply") => {
            plain(format!("/api/v1/snapshots/{snap}/apply?user_id=bob"))
        }
        ("GET", "/snapshots/{a}/diff/{b}") => plain(format!(
            "/api/v1/snapshots/{snap}/diff/current?user_id=bob"
        )),
        ("PUT", "/auto-snapshot") => with("/api/v1/auto-snapshot".into(), json!({"enabled": false})),
        ("GET", "/sessions") => plain("/api/v1/sessions?user_id=bob".into()),
        ("GET", "/sessions/{sid}") => plain(format!("/api/v1/sessions/{s}?user_id=bob")),
        ("DELETE", "/sessions/{sid}") => plain(format!("/api/v1/sessions/{s}?user_id=bob")),
        ("POST", "/sessions/{sid}/turns") => Case {
            path: format!("/api/v1/sessions/{s}/turns"),
            body: Some(json!({"role": "user", "content": "hijack", "user_id": "bob"})),
            conflict_ok: true,
        },
        ("GET", "/sessions/{sid}/turns") => {
            plain(format!("/api/v1/sessions/{s}/turns?user_id=bob"))
        }
        ("DELETE", "/sessions/{sid}/turns") => {
            plain(format!("/api/v1/sessions/{s}/turns?user_id=bob"))
        }
        ("POST", "/sessions/{sid}/persist") => {
            plain(format!("/api/v1/sessions/{s}/persist?user_id=bob"))
        }
        ("GET", "/users") => plain("/api/v1/users".into()),
        ("GET", "/users/{uid}/stats") => plain("/api/v1/users/bob/stats".into()),
        ("GET", "/users/{uid}/export") => plain("/api/v1/users/bob/export".into()),
        ("GET", "/export") => plain("/api/v1/export".into()),
        // Bob's file names her memory's id: it is stored as bob's under another id.
        ("POST", "/import") => with("/api/v1/import".into(), import_claiming(m, "bob")),
        ("DELETE", "/users/{uid}") => plain("/api/v1/users/bob".into()),
        ("GET", "/tenants") => plain("/api/v1/tenants".into()),
        // A backup copies the whole store, for admins; the memory backend has none to copy (409).
        ("POST", "/backup") => Case {
            path: "/api/v1/backup".into(),
            body: Some(json!({"dir": "scope-check"})),
            conflict_ok: true,
        },
        ("GET", "/openapi.json") => plain("/api/v1/openapi.json".into()),
        (method, template) => panic!(
            "no isolation case for {method} {template}: every route needs one in tests/scope_isolation.rs"
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_route_lets_one_user_reach_another_users_data() {
    let backups = tempfile::tempdir().unwrap();
    let extra = format!("[server]\nbackup_dir = \"{}\"\n", backups.path().display());
    let server = Server::start("", &extra).await;
    let addr = server.addr();
    let alice = seed_victim(&addr, &[], "ALICE-SECRET-7731", "alice-session-x").await;
    for (method, template) in ROUTES {
        let case = case(method, template, &alice);
        let r = call(&addr, method, &case.path, case.body.clone()).await;
        let allowed = r.status == 404
            || (200..300).contains(&r.status)
            || (case.conflict_ok && r.status == 409);
        assert!(allowed, "{method} {}: {} {}", case.path, r.status, r.text);
        // Errors may echo bob's own request (an id he typed); answers must hold nothing of hers.
        // `GET /export` is the whole tenant's store by design, every user in it (a tenant token
        // is the unit of access): tests/tenant_isolation.rs proves it holds no other tenant's.
        let whole_tenant = *template == "/openapi.json" || *template == "/export";
        if (200..300).contains(&r.status) && !whole_tenant {
            for marker in alice.markers() {
                assert!(
                    !r.text.contains(marker),
                    "{method} {} answered bob with alice's `{marker}`: {}",
                    case.path,
                    r.text
                );
            }
        }
    }
    // Her memory, session and snapshot are exactly as before.
    let memory = call(
        &addr,
        "GET",
        &format!("/api/v1/memories/{}?user_id=alice", alice.memory),
        None,
    )
    .await;
    assert_eq!(memory.status, 200, "{}", memory.text);
    assert!(memory.json["content"]
        .as_str()
        .unwrap()
        .contains(alice.secret));
    let turns = call(
        &addr,
        "GET",
        &format!("/api/v1/sessions/{}/turns?user_id=alice", alice.session),
        None,
    )
    .await;
    assert_eq!(turns.json["turn_count"], 1, "{}", turns.text);
    let snapshot = call(
        &addr,
        "GET",
        &format!("/api/v1/snapshots/{}?user_id=alice", alice.snapshot),
        None,
    )
    .await;
    assert_eq!(snapshot.status, 200, "{}", snapshot.text);
}
