//! Fuzzing the record decoder (issue 14): arbitrary payloads, payloads behind every change kind,
//! and truncations and bit flips of real records never panic [`decode`]; arbitrary records
//! round-trip. Property-based (proptest) because the stable toolchain has no libFuzzer;
//! `CODA_FUZZ_CASES` raises the case count for longer runs.

use proptest::prelude::*;

use super::*;

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

/// A decode must return, and a refusal must say something.
fn check(payload: &[u8]) -> Result<(), TestCaseError> {
    if let Err(message) = decode(payload) {
        prop_assert!(!message.is_empty());
    }
    Ok(())
}

/// The payload of a record's frame.
fn payload_of(change: &Change) -> Vec<u8> {
    let mut framed = Vec::new();
    encode_change(change, &mut framed).unwrap_or_default();
    framed.split_off(FRAME_HEADER.min(framed.len()))
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[a-z0-9._:@-]{1,12}", any::<String>()]
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ]
}

fn record() -> impl Strategy<Value = MemoryRecord> {
    let scope = (
        text(),
        text(),
        prop::option::of(text()),
        prop::option::of(text()),
    );
    let body = (
        any::<u128>(),
        text(),
        text(),
        any::<f64>(),
        -8_000_000_000_000i64..8_000_000_000_000,
        0u32..1_000_000_000,
        prop::collection::vec(text(), 0..4),
        prop::collection::vec((text(), json_leaf()), 0..3),
        prop::collection::vec(any::<f32>(), 0..9),
    );
    let lifecycle = (
        prop::option::of(text()),
        prop::option::of(any::<u128>()),
        prop::collection::vec(any::<u64>(), 0..3),
        0u8..4,
    );
    (scope, body, lifecycle).prop_map(
        |(
            (tenant, user, agent, session),
            (id, content, source_type, importance, secs, nanos, topics, extra, embedding),
            (slot, superseded, turns, by),
        )| {
            let metadata = Metadata {
                source_type,
                importance,
                timestamp: DateTime::from_timestamp(secs, nanos).unwrap_or_default(),
                topics,
                extra: extra.into_iter().collect(),
            };
            let mut memory = Memory::new(Uuid::from_u128(id), content, metadata);
            (memory.tenant, memory.user_id) = (tenant, user);
            (memory.agent_id, memory.session_id) = (agent, session);
            memory.slot = slot;
            memory.superseded_by = superseded.map(Uuid::from_u128);
            memory.source_turns = turns;
            memory.changed_by = By::from_u8(by).unwrap_or(By::Api);
            MemoryRecord { memory, embedding }
        },
    )
}

/// Equal, reading NaN as equal to itself (the format keeps the bits).
fn same(a: &MemoryRecord, b: &MemoryRecord) -> bool {
    let bits = |r: &MemoryRecord| {
        (
            r.memory.metadata.importance.to_bits(),
            r.embedding.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
        )
    };
    let strip = |r: &MemoryRecord| {
        let mut r = r.clone();
        r.memory.metadata.importance = 0.0;
        r.embedding.clear();
        r
    };
    bits(a) == bits(b) && strip(a) == strip(b)
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn arbitrary_payloads_never_panic(payload in prop::collection::vec(any::<u8>(), 0..256)) {
        check(&payload)?;
    }

    #[test]
    fn every_kind_with_arbitrary_bytes_never_panics(
        kind in 0u8..20,
        rest in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut payload = vec![kind];
        payload.extend(rest);
        check(&payload)?;
    }

    #[test]
    fn huge_counts_and_lengths_are_refused_not_allocated(
        kind in prop::sample::select(vec![INSERT_UNSCOPED, REPLACE_ALL_UNSCOPED, REPLACE_USER, PERSIST, PERSIST_V2]),
        count in prop_oneof![Just(u32::MAX), Just(u32::MAX - 1), any::<u32>()],
    ) {
        let mut payload = vec![kind];
        payload.extend_from_slice(&count.to_le_bytes());
        payload.extend_from_slice(&count.to_le_bytes());
        payload.extend_from_slice(&[0xFF; 24]);
        prop_assert!(decode(&payload).is_err());
    }
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn arbitrary_records_round_trip(record in record()) {
        let payload = payload_of(&Change::Insert(record.clone()));
        match decode(&payload) {
            Ok(Decoded::Change(Change::Insert(back))) => prop_assert!(same(&back, &record)),
            Ok(_) => prop_assert!(false, "decoded as another kind"),
            Err(e) => prop_assert!(false, "{}", e),
        }
    }

    #[test]
    fn truncated_or_flipped_records_never_panic(
        records in prop::collection::vec(record(), 1..3),
        cut in any::<prop::sample::Index>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..4),
    ) {
        let owner = Owner::new("default", "alice");
        for change in [
            Change::Update(records[0].clone()),
            Change::ReplaceUser { owner, records: records.clone() },
        ] {
            let payload = payload_of(&change);
            // A record cut short is always refused.
            let len = cut.index(payload.len());
            prop_assert!(decode(&payload[..len]).is_err(), "a cut at {} decoded", len);
            let mut flipped = payload.clone();
            for (at, bit) in &flips {
                flipped[at.index(payload.len())] ^= 1 << bit;
            }
            check(&flipped)?;
        }
    }
}

/// Interesting payloads, pinned as regressions.
#[test]
fn edge_payloads_are_refused_cleanly() {
    let mut huge_embedding = vec![INSERT_UNSCOPED];
    huge_embedding.extend_from_slice(&[0; 16]); // id
    huge_embedding.extend_from_slice(&[0; 8]); // content, source_type: empty
    huge_embedding.extend_from_slice(&[0; 8 + 8 + 4]); // importance, secs, nanos
    huge_embedding.extend_from_slice(&[0; 8]); // no topics, no extra
    huge_embedding.extend_from_slice(&u32::MAX.to_le_bytes()); // dims
    let mut bad_time = vec![DELETE_V2];
    bad_time.extend_from_slice(&[0; 16]);
    bad_time.push(0);
    bad_time.extend_from_slice(&i64::MAX.to_le_bytes());
    bad_time.extend_from_slice(&u32::MAX.to_le_bytes());
    for payload in [
        &[][..],
        &[0],
        &[HISTORY],
        &[SESSION, b'{'],
        &[DELETE_V2],
        &[ERASE_USER, 0xFF, 0xFF, 0xFF, 0xFF],
        &huge_embedding,
        &bad_time,
    ] {
        assert!(decode(payload).is_err(), "{payload:?} decoded");
    }
}
