//! Per-tenant rates (SPEC §9) against a real server: a tenant over its `rate_per_s` gets 429 with
//! `Retry-After`, while another tenant's requests, sent during the burst, all succeed promptly;
//! the bucket refills; admins are not limited.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{http, Server, DEADLINE};

const CONFIG: &str = "[server]\ntokens = [\"root-token\"]\n\
     [[server.tenants]]\nid = \"acme\"\ntokens = [\"acme-token\"]\nrate_per_s = 5\n\
     [[server.tenants]]\nid = \"beta\"\ntokens = [\"beta-token\"]\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_noisy_tenant_is_limited_and_never_slows_another() {
    let server = Server::start("", CONFIG).await;
    let addr = server.addr();

    // Acme's burst, all at once.
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..60 {
        let addr = addr.clone();
        burst.spawn(async move {
            http(
                &addr,
                "GET",
                "/api/v1/stats",
                &[("authorization", "Bearer acme-token")],
                None,
            )
            .await
        });
    }
    // Beta, meanwhile: every request served, none slow.
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let start = Instant::now();
        let r = http(
            &addr,
            "GET",
            "/api/v1/stats",
            &[("authorization", "Bearer beta-token")],
            None,
        )
        .await;
        slowest = slowest.max(start.elapsed());
        assert_eq!(r.status, 200, "{}", r.text);
    }
    assert!(slowest < Duration::from_secs(2), "beta waited {slowest:?}");

    let mut ok = 0;
    let mut limited = 0;
    while let Some(r) = burst.join_next().await {
        let r = r.unwrap();
        match r.status {
            200 => ok += 1,
            429 => {
                limited += 1;
                assert_eq!(r.json["error"]["code"], "rate_limited", "{}", r.text);
                let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
                assert!(wait >= 1, "{wait}");
            }
            other => panic!("{other}: {}", r.text),
        }
    }
    // A full bucket holds 2 × rate_per_s; a few more may refill while the burst runs.
    assert!(ok >= 10 && limited > 0, "{ok} served, {limited} limited");
    assert!(ok < 60, "{ok} of 60 served: no limit?");

    // Admins are not limited, even on acme.
    let admin = http(
        &addr,
        "GET",
        "/api/v1/stats",
        &[
            ("authorization", "Bearer root-token"),
            ("x-coda-tenant", "acme"),
        ],
        None,
    )
    .await;
    assert_eq!(admin.status, 200, "{}", admin.text);

    // The bucket refills.
    let deadline = Instant::now() + DEADLINE;
    loop {
        let r = http(
            &addr,
            "GET",
            "/api/v1/stats",
            &[("authorization", "Bearer acme-token")],
            None,
        )
        .await;
        if r.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "acme never admitted again: {}",
            r.text
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_over_max_memories_is_refused_whole() {
    let config = "[[server.tenants]]\nid = \"acme\"\ntokens = [\"acme-token\"]\nmax_memories = 2\n\
                  [[server.tenants]]\nid = \"beta\"\ntokens = [\"beta-token\"]\n";
    let server = Server::start("", config).await;
    let addr = server.addr();
    let send =
        |token: &'static str, method: &'static str, path: &'static str, body: &'static str| {
            let addr = addr.clone();
            async move {
                let auth = format!("Bearer {token}");
                let headers = [
                    ("authorization", auth.as_str()),
                    ("content-type", "application/json"),
                ];
                http(&addr, method, path, &headers, Some(body)).await
            }
        };
    let count = |token: &'static str| {
        let addr = addr.clone();
        async move {
            let auth = format!("Bearer {token}");
            let r = http(
                &addr,
                "GET",
                "/api/v1/memories?limit=100",
                &[("authorization", &auth)],
                None,
            )
            .await;
            r.json["memories"].as_array().map_or(0, Vec::len)
        }
    };
    for content in [r#"{"content":"one"}"#, r#"{"content":"two"}"#] {
        let r = send("acme-token", "POST", "/api/v1/memories", content).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let over = send(
        "acme-token",
        "POST",
        "/api/v1/memories",
        r#"{"content":"three"}"#,
    )
    .await;
    assert_eq!(over.status, 422, "{}", over.text);
    assert_eq!(
        over.json["error"]["code"], "quota_exceeded",
        "{}",
        over.text
    );
    assert_eq!(count("acme-token").await, 2);

    // A persist that would add memories past the quota writes none of them.
    let turn = send(
        "acme-token",
        "POST",
        "/api/v1/turns",
        r#"{"role":"user","content":"My name is Ada and I live in Paris. I love tea."}"#,
    )
    .await;
    assert_eq!(turn.status, 201, "{}", turn.text);
    let persist = send("acme-token", "POST", "/api/v1/persist", "").await;
    assert_eq!(persist.status, 422, "{}", persist.text);
    assert_eq!(persist.json["error"]["code"], "quota_exceeded");
    assert_eq!(count("acme-token").await, 2);

    // Another tenant's quota is its own.
    for i in 0..3 {
        // Distinct facts: a restatement would store nothing (SPEC §10).
        let body = [
            r#"{"content":"beta fact one"}"#,
            r#"{"content":"beta fact two"}"#,
            r#"{"content":"beta fact three"}"#,
        ][i];
        let r = send("beta-token", "POST", "/api/v1/memories", body).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    assert_eq!(count("beta-token").await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_never_overshoot_the_quota() {
    let config = "[[server.tenants]]\nid = \"acme\"\ntokens = [\"acme-token\"]\nmax_memories = 5\n";
    let server = Server::start("", config).await;
    let addr = server.addr();
    let mut writes = tokio::task::JoinSet::new();
    for i in 0..20 {
        let addr = addr.clone();
        writes.spawn(async move {
            let body = format!(r#"{{"content":"note {i}"}}"#);
            let headers = [
                ("authorization", "Bearer acme-token"),
                ("content-type", "application/json"),
            ];
            http(&addr, "POST", "/api/v1/memories", &headers, Some(&body))
                .await
                .status
        });
    }
    let mut statuses = Vec::new();
    while let Some(status) = writes.join_next().await {
        statuses.push(status.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        5,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 422),
        "{statuses:?}"
    );
}
