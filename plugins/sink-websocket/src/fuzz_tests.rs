//! Fuzzing the client side of the protocol (issue 14): arbitrary text frames and structured but
//! wrong JSON never panic [`ClientOp::parse`] or the answering of an op, and the connect query's
//! numbers never panic the first replay. Property-based (proptest) because the stable toolchain
//! has no libFuzzer; `CODA_FUZZ_CASES` raises the case count for longer runs.

use std::sync::Arc;

use coda_core::{Dedup, EventBody, EventBus, EventScope};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

use crate::config::{Overflow, WebSocketOptions};
use crate::connection::ConnectParams;
use crate::filter::EventFilter;
use crate::ops::{answer, initial_replay, Subscription};
use crate::protocol::ClientOp;
use crate::queue::Outbox;
use crate::route::connect_params;
use crate::sink::WebSocketHub;

fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("CODA_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Every refusal is one of the protocol's sentences.
fn is_clear(message: &str) -> bool {
    [
        "malformed frame: ",
        "a client frame needs an `op`",
        "invalid `",
        "unknown op `",
    ]
    .iter()
    .any(|start| message.starts_with(start))
}

const FIELDS: &[&str] = &[
    "op",
    "types",
    "user_id",
    "agent_id",
    "session_id",
    "since",
    "from",
    "to",
    "limit",
    "epoch",
];
const OPS: &[&str] = &[
    "subscribe",
    "replay",
    "ping",
    "Ping",
    "",
    "pong",
    "subscribe ",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        Just(json!(u64::MAX)),
        Just(json!(-1)),
        Just(json!("2025-01-01T00:00:00Z")),
        Just(json!("+275760-09-13T00:00:00Z")),
        Just(json!("memory_store")),
        Just(json!("alice")),
        prop::sample::select(OPS).prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((any::<String>(), inner), 0..3)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Frames shaped like ops: a known or odd `op`, and known fields holding values of any type.
fn frame() -> impl Strategy<Value = Value> {
    let field = prop_oneof![
        6 => prop::sample::select(FIELDS).prop_map(str::to_owned),
        1 => any::<String>(),
    ];
    (
        prop::option::of(
            prop_oneof![4 => prop::sample::select(OPS).prop_map(Value::from), 1 => leaf()],
        ),
        prop::collection::vec((field, json_value()), 0..5),
    )
        .prop_map(|(op, fields)| {
            let mut object: Map<String, Value> = fields.into_iter().collect();
            if let Some(op) = op {
                object.insert("op".into(), op);
            }
            Value::Object(object)
        })
}

/// A hub whose ring holds a few events, as a connection would meet it.
fn hub() -> WebSocketHub {
    let bus = EventBus::new(16, 0, None);
    for n in 0..5 {
        let body = EventBody::MemoryPersist {
            turn_count: n,
            memories_added: 0,
        };
        let _ = bus.emit_in(&EventScope::default_user(), &body, Dedup::Skip);
    }
    WebSocketHub::new(
        WebSocketOptions::default(),
        bus.epoch(),
        Arc::clone(bus.replay()),
    )
}

fn check_text(hub: &WebSocketHub, text: &str) -> Result<(), TestCaseError> {
    if let Err(message) = ClientOp::parse(text) {
        prop_assert!(is_clear(&message), "unclear refusal: {message}");
    }
    let outbox = Outbox::new(64, Overflow::DropOldest);
    let mut subscription = Subscription {
        id: 1,
        filter: EventFilter::default(),
    };
    answer(hub, &outbox, &mut subscription, text);
    Ok(())
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn arbitrary_text_frames_are_answered_without_panicking(text in any::<String>()) {
        check_text(&hub(), &text)?;
    }

    #[test]
    fn wrong_but_structured_frames_are_answered_without_panicking(frame in frame()) {
        check_text(&hub(), &frame.to_string())?;
    }

    #[test]
    fn connect_numbers_never_panic_the_first_replay(
        since in prop::option::of(prop_oneof![Just(u64::MAX), Just(u64::MAX - 1), Just(0u64), any::<u64>(), 0..10u64]),
        foreign_epoch in any::<bool>(),
        replay in prop::option::of(prop_oneof![Just(usize::MAX), any::<usize>(), 0..10usize]),
    ) {
        let hub = hub();
        let epoch = foreign_epoch.then(uuid::Uuid::new_v4);
        let params = ConnectParams {
            since: since.map(|since| (since, epoch)),
            replay,
            ..ConnectParams::default()
        };
        let outbox = Outbox::new(64, Overflow::DropOldest);
        initial_replay(&hub, &outbox, &params, None);
    }
}

const QUERY_KEYS: &[&str] = &[
    "types",
    "user_id",
    "agent_id",
    "session_id",
    "since",
    "epoch",
    "replay",
    "batch",
    "tenant",
];

fn query_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(u64::MAX.to_string()),
        Just("18446744073709551616".to_owned()),
        Just("-1".to_owned()),
        Just("memory_store,,bogus".to_owned()),
        Just(uuid::Uuid::nil().to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(config(1000))]

    /// The upgrade query end to end: parsed as the route does, then the first replay.
    #[test]
    fn arbitrary_connect_queries_are_refused_by_field_or_replayed(
        pairs in prop::collection::vec(
            (prop_oneof![4 => prop::sample::select(QUERY_KEYS).prop_map(str::to_owned), 1 => any::<String>()], query_value()),
            0..6,
        ),
    ) {
        let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&query).unwrap_or_default();
        let param = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        match connect_params(&param) {
            Ok(params) => {
                let hub = hub();
                let outbox = Outbox::new(64, Overflow::DropOldest);
                initial_replay(&hub, &outbox, &params, None);
            }
            Err((field, message)) => {
                prop_assert!(QUERY_KEYS.contains(&field), "unknown field {}", field);
                prop_assert!(message.contains(field), "{} does not name {}", message, field);
            }
        }
    }
}

/// Interesting frames, pinned as regressions.
#[test]
fn edge_frames_are_refused_or_answered_cleanly() {
    let hub = hub();
    for text in [
        "",
        "null",
        "[]",
        r#"{"op":null}"#,
        r#"{"op":["ping"]}"#,
        r#"{"op":"ping","op":"replay"}"#,
        r#"{"op":"ping","x":1}"#,
        r#"{"op":"replay","since":18446744073709551615}"#,
        r#"{"op":"replay","since":18446744073709551616}"#,
        r#"{"op":"replay","since":-1}"#,
        r#"{"op":"replay","limit":1e400}"#,
        r#"{"op":"replay","from":"+275760-09-13T00:00:00Z","to":"1970-01-01T00:00:00Z"}"#,
        r#"{"op":"replay","types":[""," ","memory_store"]}"#,
        r#"{"op":"subscribe","types":[],"user_id":""}"#,
        r#"{"op":"subscribe","types":[],"user_id":"é"}"#,
        r#"{"op":"subscribe","types":"memory_store"}"#,
    ] {
        check_text(&hub, text).unwrap_or_else(|e| panic!("{text}: {e}"));
    }
}

/// Found by `connect_numbers_never_panic_the_first_replay`: `?since=18446744073709551615`
/// overflowed `since + 1` and panicked the connection (debug builds).
#[test]
fn the_largest_since_resumes_without_overflow() {
    let hub = hub();
    for epoch in [None, Some(hub.epoch)] {
        let params = ConnectParams {
            since: Some((u64::MAX, epoch)),
            ..ConnectParams::default()
        };
        let outbox = Outbox::new(64, Overflow::DropOldest);
        assert_eq!(initial_replay(&hub, &outbox, &params, None), u64::MAX);
    }
}
