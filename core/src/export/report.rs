//! What an import reports.

use serde::Serialize;

/// What an import did, as `POST /import` and `coda import` report it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// Lines between the header and the end line.
    pub lines: u64,
    /// Memories that were not there.
    pub memories_added: u64,
    /// Memories that were there with other content.
    pub memories_updated: u64,
    /// Memories that were there exactly so.
    pub memories_unchanged: u64,
    /// Memories embedded anew (the file's embedder differs, or a line had no vector).
    pub memories_reembedded: u64,
    /// Memories stored under a new id, because another user or tenant holds theirs.
    pub ids_remapped: u64,
    /// Histories stored.
    pub histories_imported: u64,
    /// Histories that were there exactly so.
    pub histories_unchanged: u64,
    /// Histories the backend cannot import (a custom backend without history import).
    pub histories_skipped: u64,
    /// Sessions that were not there.
    pub sessions_added: u64,
    /// Sessions that were there with other turns or counters.
    pub sessions_updated: u64,
    /// Sessions that were there exactly so.
    pub sessions_unchanged: u64,
}
