//! Fuzzing the filter expression parser (issue 14): arbitrary JSON never panics `Filter::parse`
//! or `matches`, and every refusal names a `filter…` path. Property-based (proptest) because the
//! stable toolchain has no libFuzzer; `CODA_FUZZ_CASES` raises the case count for longer runs.
#![allow(clippy::unwrap_used)]

use coda_core::{Filter, Memory, Metadata};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

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

/// Keys a filter gives meaning to, so generated objects often look like filters.
const KEYS: &[&str] = &[
    "and",
    "or",
    "not",
    "eq",
    "ne",
    "gt",
    "gte",
    "lt",
    "lte",
    "in",
    "nin",
    "contains",
    "source_type",
    "importance",
    "timestamp",
    "topics",
    "user_id",
    "x",
    "",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(KEYS).prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        Just(json!(1e308)),
        Just(json!("2025-04-26T12:00:00Z")),
        Just(json!("fact")),
        any::<String>().prop_map(Value::String),
    ]
}

/// Arbitrary JSON, nested up to a few levels, biased towards filter-shaped objects.
fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..4)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn memory(extra: Map<String, Value>) -> Memory {
    let metadata = Metadata {
        source_type: "fact".into(),
        importance: 0.8,
        timestamp: chrono::DateTime::from_timestamp(1_745_668_800, 0).unwrap(),
        topics: vec!["user".into(), "name".into()],
        extra,
    };
    Memory::new(uuid::Uuid::nil(), "x", metadata)
}

/// Parses `value`; an accepted filter is evaluated on `memories`, a refused one must name a path.
fn exercise(value: &Value, memories: &[Memory]) -> Result<(), TestCaseError> {
    match Filter::parse(value) {
        Ok(filter) => {
            for memory in memories {
                let _ = filter.matches(memory);
            }
        }
        Err(e) => {
            let message = e.to_string();
            prop_assert!(
                message.contains("`filter"),
                "error names no path: {message}"
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn arbitrary_json_never_panics_and_errors_name_a_path(
        value in json_value(),
        extra in prop::collection::vec((key(), json_value()), 0..4),
    ) {
        let memories = [memory(Map::new()), memory(extra.into_iter().collect())];
        exercise(&value, &memories)?;
        // The same value under a combinator reaches the nested paths too.
        exercise(&json!({"and": [value.clone()], "or": [value.clone()], "not": value}), &memories)?;
    }

    #[test]
    fn arbitrary_text_parsed_as_json_never_panics(text in any::<String>()) {
        if let Ok(value) = serde_json::from_str::<Value>(&text) {
            exercise(&value, &[memory(Map::new())])?;
        }
    }
}

/// Interesting cases the generator found or that sit on edges, pinned as regressions.
#[test]
fn edge_cases_parse_or_refuse_cleanly() {
    let m = [memory(Map::from_iter([(
        "n".to_owned(),
        json!([1, [2], {"a": null}]),
    )]))];
    for value in [
        json!({}),
        json!({"and": []}),
        json!({"or": []}),
        json!({"not": {}}),
        json!({"importance": {}}),
        json!({"importance": {"gt": 1e308, "lt": 0}}),
        json!({"importance": {"in": 5}}),
        json!({"n": {"contains": [2]}}),
        json!({"n": {"eq": {"a": null}}}),
        json!({"timestamp": {"gte": "not a time"}}),
        json!({"": {"": ""}}),
        json!({"u": {"\u{0}": 1}}),
        json!({"and": [{"or": [{"not": {"not": 3}}]}]}),
        json!(u64::MAX),
    ] {
        exercise(&value, &m).unwrap();
    }
}

/// serde_json caps nesting at 128, so the deepest filter an API caller can send parses without
/// exhausting the stack.
#[test]
fn the_deepest_json_a_caller_can_send_parses() {
    let depth = 120;
    let text = format!("{}{{}}{}", r#"{"not":"#.repeat(depth), "}".repeat(depth));
    let value: Value = serde_json::from_str(&text).unwrap();
    let filter = Filter::parse(&value).unwrap();
    let _ = filter.matches(&memory(Map::new()));
}
