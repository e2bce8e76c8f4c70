//! The WebSocket protocol (SPEC §5) against a real server, with tokio-tungstenite clients.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{close_code, next, round_trip, send, seqs, try_ws, ws, Server, DEADLINE};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn welcome_replay_then_live_events_in_order() {
    let server = Server::start("replay_on_connect = 3", "").await;
    server.turns(5);
    let (mut client, welcome) = ws(&server.addr(), "").await;
    assert_eq!(welcome["seq"], 5);
    assert_eq!(welcome["epoch"], server.manager().bus().epoch().to_string());
    assert_eq!(seqs(&mut client, 3).await, [3, 4, 5]);
    server.turns(3);
    assert_eq!(seqs(&mut client, 3).await, [6, 7, 8]);
    let (mut fresh, _) = ws(&server.addr(), "replay=0").await;
    server.turns(1);
    let event = next(&mut fresh).await;
    assert_eq!(
        (event["seq"].as_u64(), event["type"].as_str()),
        (Some(9), Some("conversation_turn"))
    );
    assert!(event["event_id"].is_string() && event["timestamp"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_and_origin_are_checked_before_upgrade() {
    let server = Server::start(
        "",
        "[server]\ntokens = [\"s3cret\"]\nallowed_origins = [\"http://good\"]",
    )
    .await;
    let addr = server.addr();
    assert_eq!(try_ws(&addr, "", &[]).await.err(), Some(401));
    assert_eq!(try_ws(&addr, "token=wrong", &[]).await.err(), Some(401));
    assert_eq!(
        try_ws(&addr, "", &[("authorization", "Bearer nope")])
            .await
            .err(),
        Some(401)
    );
    assert!(try_ws(&addr, "token=s3cret", &[]).await.is_ok());
    assert!(try_ws(&addr, "", &[("authorization", "Bearer s3cret")])
        .await
        .is_ok());
    let evil = [
        ("authorization", "Bearer s3cret"),
        ("origin", "http://evil"),
    ];
    assert_eq!(try_ws(&addr, "", &evil).await.err(), Some(403));
    let good = [
        ("authorization", "Bearer s3cret"),
        ("origin", "http://good"),
    ];
    assert!(try_ws(&addr, "", &good).await.is_ok());
    // Bad query values are refused before the upgrade too, naming the field.
    assert_eq!(
        try_ws(&addr, "token=s3cret&types=bogus", &[]).await.err(),
        Some(422)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_refuses_with_503() {
    let server = Server::start("max_connections = 2", "").await;
    let addr = server.addr();
    let (first, _) = ws(&addr, "").await;
    let (_second, _) = ws(&addr, "").await;
    assert_eq!(try_ws(&addr, "", &[]).await.err(), Some(503));
    drop(first);
    // The slot frees once the server notices the close.
    let deadline = Instant::now() + DEADLINE;
    loop {
        match try_ws(&addr, "", &[]).await {
            Ok(_) => break,
            Err(503) if Instant::now() < deadline => tokio::task::yield_now().await,
            Err(status) => panic!("still refused: {status}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_get_error_frames_and_the_connection_stays_open() {
    let server = Server::start("max_message_bytes = 1024", "").await;
    let (mut client, _) = ws(&server.addr(), "replay=0").await;
    for frame in [
        "not json",
        r#"{"op":"dance"}"#,
        r#"{"no_op":1}"#,
        r#"{"op":"subscribe","types":["bogus"]}"#,
        r#"{"op":"replay","since":"x"}"#,
    ] {
        send(&mut client, frame).await;
        let reply = next(&mut client).await;
        assert_eq!(reply["type"], "error", "{frame}: {reply}");
        assert!(reply["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    round_trip(&mut client).await;
    server.turns(1);
    assert_eq!(seqs(&mut client, 1).await, [1]);
    // A frame over max_message_bytes closes with 1009.
    send(
        &mut client,
        &format!(r#"{{"op":"ping","pad":"{}"}}"#, "x".repeat(2000)),
    )
    .await;
    assert_eq!(close_code(&mut client).await, 1009);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_has_no_gap_and_no_duplicate_while_events_flow() {
    let server = Server::start(
        "replay_on_connect = 0",
        "[events]\nreplay_capacity = 100000",
    )
    .await;
    let addr = server.addr();
    let epoch = server.manager().bus().epoch();
    let manager = std::sync::Arc::clone(server.manager());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let emitter = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && i < 50_000 {
                manager
                    .add_turn(coda::Role::User, &format!("turn {i}"))
                    .unwrap();
                i += 1;
                if i % 64 == 0 {
                    std::thread::yield_now();
                }
            }
        })
    };
    let (mut client, _) = ws(&addr, "replay=0").await;
    let mut seen = seqs(&mut client, 50).await;
    // Reconnect three times mid-stream, each time resuming after the last event seen.
    for _ in 0..3 {
        drop(client);
        let last = *seen.last().unwrap();
        client = ws(&addr, &format!("since={last}&epoch={epoch}")).await.0;
        seen.extend(seqs(&mut client, 200).await);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    emitter.join().unwrap();
    let first = seen[0];
    let expected: Vec<u64> = (first..first + seen.len() as u64).collect();
    assert_eq!(
        seen, expected,
        "every event exactly once, in order, across reconnects"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_gap_when_the_ring_has_moved_on_or_the_epoch_changed() {
    let server = Server::start("", "[events]\nreplay_capacity = 5").await;
    let addr = server.addr();
    let epoch = server.manager().bus().epoch();
    server.turns(20);
    let (mut client, _) = ws(&addr, &format!("since=3&epoch={epoch}")).await;
    let gap = next(&mut client).await;
    assert_eq!(
        gap,
        serde_json::json!({"type": "replay_gap", "from": 4, "to": 15})
    );
    assert_eq!(seqs(&mut client, 5).await, [16, 17, 18, 19, 20]);

    let other = uuid::Uuid::new_v4();
    let (mut client, _) = ws(&addr, &format!("since=18&epoch={other}")).await;
    let gap = next(&mut client).await;
    assert_eq!(
        (
            gap["type"].as_str(),
            gap["from"].as_u64(),
            gap["to"].as_u64()
        ),
        (Some("replay_gap"), Some(1), Some(15))
    );
    assert_eq!(seqs(&mut client, 5).await, [16, 17, 18, 19, 20]);

    // Resuming from the present: nothing replayed, no gap, then live events.
    let (mut client, _) = ws(&addr, &format!("since=20&epoch={epoch}")).await;
    server.turns(1);
    assert_eq!(next(&mut client).await["seq"], 21);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn type_filters_subscribe_and_replay_ops() {
    let server = Server::start("", "").await;
    let addr = server.addr();
    let manager = server.manager();
    let (mut stores, _) = ws(&addr, "types=memory_store,memory_delete&replay=0").await;
    let (mut all, _) = ws(&addr, "replay=0").await;
    server.turns(2);
    let memory = manager
        .add_memory(coda::NewMemory::new("The user likes tea.", "preference"))
        .unwrap();
    manager.delete_memory(memory.id).unwrap();
    let got: Vec<Value> = vec![next(&mut stores).await, next(&mut stores).await];
    assert_eq!(got[0]["type"], "memory_store");
    assert_eq!(got[1]["type"], "memory_delete");
    assert_eq!(seqs(&mut all, 4).await, [1, 2, 3, 4]);

    // Subscribe narrows (and `[]` widens) what arrives from now on.
    send(&mut all, r#"{"op":"subscribe","types":["memory_clear"]}"#).await;
    round_trip(&mut all).await;
    server.turns(1);
    manager.clear_short_term();
    let event = next(&mut all).await;
    assert_eq!(
        (event["type"].as_str(), event["seq"].as_u64()),
        (Some("memory_clear"), Some(6))
    );
    send(&mut all, r#"{"op":"subscribe","types":[]}"#).await;
    round_trip(&mut all).await;
    server.turns(1);
    assert_eq!(next(&mut all).await["seq"], 7);

    // Replay by seq, and by types and time range.
    send(&mut all, r#"{"op":"replay","since":5}"#).await;
    assert_eq!(seqs(&mut all, 2).await, [6, 7]);
    let mid = chrono::Utc::now();
    let time = mid.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    server.turns(2);
    assert_eq!(seqs(&mut all, 2).await, [8, 9]);
    send(
        &mut all,
        r#"{"op":"replay","types":["conversation_turn"],"limit":2}"#,
    )
    .await;
    assert_eq!(seqs(&mut all, 2).await, [1, 2]);
    let ranged = format!(r#"{{"op":"replay","types":["conversation_turn"],"from":"{time}"}}"#);
    send(&mut all, &ranged).await;
    assert_eq!(seqs(&mut all, 2).await, [8, 9]);
    round_trip(&mut all).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_frames_only_when_asked() {
    let server = Server::start("replay_on_connect = 50", "").await;
    server.turns(20);
    let (mut batched, _) = ws(&server.addr(), "batch=1").await;
    let frame = next(&mut batched).await;
    assert_eq!(frame["type"], "batch");
    let events = frame["events"].as_array().unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=20).collect::<Vec<_>>());
    let (mut plain, _) = ws(&server.addr(), "").await;
    assert_eq!(next(&mut plain).await["seq"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_clients_each_get_every_event_in_order() {
    let server = Server::start("replay_on_connect = 0", "").await;
    let mut clients = Vec::new();
    for _ in 0..100 {
        clients.push(ws(&server.addr(), "").await.0);
    }
    let manager = std::sync::Arc::clone(server.manager());
    let emitter = std::thread::spawn(move || {
        for i in 0..300 {
            manager
                .add_turn(coda::Role::User, &format!("turn {i}"))
                .unwrap();
        }
    });
    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut client| tokio::spawn(async move { seqs(&mut client, 300).await }))
        .collect();
    emitter.join().unwrap();
    for reader in readers {
        assert_eq!(reader.await.unwrap(), (1..=300).collect::<Vec<_>>());
    }
}

/// Emits `total` padded turns from a thread, never more than `window` ahead of what the
/// reading client has received (`progress`), so only a client that stops reading falls behind.
fn paced_emitter(
    manager: std::sync::Arc<coda::MemoryManager>,
    total: u64,
    window: u64,
    progress: std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let pad = "x".repeat(4000);
        for i in 1..=total {
            let deadline = Instant::now() + DEADLINE;
            while progress.load(std::sync::atomic::Ordering::Acquire) + window < i {
                assert!(
                    Instant::now() < deadline,
                    "the reader stopped making progress"
                );
                std::thread::sleep(Duration::from_micros(200));
            }
            manager
                .add_turn(coda::Role::User, &format!("{i} {pad}"))
                .unwrap();
        }
    })
}

/// Reads `total` events, publishing progress for [`paced_emitter`].
async fn read_all(
    client: &mut common::Ws,
    total: u64,
    progress: &std::sync::atomic::AtomicU64,
) -> Vec<u64> {
    let mut got = Vec::with_capacity(total as usize);
    while (got.len() as u64) < total {
        got.extend(seqs(client, 1).await);
        progress.store(got.len() as u64, std::sync::atomic::Ordering::Release);
    }
    got
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_does_not_hold_up_others() {
    let server = Server::start(
        "queue = 64\nreplay_on_connect = 0",
        "[events]\nreplay_capacity = 100",
    )
    .await;
    let addr = server.addr();
    let (_stalled, _) = ws(&addr, "").await; // never read again
    let (mut reader, _) = ws(&addr, "").await;
    let before = rss_bytes();
    // ~160 MB of events in all; the reader keeps up, the stalled client must not buffer them.
    let total = 40_000u64;
    let progress = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let emitter = paced_emitter(
        std::sync::Arc::clone(server.manager()),
        total,
        32,
        progress.clone(),
    );
    let got = read_all(&mut reader, total, &progress).await;
    emitter.join().unwrap();
    assert_eq!(got, (1..=total).collect::<Vec<_>>());
    let grown = rss_bytes().saturating_sub(before);
    assert!(grown < 64 << 20, "server memory grew by {} MB", grown >> 20);
    let stats = server.handle.manager().bus().stats();
    assert_eq!(stats.published.iter().sum::<u64>(), total);
    let metrics = common::http(&addr, "GET", "/metrics", &[], None).await.text;
    let dropped: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("coda_websocket_events_dropped_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        dropped > 0,
        "the stalled client's queue overflowed and dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overflow_disconnect_closes_only_the_slow_client_with_1008() {
    let server = Server::start(
        "queue = 64\noverflow = \"disconnect\"\nreplay_on_connect = 0",
        "",
    )
    .await;
    let addr = server.addr();
    let (mut slow, _) = ws(&addr, "").await;
    let (mut reader, _) = ws(&addr, "").await;
    let total = 20_000u64;
    let progress = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let emitter = paced_emitter(
        std::sync::Arc::clone(server.manager()),
        total,
        32,
        progress.clone(),
    );
    let got = read_all(&mut reader, total, &progress).await;
    emitter.join().unwrap();
    assert_eq!(got, (1..=total).collect::<Vec<_>>());
    // The slow client gets some events, then the 1008 close.
    let code = loop {
        match tokio::time::timeout(DEADLINE, futures_util::StreamExt::next(&mut slow))
            .await
            .unwrap()
        {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(Some(frame)))) => {
                break u16::from(frame.code)
            }
            Some(Ok(_)) => continue,
            other => panic!("expected a close, got {other:?}"),
        }
    };
    assert_eq!(code, 1008);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagged_reports_what_was_dropped() {
    let server = Server::start("queue = 4\nreplay_on_connect = 0", "").await;
    let (mut client, _) = ws(&server.addr(), "").await;
    let hub_full = std::sync::Arc::clone(server.manager());
    // Stall this client's writer by not reading while a burst far larger than socket buffers
    // and the queue goes out; then read and expect a lagged notice before the survivors.
    let pad = "z".repeat(16_000);
    for i in 0..2_000 {
        hub_full
            .add_turn(coda::Role::User, &format!("{i} {pad}"))
            .unwrap();
    }
    let mut lag = None;
    let mut last = 0;
    while last < 2_000 {
        let frame = next(&mut client).await;
        if frame["type"] == "lagged" {
            lag = Some(frame);
            continue;
        }
        let seq = frame["seq"].as_u64().unwrap();
        assert!(seq > last, "in order");
        last = seq;
    }
    let lag = lag.expect("a lagged frame");
    assert!(lag["dropped"].as_u64().unwrap() > 0);
    assert!(lag["from"].as_u64().unwrap() <= lag["to"].as_u64().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_clients_are_closed_after_three_ping_intervals() {
    let server = Server::start("ping_interval_s = 1\nreplay_on_connect = 0", "").await;
    let (mut silent, _) = ws(&server.addr(), "").await;
    let started = Instant::now();
    // Not reading means never answering the server's pings.
    let hub_gone = async {
        loop {
            let metrics = common::http(&server.addr(), "GET", "/metrics", &[], None)
                .await
                .text;
            if metrics.lines().any(|l| l == "coda_websocket_connections 0") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(DEADLINE, hub_gone)
        .await
        .expect("the silent client was closed");
    assert!(started.elapsed() >= Duration::from_secs(3));
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        futures_util::StreamExt::next(&mut silent),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_websockets_with_1001_after_queued_events() {
    let server = Server::start("replay_on_connect = 0", "").await;
    let (mut client, _) = ws(&server.addr(), "").await;
    server.turns(10);
    let common::Server { handle, dir } = server;
    handle.shutdown().await.unwrap();
    assert_eq!(seqs(&mut client, 10).await, (1..=10).collect::<Vec<_>>());
    assert_eq!(close_code(&mut client).await, 1001);
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_overflow_important_events_survive_and_chatter_goes_first() {
    let server = Server::start("queue = 16\nreplay_on_connect = 0", "").await;
    let (mut client, _) = ws(&server.addr(), "").await;
    let manager = server.manager();
    // While the client does not read, a flood of turns (low priority) carries ten clears
    // (dropped last): the queue keeps the clears.
    let pad = "c".repeat(16_000);
    let mut clears = Vec::new();
    for i in 0..2_000 {
        manager
            .add_turn(coda::Role::User, &format!("{i} {pad}"))
            .unwrap();
        if i % 200 == 199 {
            manager.clear_short_term();
            clears.push(manager.bus().latest_seq());
        }
    }
    let last = manager.bus().latest_seq();
    let mut seen_clears = Vec::new();
    let mut lagged = 0;
    let mut previous = 0;
    while previous < last {
        let frame = next(&mut client).await;
        match frame["type"].as_str() {
            Some("lagged") => lagged += frame["dropped"].as_u64().unwrap(),
            Some("memory_clear") => seen_clears.push(frame["seq"].as_u64().unwrap()),
            _ => {}
        }
        if let Some(seq) = frame["seq"].as_u64() {
            assert!(seq > previous, "in order, at most once");
            previous = seq;
        }
    }
    assert!(lagged > 0, "turns were dropped");
    assert_eq!(seen_clears, clears, "every clear arrived");
}
