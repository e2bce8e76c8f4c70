//! Round trips and damage handling of the log format.

use super::*;

fn sample() -> MemoryRecord {
    let mut extra = Map::new();
    extra.insert("user_id".into(), Value::from("u1"));
    let metadata = Metadata {
        source_type: "fact".into(),
        importance: 0.75,
        timestamp: DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap_or_default(),
        topics: vec!["name".into(), "user".into()],
        extra,
    };
    let mut memory = Memory::new(Uuid::new_v4(), "The user's name is Alice — é", metadata);
    memory.user_id = "alice".into();
    memory.session_id = Some("chat-1".into());
    MemoryRecord {
        memory,
        embedding: vec![0.5, -0.25, 1.0e-7, 0.0],
    }
}

fn session_turn() -> coda_core::SessionChange {
    let start = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
    let owner = Owner::new("default", "alice");
    let mut info = coda_core::SessionInfo::new(&owner, "chat-1", None, start);
    info.turn_count = 1;
    let turn = coda_core::Turn {
        role: coda_core::Role::User,
        content: "hello".into(),
        turn_index: 0,
        timestamp: start,
        name: None,
    };
    coda_core::SessionChange::Turn {
        info,
        turn,
        window: 50,
    }
}

#[test]
fn unscoped_records_of_old_logs_read_as_user_default() {
    // A version-1 insert: kind 1, then the record without scope fields.
    let record = sample();
    let mut scoped = Vec::new();
    encode_change(&Change::Insert(record.clone()), &mut scoped).expect("fits");
    let body = &payload(&scoped)[1..];
    // Skip tenant, user, agent, session: two strings and two optional strings.
    let mut r = Reader(body);
    r.str().expect("tenant");
    r.str().expect("user");
    r.opt_str().expect("agent");
    r.opt_str().expect("session");
    let mut old = vec![INSERT_UNSCOPED];
    // Without the trailing lifecycle (an empty one: a zero length).
    old.extend_from_slice(&r.0[..r.0.len() - 4]);
    let Change::Insert(back) = decode_change(&old).expect("decodes") else {
        panic!("an insert");
    };
    assert_eq!(back.memory.user_id, "default");
    assert_eq!(back.memory.session_id, None);
    assert_eq!(back.memory.content, record.memory.content);
}

fn payload(framed: &[u8]) -> &[u8] {
    &framed[FRAME_HEADER..]
}

#[test]
fn every_change_round_trips() {
    let record = sample();
    for change in [
        Change::Insert(record.clone()),
        Change::Update(record.clone()),
        Change::Delete {
            id: record.memory.id,
            by: By::Expiry,
            at: DateTime::from_timestamp(1_700_000_001, 5_000).unwrap_or_default(),
        },
        Change::Insert(with_lifecycle()),
        Change::Update(with_lifecycle()),
        Change::ReplaceUser {
            owner: Owner::of(&record.memory),
            records: vec![record.clone(), sample()],
        },
        Change::ReplaceUser {
            owner: Owner::default_user(),
            records: Vec::new(),
        },
        Change::EraseUser(Owner::new("default", "alice")),
        Change::Persist {
            records: vec![record.clone()],
            session: coda_core::SessionState {
                info: match session_turn() {
                    coda_core::SessionChange::Turn { info, .. } => info,
                    _ => unreachable!("a turn"),
                },
                turns: Default::default(),
            },
        },
        Change::Session(session_turn()),
    ] {
        let mut out = Vec::new();
        encode_change(&change, &mut out).expect("fits");
        let mut head = [0u8; FRAME_HEADER];
        head.copy_from_slice(&out[..FRAME_HEADER]);
        let (len, sum) = parse_frame_header(&head).expect("magic");
        assert_eq!(len as usize, out.len() - FRAME_HEADER);
        assert_eq!(sum, checksum(payload(&out)));
        assert_eq!(decode_change(payload(&out)).expect("decodes"), change);
    }
}

fn with_lifecycle() -> MemoryRecord {
    let mut record = sample();
    let memory = &mut record.memory;
    memory.slot = Some("home_city".into());
    memory.superseded_by = Some(Uuid::new_v4());
    memory.expires_at = DateTime::from_timestamp(1_800_000_000, 0);
    memory.updated_at = DateTime::from_timestamp(1_700_000_100, 1_000);
    memory.source_turns = vec![2, 3];
    memory.changed_by = By::Persist;
    record
}

#[test]
fn a_history_round_trips() {
    let record = with_lifecycle();
    let versions = vec![coda_core::Version {
        version: 1,
        action: coda_core::Action::Add,
        at: DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
        by: By::Persist,
        memory: record.memory.clone(),
    }];
    let mut out = Vec::new();
    encode_history(&versions, &mut out).expect("fits");
    let Ok(Decoded::History(back)) = decode(payload(&out)) else {
        panic!("a history record");
    };
    let mut expected = versions;
    // `changed_by` is not serialised (the table restores it from `by`), and JSON times are
    // microseconds.
    expected[0].memory.changed_by = By::Api;
    use chrono::SubsecRound;
    let ts = &mut expected[0].memory.metadata.timestamp;
    *ts = ts.trunc_subsecs(6);
    assert_eq!(back, expected);
}

#[test]
fn header_round_trips() {
    let header = Header {
        fingerprint: "hashing-v1/384".into(),
        dims: 384,
    };
    let bytes = header.encode();
    assert_eq!(bytes[..8], FILE_MAGIC);
    let decoded = Header::decode(&bytes[8 + FRAME_HEADER..]).expect("decodes");
    assert_eq!(decoded, header);
}

#[test]
fn truncated_payloads_are_errors_not_panics() {
    let mut out = Vec::new();
    encode_change(&Change::Insert(sample()), &mut out).expect("fits");
    let payload = payload(&out);
    for cut in 0..payload.len() {
        assert!(decode_change(&payload[..cut]).is_err(), "cut at {cut}");
    }
}

#[test]
fn decode_into_moves_a_writes_embedding_into_the_buffer_and_nothing_else() {
    let record = sample();
    let framed = |change: &Change| {
        let mut out = Vec::new();
        encode_change(change, &mut out).expect("fits");
        out
    };
    let update = framed(&Change::Update(record.clone()));
    let mut vectors = vec![9.0];
    let (decoded, split) = decode_into(payload(&update), &mut vectors).expect("decodes");
    assert!(split);
    assert_eq!(vectors[1..], record.embedding[..]);
    match decoded {
        Decoded::Change(Change::Update(r)) => {
            assert!(r.embedding.is_empty());
            assert_eq!(r.memory, record.memory);
        }
        _ => panic!("an update decodes as one"),
    }
    // Records among several keep their own vectors; a damaged payload leaves the buffer alone.
    let replace = framed(&Change::ReplaceUser {
        owner: Owner::of(&record.memory),
        records: vec![record.clone()],
    });
    let (decoded, split) = decode_into(payload(&replace), &mut vectors).expect("decodes");
    assert!(!split);
    assert!(
        matches!(decoded, Decoded::Change(Change::ReplaceUser { records, .. })
        if records[0].embedding == record.embedding)
    );
    let cut = &payload(&update)[..payload(&update).len() - 3];
    assert!(decode_into(cut, &mut vectors).is_err());
    assert_eq!(vectors.len(), 1 + record.embedding.len());
}
