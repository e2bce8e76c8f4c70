//! The on-disk format: file header, record framing, and the encoding of [`Change`].
//!
//! ```text
//! file   := MAGIC(8) frame(header) frame(change)*
//! frame  := FRAME_MAGIC(4) len:u32 checksum:u64 payload[len]
//! ```
//! All integers are little-endian. `checksum` is xxh3-64 of the payload seeded with `len`, so a
//! flipped length is caught as surely as a flipped payload byte. `FRAME_MAGIC` lets recovery find
//! the next record after damage without trusting any length field.
//!
//! This module is the only place that knows how a [`Change`] looks on disk.

use chrono::{DateTime, Utc};
use coda_core::{By, Change, Memory, MemoryRecord, Metadata, Owner, Version};
use serde_json::{Map, Value};
use twox_hash::XxHash3_64;
use uuid::Uuid;

/// First bytes of every log file; the last byte is the format version.
pub const FILE_MAGIC: [u8; 8] = *b"CODALOG\x01";
/// First bytes of every frame.
pub const FRAME_MAGIC: [u8; 4] = [0xC0, 0xDA, 0x4C, 0x47];
/// Bytes before a frame's payload.
pub const FRAME_HEADER: usize = 16;

// Kinds 1, 2 and 4 are the records of logs written before scopes: read as user `default`.
const INSERT_UNSCOPED: u8 = 1;
const UPDATE_UNSCOPED: u8 = 2;
const DELETE: u8 = 3;
const REPLACE_ALL_UNSCOPED: u8 = 4;
const INSERT: u8 = 5;
const UPDATE: u8 = 6;
const REPLACE_USER: u8 = 7;
const ERASE_USER: u8 = 8;
/// A session change, as JSON: sessions are text and counters, rare next to vectors.
const SESSION: u8 = 9;
/// A persist: memories and the session's new state in one frame.
const PERSIST: u8 = 10;
// Kinds 11 to 14 are 5, 6, 7 and 10 with records that end in their lifecycle (slot, superseding,
// expiry, provenance; see `put_lifecycle`); logs write only these since lifecycles exist, and
// read the older kinds with none.
const INSERT_V2: u8 = 11;
const UPDATE_V2: u8 = 12;
const REPLACE_USER_V2: u8 = 13;
const PERSIST_V2: u8 = 14;
/// A delete with who made it and when, for the memory's history.
const DELETE_V2: u8 = 15;
/// Every version of one memory, as JSON: written by compaction after the live records, so the
/// history of changed and deleted memories survives the rewrite.
const HISTORY: u8 = 16;
/// A commit marker: the changes before it complete a cluster's log up to a stream sequence
/// (u64 LE). Once one is in the log, changes after the last are an interrupted operation.
const COMMIT: u8 = 17;

/// The lifecycle fields of a record, as JSON (rare next to content and vectors): the snapshot
/// format's keys, and who made the version.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Lifecycle {
    #[serde(flatten)]
    fields: coda_core::snapshot::Lifecycle,
    #[serde(default, skip_serializing_if = "is_api")]
    by: By,
}

fn is_api(by: &By) -> bool {
    *by == By::Api
}

/// A decoded frame. Values are moved straight into the live set during replay, so boxing the
/// common (large) variant would only add an allocation per record.
#[allow(clippy::large_enum_variant)]
pub enum Decoded {
    /// A change to apply.
    Change(Change),
    /// The versions of one memory, replacing what the history held for it.
    History(Vec<Version>),
}

/// What the log's vectors are: recorded so a change of embedder is noticed on open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The embedder's [`fingerprint`](coda_core::Embedder::fingerprint).
    pub fingerprint: String,
    /// Length of every embedding in the log.
    pub dims: usize,
}

impl Header {
    /// The whole file prefix: magic and the framed header.
    pub fn encode(&self) -> Vec<u8> {
        let mut payload = Vec::with_capacity(8 + self.fingerprint.len());
        put_u32(&mut payload, self.dims as u32);
        put_str(&mut payload, &self.fingerprint);
        let mut out = FILE_MAGIC.to_vec();
        frame(&payload, &mut out);
        out
    }

    /// Decodes a header frame's payload.
    pub fn decode(payload: &[u8]) -> Result<Header, String> {
        let mut r = Reader(payload);
        let dims = r.u32()? as usize;
        let fingerprint = r.str()?.to_owned();
        r.end()?;
        Ok(Header { fingerprint, dims })
    }
}

/// Appends `payload` framed to `out`. The caller keeps payloads under `u32::MAX` bytes.
pub fn frame(payload: &[u8], out: &mut Vec<u8>) {
    let len = payload.len() as u32;
    out.extend_from_slice(&FRAME_MAGIC);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&checksum(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// The checksum stored for `payload`.
pub fn checksum(payload: &[u8]) -> u64 {
    XxHash3_64::oneshot_with_seed(payload.len() as u64, payload)
}

/// A frame header's fields, if it starts with the frame magic.
pub fn parse_frame_header(bytes: &[u8; FRAME_HEADER]) -> Option<(u32, u64)> {
    if bytes[..4] != FRAME_MAGIC {
        return None;
    }
    let len = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    let mut sum = [0u8; 8];
    sum.copy_from_slice(&bytes[8..16]);
    Some((len, u64::from_le_bytes(sum)))
}

/// Appends `change` as one frame to `out`; `None` when it is too large for one frame.
pub fn encode_change(change: &Change, out: &mut Vec<u8>) -> Option<()> {
    framed(out, |out| {
        match change {
            Change::Insert(record) => {
                out.push(INSERT_V2);
                put_record(out, record);
            }
            Change::Update(record) => {
                out.push(UPDATE_V2);
                put_record(out, record);
            }
            Change::Delete { id, by, at } => {
                out.push(DELETE_V2);
                out.extend_from_slice(id.as_bytes());
                out.push(by.as_u8());
                out.extend_from_slice(&at.timestamp().to_le_bytes());
                put_u32(out, at.timestamp_subsec_nanos());
            }
            Change::ReplaceUser { owner, records } => {
                out.push(REPLACE_USER_V2);
                put_str(out, &owner.tenant);
                put_str(out, &owner.user_id);
                put_u32(out, u32::try_from(records.len()).ok()?);
                for record in records {
                    put_record(out, record);
                }
            }
            Change::EraseUser(owner) => {
                out.push(ERASE_USER);
                put_str(out, &owner.tenant);
                put_str(out, &owner.user_id);
            }
            Change::Persist { records, session } => {
                out.push(PERSIST_V2);
                put_u32(out, u32::try_from(records.len()).ok()?);
                for record in records {
                    put_record(out, record);
                }
                let json = serde_json::to_vec(session).ok()?;
                out.extend_from_slice(&json);
            }
            Change::Session(change) => {
                out.push(SESSION);
                // Serialising plain data cannot fail.
                let json = serde_json::to_vec(change).ok()?;
                out.extend_from_slice(&json);
            }
            Change::Commit(seq) => {
                out.push(COMMIT);
                out.extend_from_slice(&seq.to_le_bytes());
            }
        }
        Some(())
    })
}

/// The frame `encode_change(&Change::Insert(record.clone()))` would write, without the clone.
pub fn encode_insert(record: &MemoryRecord, out: &mut Vec<u8>) -> Option<()> {
    framed(out, |out| {
        out.push(INSERT_V2);
        put_record(out, record);
        Some(())
    })
}

/// Appends the history of one memory as one frame to `out`.
pub fn encode_history(versions: &[Version], out: &mut Vec<u8>) -> Option<()> {
    framed(out, |out| {
        out.push(HISTORY);
        out.extend_from_slice(&serde_json::to_vec(versions).ok()?);
        Some(())
    })
}

/// Writes the payload with `body`, then fills in the frame header in front of it.
fn framed(out: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>) -> Option<()>) -> Option<()> {
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_HEADER]);
    let written = body(out);
    let payload = &out[start + FRAME_HEADER..];
    let len = u32::try_from(payload.len()).ok();
    let (Some(()), Some(len)) = (written, len) else {
        out.truncate(start);
        return None;
    };
    let sum = checksum(payload);
    out[start..start + 4].copy_from_slice(&FRAME_MAGIC);
    out[start + 4..start + 8].copy_from_slice(&len.to_le_bytes());
    out[start + 8..start + 16].copy_from_slice(&sum.to_le_bytes());
    Some(())
}

/// Decodes a change frame's payload (the log reads [`decode`]).
#[cfg(test)]
pub fn decode_change(payload: &[u8]) -> Result<Change, String> {
    match decode(payload)? {
        Decoded::Change(change) => Ok(change),
        Decoded::History(_) => Err("a history record is not a change".into()),
    }
}

/// Decodes a frame's payload: a change, or a memory's history.
pub fn decode(payload: &[u8]) -> Result<Decoded, String> {
    decode_with(payload, None).map(|(decoded, _)| decoded)
}

/// [`decode`], with the embedding of a single-record write (an insert or an update) appended
/// to `vectors` rather than held by its record, whose embedding is then empty; the flag says
/// whether it was. On an error `vectors` is as it was.
pub fn decode_into(payload: &[u8], vectors: &mut Vec<f32>) -> Result<(Decoded, bool), String> {
    let start = vectors.len();
    let decoded = decode_with(payload, Some(vectors));
    if decoded.is_err() {
        vectors.truncate(start);
    }
    decoded
}

fn decode_with(payload: &[u8], vectors: Option<&mut Vec<f32>>) -> Result<(Decoded, bool), String> {
    let mut r = Reader(payload);
    let kind = r.u8()?;
    if kind == HISTORY {
        let versions = serde_json::from_slice(r.rest())
            .map_err(|e| format!("history record is not valid JSON: {e}"))?;
        return Ok((Decoded::History(versions), false));
    }
    let split = vectors.is_some()
        && matches!(
            kind,
            INSERT_UNSCOPED | UPDATE_UNSCOPED | INSERT | UPDATE | INSERT_V2 | UPDATE_V2
        );
    let sink = vectors;
    let change = match kind {
        INSERT_UNSCOPED => Change::Insert(r.unscoped_record(sink)?),
        UPDATE_UNSCOPED => Change::Update(r.unscoped_record(sink)?),
        INSERT => Change::Insert(r.record(sink)?),
        UPDATE => Change::Update(r.record(sink)?),
        INSERT_V2 => Change::Insert(r.record_v2(sink)?),
        UPDATE_V2 => Change::Update(r.record_v2(sink)?),
        DELETE => Change::Delete {
            id: r.uuid()?,
            by: By::Api,
            // Logs before history did not date deletes: they read as the epoch.
            at: DateTime::UNIX_EPOCH,
        },
        DELETE_V2 => {
            let id = r.uuid()?;
            let by = r.u8()?;
            let by = By::from_u8(by).ok_or_else(|| format!("unknown author code {by}"))?;
            Change::Delete {
                id,
                by,
                at: r.time()?,
            }
        }
        REPLACE_ALL_UNSCOPED => {
            let count = r.u32()? as usize;
            // Each record takes well over 16 bytes; never trust a count the payload can't hold.
            let mut records = Vec::with_capacity(count.min(payload.len() / 16));
            for _ in 0..count {
                records.push(r.unscoped_record(None)?);
            }
            Change::ReplaceUser {
                owner: Owner::default_user(),
                records,
            }
        }
        REPLACE_USER | REPLACE_USER_V2 => {
            let owner = Owner::new(r.str()?, r.str()?);
            let count = r.u32()? as usize;
            let mut records = Vec::with_capacity(count.min(payload.len() / 16));
            for _ in 0..count {
                records.push(r.any_record(kind == REPLACE_USER_V2)?);
            }
            Change::ReplaceUser { owner, records }
        }
        ERASE_USER => Change::EraseUser(Owner::new(r.str()?, r.str()?)),
        PERSIST | PERSIST_V2 => {
            let count = r.u32()? as usize;
            let mut records = Vec::with_capacity(count.min(payload.len() / 16));
            for _ in 0..count {
                records.push(r.any_record(kind == PERSIST_V2)?);
            }
            let session = serde_json::from_slice(r.rest())
                .map_err(|e| format!("persisted session is not valid JSON: {e}"))?;
            Change::Persist { records, session }
        }
        SESSION => {
            let change = serde_json::from_slice(r.rest())
                .map_err(|e| format!("session change is not valid JSON: {e}"))?;
            Change::Session(change)
        }
        COMMIT => {
            let mut seq = [0u8; 8];
            for byte in &mut seq {
                *byte = r.u8()?;
            }
            Change::Commit(u64::from_le_bytes(seq))
        }
        other => return Err(format!("unknown change kind {other}")),
    };
    r.end()?;
    Ok((Decoded::Change(change), split))
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u32(out, s.len() as u32);
    out.extend_from_slice(s.as_bytes());
}

/// An absent string is written as length `u32::MAX`.
fn put_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => put_str(out, s),
        None => put_u32(out, u32::MAX),
    }
}

/// Fixed metadata fields are binary; only the caller's own keys are JSON (and absent when none),
/// so replaying a million records parses almost no JSON.
fn put_record(out: &mut Vec<u8>, record: &MemoryRecord) {
    let memory = &record.memory;
    let meta = &memory.metadata;
    put_str(out, &memory.tenant);
    put_str(out, &memory.user_id);
    put_opt_str(out, memory.agent_id.as_deref());
    put_opt_str(out, memory.session_id.as_deref());
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
        // Serialising a map of JSON values cannot fail.
        let json = serde_json::to_vec(&meta.extra).unwrap_or_default();
        put_u32(out, json.len() as u32);
        out.extend_from_slice(&json);
    }
    put_u32(out, record.embedding.len() as u32);
    out.reserve(record.embedding.len() * 4);
    for x in &record.embedding {
        out.extend_from_slice(&x.to_le_bytes());
    }
    put_lifecycle(out, memory);
}

/// The lifecycle fields as length-prefixed JSON, or a zero length when all are unset (most
/// memories), so the common record stays binary.
fn put_lifecycle(out: &mut Vec<u8>, memory: &Memory) {
    let lifecycle = Lifecycle {
        fields: coda_core::snapshot::Lifecycle::of(memory),
        by: memory.changed_by,
    };
    if lifecycle.fields.is_unset() && lifecycle.by == By::Api {
        put_u32(out, 0);
    } else {
        // Serialising plain data cannot fail.
        let json = serde_json::to_vec(&lifecycle).unwrap_or_default();
        put_u32(out, json.len() as u32);
        out.extend_from_slice(&json);
    }
}

/// Reads fields off a payload (a record's, or a saved graph's header in `graphs.rs`); every
/// read is bounds-checked.
pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err(format!("record ends {} bytes early", n - self.0.len()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub(crate) fn str(&mut self) -> Result<&'a str, String> {
        let len = self.u32()? as usize;
        std::str::from_utf8(self.take(len)?).map_err(|e| format!("text is not UTF-8: {e}"))
    }

    fn opt_str(&mut self) -> Result<Option<&'a str>, String> {
        let saved = self.0;
        if self.u32()? == u32::MAX {
            return Ok(None);
        }
        self.0 = saved;
        self.str().map(Some)
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.0)
    }

    fn uuid(&mut self) -> Result<Uuid, String> {
        Ok(Uuid::from_bytes(self.array()?))
    }

    fn time(&mut self) -> Result<DateTime<Utc>, String> {
        let secs = i64::from_le_bytes(self.array()?);
        let nanos = self.u32()?;
        DateTime::from_timestamp(secs, nanos)
            .ok_or_else(|| format!("timestamp {secs}.{nanos:09} is out of range"))
    }

    fn any_record(&mut self, v2: bool) -> Result<MemoryRecord, String> {
        if v2 {
            self.record_v2(None)
        } else {
            self.record(None)
        }
    }

    /// A scoped record followed by its lifecycle.
    fn record_v2(&mut self, vectors: Option<&mut Vec<f32>>) -> Result<MemoryRecord, String> {
        let mut record = self.record(vectors)?;
        let len = self.u32()? as usize;
        if len > 0 {
            let lifecycle: Lifecycle = serde_json::from_slice(self.take(len)?)
                .map_err(|e| format!("record lifecycle is not valid: {e}"))?;
            lifecycle.fields.apply_to(&mut record.memory);
            record.memory.changed_by = lifecycle.by;
        }
        Ok(record)
    }

    /// A scoped record; its embedding goes to `vectors` when given (see [`decode_into`]).
    fn record(&mut self, vectors: Option<&mut Vec<f32>>) -> Result<MemoryRecord, String> {
        let tenant = self.str()?.to_owned();
        let user_id = self.str()?.to_owned();
        let agent_id = self.opt_str()?.map(str::to_owned);
        let session_id = self.opt_str()?.map(str::to_owned);
        let mut record = self.unscoped_record(vectors)?;
        let memory = &mut record.memory;
        (memory.tenant, memory.user_id) = (tenant, user_id);
        (memory.agent_id, memory.session_id) = (agent_id, session_id);
        Ok(record)
    }

    /// A record as logs before scopes wrote it: owned by user `default`.
    fn unscoped_record(&mut self, vectors: Option<&mut Vec<f32>>) -> Result<MemoryRecord, String> {
        let id = self.uuid()?;
        let content = self.str()?.to_owned();
        let source_type = self.str()?.to_owned();
        let importance = f64::from_le_bytes(self.array()?);
        let secs = i64::from_le_bytes(self.array()?);
        let nanos = self.u32()?;
        let timestamp = DateTime::from_timestamp(secs, nanos)
            .ok_or_else(|| format!("timestamp {secs}.{nanos:09} is out of range"))?;
        let topic_count = self.u32()? as usize;
        let mut topics = Vec::with_capacity(topic_count.min(self.0.len() / 4));
        for _ in 0..topic_count {
            topics.push(self.str()?.to_owned());
        }
        let extra_len = self.u32()? as usize;
        let extra = if extra_len == 0 {
            Map::new()
        } else {
            match serde_json::from_slice::<Value>(self.take(extra_len)?) {
                Ok(Value::Object(map)) => map,
                Ok(_) => return Err("caller metadata is not a JSON object".into()),
                Err(e) => return Err(format!("caller metadata is not JSON: {e}")),
            }
        };
        let dims = self.u32()? as usize;
        let bytes = self.take(dims.checked_mul(4).ok_or("embedding length overflows")?)?;
        let floats = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        let embedding = match vectors {
            Some(vectors) => {
                vectors.extend(floats);
                Vec::new()
            }
            None => floats.collect(),
        };
        let metadata = Metadata {
            source_type,
            importance,
            timestamp,
            topics,
            extra,
        };
        Ok(MemoryRecord {
            memory: Memory::new(id, content, metadata),
            embedding,
        })
    }

    fn end(&self) -> Result<(), String> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{} unexpected bytes after the record",
                self.0.len()
            ))
        }
    }
}

#[cfg(test)]
#[path = "format_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "format_fuzz.rs"]
mod fuzz;
