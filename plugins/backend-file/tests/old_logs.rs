//! Logs written before scopes: their records (kinds 1, 2 and 4) carry no owner, and the whole
//! file opens with every memory owned by user `default` (SPEC §8: "without any scope id every
//! existing route behaves exactly as before, on user `default`").
#![allow(clippy::unwrap_used)]

mod common;

use coda_backend_file::LOG_FILE;
use coda_core::{MemoryBackend, MemoryRecord, Owner, Scope};
use common::{ds, embedder, open, options, record, DIMS};
use uuid::Uuid;

/// The encoding of the log format before scopes, written out by hand as that version's
/// `format.rs` wrote it, so this test checks the reader against the old bytes rather than
/// against itself.
mod before_scopes {
    use coda_core::MemoryRecord;
    use twox_hash::XxHash3_64;
    use uuid::Uuid;

    const FILE_MAGIC: [u8; 8] = *b"CODALOG\x01";
    const FRAME_MAGIC: [u8; 4] = [0xC0, 0xDA, 0x4C, 0x47];
    const INSERT: u8 = 1;
    const UPDATE: u8 = 2;
    const DELETE: u8 = 3;
    const REPLACE_ALL: u8 = 4;

    /// A whole log file, built one record at a time.
    pub struct Log(Vec<u8>);

    impl Log {
        /// The file magic and the header frame: `dims`, then the embedder's fingerprint.
        pub fn new(fingerprint: &str, dims: usize) -> Log {
            let mut header = Vec::new();
            put_u32(&mut header, dims as u32);
            put_str(&mut header, fingerprint);
            let mut log = Log(FILE_MAGIC.to_vec());
            log.frame(&header);
            log
        }

        pub fn insert(mut self, record: &MemoryRecord) -> Log {
            let mut payload = vec![INSERT];
            put_record(&mut payload, record);
            self.frame(&payload);
            self
        }

        pub fn update(mut self, record: &MemoryRecord) -> Log {
            let mut payload = vec![UPDATE];
            put_record(&mut payload, record);
            self.frame(&payload);
            self
        }

        pub fn delete(mut self, id: Uuid) -> Log {
            let mut payload = vec![DELETE];
            payload.extend_from_slice(id.as_bytes());
            self.frame(&payload);
            self
        }

        /// Before scopes there was one user, so a snapshot apply replaced everything.
        pub fn replace_all(mut self, records: &[MemoryRecord]) -> Log {
            let mut payload = vec![REPLACE_ALL];
            put_u32(&mut payload, records.len() as u32);
            for record in records {
                put_record(&mut payload, record);
            }
            self.frame(&payload);
            self
        }

        pub fn bytes(self) -> Vec<u8> {
            self.0
        }

        /// `FRAME_MAGIC len:u32 checksum:u64 payload`, the checksum xxh3-64 seeded with `len`.
        fn frame(&mut self, payload: &[u8]) {
            let len = payload.len() as u32;
            let sum = XxHash3_64::oneshot_with_seed(u64::from(len), payload);
            self.0.extend_from_slice(&FRAME_MAGIC);
            self.0.extend_from_slice(&len.to_le_bytes());
            self.0.extend_from_slice(&sum.to_le_bytes());
            self.0.extend_from_slice(payload);
        }
    }

    fn put_u32(out: &mut Vec<u8>, v: u32) {
        out.extend_from_slice(&v.to_le_bytes());
    }

    fn put_str(out: &mut Vec<u8>, s: &str) {
        put_u32(out, s.len() as u32);
        out.extend_from_slice(s.as_bytes());
    }

    /// A record without tenant, user, agent or session: the id comes first.
    fn put_record(out: &mut Vec<u8>, record: &MemoryRecord) {
        let memory = &record.memory;
        let meta = &memory.metadata;
        out.extend_from_slice(memory.id.as_bytes());
        put_str(out, &memory.content);
        put_str(out, &meta.source_type);
        out.extend_from_slice(&meta.importance.to_le_bytes());
        out.extend_from_slice(&meta.timestamp.timestamp().to_le_bytes());
        put_u32(out, meta.timestamp.timestamp_subsec_nanos());
        put_u32(out, meta.topics.len() as u32);
        for topic in &meta.topics {
            put_str(out, topic);
        }
        if meta.extra.is_empty() {
            put_u32(out, 0);
        } else {
            let json = serde_json::to_vec(&meta.extra).unwrap();
            put_u32(out, json.len() as u32);
            out.extend_from_slice(&json);
        }
        put_u32(out, record.embedding.len() as u32);
        for x in &record.embedding {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
}

/// A memory as the seed's clients stored them: with their own `user_id` key in metadata,
/// which is only a caller key and must not make the memory someone else's.
fn with_caller_user_key(id: Uuid) -> MemoryRecord {
    let mut r = record(id, 0);
    r.memory
        .metadata
        .extra
        .insert("user_id".into(), "u1".into());
    r
}

fn ids(n: usize) -> Vec<Uuid> {
    (0..n).map(|_| Uuid::new_v4()).collect()
}

#[test]
fn a_log_written_before_scopes_opens_as_user_default() {
    let dir = tempfile::tempdir().unwrap();
    let [a, b, c, d, e] = ids(5).try_into().unwrap();
    // Every kind the old format had: inserts, updates, a delete and a replace-all.
    let old = before_scopes::Log::new(&embedder(DIMS).fingerprint(), DIMS)
        .insert(&record(a, 0))
        .insert(&with_caller_user_key(b))
        .insert(&record(c, 0))
        .update(&record(a, 1))
        .delete(c)
        .replace_all(&[record(a, 2), with_caller_user_key(b), record(d, 0)])
        .insert(&record(e, 0))
        .update(&record(e, 1));
    std::fs::write(dir.path().join(LOG_FILE), old.bytes()).unwrap();
    let expected = vec![
        record(a, 2),
        with_caller_user_key(b),
        record(d, 0),
        record(e, 1),
    ];

    let backend = open(options(dir.path()));
    let recovery = backend.recovery();
    assert_eq!((recovery.replayed, recovery.live), (11, 4), "{recovery:?}");
    assert_eq!(
        (recovery.skipped, recovery.reembedded),
        (0, None),
        "{recovery:?}"
    );
    assert!(recovery.torn_tail.is_none() && recovery.repaired.is_empty());
    let alice = Scope::user("alice").unwrap();
    for want in &expected {
        let id = want.memory.id;
        assert_eq!(
            backend.get(&Scope::default(), id).unwrap().as_ref(),
            Some(want)
        );
        assert_eq!(backend.get(&alice, id).unwrap(), None, "alice sees {id}");
    }
    assert_eq!(
        backend.get(&ds(), c).unwrap(),
        None,
        "the deleted memory is back"
    );
    assert_eq!(
        backend.owners("default").unwrap(),
        vec![(Owner::default_user(), 4)]
    );
    assert_eq!(backend.count(&alice).unwrap(), 0);

    // New scoped records append to the old log; both kinds replay together, and compaction
    // rewrites the old ones in the new encoding without changing whose they are.
    let mut alices = record(Uuid::new_v4(), 0);
    alices.memory.user_id = "alice".into();
    backend.insert(&alice, alices.clone()).unwrap();
    drop(backend);
    let reopened = open(options(dir.path()));
    assert_eq!(reopened.export(&ds()).unwrap(), expected);
    assert_eq!(reopened.export(&alice).unwrap(), vec![alices.clone()]);
    reopened.compact().unwrap();
    drop(reopened);
    let compacted = open(options(dir.path()));
    assert_eq!(compacted.export(&ds()).unwrap(), expected);
    assert_eq!(compacted.export(&alice).unwrap(), vec![alices]);
}
