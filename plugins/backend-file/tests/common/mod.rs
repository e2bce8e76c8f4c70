//! Helpers shared by the file backend's tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

use chrono::DateTime;
use coda_backend_file::{FileBackend, FileOptions};
use coda_core::vector::normalize;
use coda_core::{Embedder, HashingEmbedder, Memory, MemoryRecord, Metadata, Role, Scope, Turn};
use uuid::Uuid;

pub const DIMS: usize = 8;

/// User `default`, where [`record`]s live.
pub fn ds() -> Scope {
    Scope::default()
}

pub fn embedder(dims: usize) -> Arc<dyn Embedder> {
    Arc::new(HashingEmbedder::new(dims).unwrap())
}

/// A record whose content and embedding are derived from `id` and `version`, so a reader can
/// check one is intact knowing only those.
pub fn record(id: Uuid, version: u64) -> MemoryRecord {
    let seed = id.as_u128() as u64 ^ version;
    let mut embedding: Vec<f32> = (0..DIMS as u64)
        .map(|i| ((seed.rotate_left(i as u32 * 7) % 1000) as f32) - 500.0)
        .collect();
    normalize(&mut embedding);
    let metadata = Metadata {
        source_type: "fact".into(),
        importance: 0.5,
        timestamp: DateTime::from_timestamp(1_700_000_000 + version as i64, 0).unwrap(),
        topics: vec!["crash".into()],
        extra: Default::default(),
    };
    MemoryRecord {
        memory: Memory::new(id, format!("memory {id} version {version}"), metadata),
        embedding,
    }
}

/// The version a record made by [`record`] carries, if it is intact.
pub fn intact_version(record: &MemoryRecord) -> Option<u64> {
    let version = record.memory.content.rsplit(' ').next()?.parse().ok()?;
    (record == &self::record(record.memory.id, version)).then_some(version)
}

/// Turn `index` of session `session_id`, derived from both like [`record`], so a reader can
/// check one is intact knowing only its session and index.
pub fn turn(session_id: &str, index: u64) -> Turn {
    Turn {
        role: if index % 2 == 0 {
            Role::User
        } else {
            Role::Assistant
        },
        content: format!("turn {index} of {session_id}"),
        turn_index: index,
        timestamp: DateTime::from_timestamp(1_700_000_000 + index as i64, 0).unwrap(),
        name: None,
    }
}

pub fn options(dir: &Path) -> FileOptions {
    FileOptions::in_dir(dir)
}

pub fn open(options: FileOptions) -> FileBackend {
    FileBackend::open(options, embedder(DIMS)).unwrap()
}
