//! Rewriting the log to hold only live records, atomically and without stopping readers.
//!
//! 1. Under the appender lock (briefly): note where the log ends and copy out the live set.
//!    Readers are never blocked; writers wait only for the copy.
//! 2. With no lock held: write header and live records to `memory.log.compact`, fsync.
//! 3. Under the appender lock: append what writers logged meanwhile (the old log from the noted
//!    end on), fsync, rename over `memory.log`, fsync the directory, append to the new file.
//!
//! 4. With `index = "hnsw"`, each user's graph that changed since its last save is saved beside
//!    the new log (see `graphs.rs`), still under the compaction lock but no other.
//!
//! A crash before the rename leaves the old log whole (the temp file is deleted on open); after
//! it, the new log is whole. Either way nothing acknowledged is lost.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use coda_core::{Change, Error, MemoryRecord, Result, SessionChange, SessionState, Version};

use crate::backend::Shared;
use crate::format::{self, Header};
use crate::log::sync_dir;

/// The log's file name inside `dir`.
pub const LOG_FILE: &str = "memory.log";
/// Where a rewrite is built before it is renamed over the log.
pub const TEMP_FILE: &str = "memory.log.compact";

/// What a compaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compacted {
    /// Log size before, in bytes.
    pub bytes_before: u64,
    /// Log size after, in bytes.
    pub bytes_after: u64,
    /// Live records written.
    pub live: u64,
}

/// Writes `header`, one insert per record, one put per session and one history record per
/// memory with a history (after the inserts, which it overrides) to the temp file in `dir`,
/// fsynced, and returns it open for appending with its length. The log itself is not touched.
pub fn write_fresh(
    dir: &Path,
    header: &Header,
    records: &[MemoryRecord],
    sessions: &[SessionState],
    histories: &[Vec<Version>],
    committed: Option<u64>,
) -> Result<(File, u64)> {
    let path = dir.join(TEMP_FILE);
    let io = |action| move |e| Error::io(action, dir.join(TEMP_FILE), e);
    remove_if_present(&path)?;
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create_new(true)
        .open(&path)
        .map_err(io("create"))?;
    let mut out = BufWriter::with_capacity(1 << 20, &file);
    out.write_all(&header.encode()).map_err(io("write"))?;
    let mut buf = Vec::new();
    for record in records {
        buf.clear();
        format::encode_insert(record, &mut buf)
            .ok_or_else(|| Error::invalid("memory", "a record is too large for the log"))?;
        out.write_all(&buf).map_err(io("write"))?;
    }
    for session in sessions {
        buf.clear();
        let change = Change::Session(SessionChange::Put(session.clone()));
        format::encode_change(&change, &mut buf)
            .ok_or_else(|| Error::invalid("session", "a session is too large for the log"))?;
        out.write_all(&buf).map_err(io("write"))?;
    }
    for versions in histories {
        buf.clear();
        format::encode_history(versions, &mut buf)
            .ok_or_else(|| Error::invalid("history", "a history is too large for the log"))?;
        out.write_all(&buf).map_err(io("write"))?;
    }
    if let Some(seq) = committed {
        // Last, so the state above counts as committed when the file is replayed.
        buf.clear();
        format::encode_change(&Change::Commit(seq), &mut buf)
            .ok_or_else(|| Error::invalid("commit", "cannot encode a commit marker"))?;
        out.write_all(&buf).map_err(io("write"))?;
    }
    out.flush().map_err(io("write"))?;
    drop(out);
    file.sync_all().map_err(io("fsync"))?;
    let len = file.metadata().map_err(io("stat"))?.len();
    Ok((file, len))
}

/// Renames the temp file over the log and makes the rename durable.
pub fn install_fresh(dir: &Path) -> Result<()> {
    let (from, to) = (dir.join(TEMP_FILE), dir.join(LOG_FILE));
    fs::rename(&from, &to).map_err(|e| Error::io("rename", &from, e))?;
    sync_dir(dir)
}

/// Deletes `path` if it exists.
pub fn remove_if_present(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io("remove", path, e)),
        _ => Ok(()),
    }
}

/// Compacts the log of a running backend (see the module docs).
pub fn compact(shared: &Shared) -> Result<Compacted> {
    let _only_one = shared.compaction.lock();
    let done = compact_locked(shared)?;
    shared.save_graphs();
    Ok(done)
}

/// Compacts unless dead records no longer call for it: a background compaction started by a
/// write finds the work done when a manual one (or one an erasure forced) ran meanwhile, and
/// rewriting again would only cost I/O.
pub fn compact_if_wanted(shared: &Shared) -> Result<Option<Compacted>> {
    let _only_one = shared.compaction.lock();
    if !shared.wants_compaction(&shared.log.lock()) {
        return Ok(None);
    }
    let done = compact_locked(shared)?;
    shared.save_graphs();
    Ok(Some(done))
}

/// Counts a compaction as under way while it lives, so quick writes go to the blocking pool
/// meanwhile instead of waiting for the appender on an async thread.
pub(crate) struct Compacting<'a>(&'a AtomicUsize);

impl<'a> Compacting<'a> {
    fn start(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        Compacting(count)
    }
}

impl Drop for Compacting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn compact_locked(shared: &Shared) -> Result<Compacted> {
    let _counted = Compacting::start(&shared.compacting_now);
    // In a cluster the live set is cut between two operations: the fresh file ends in the
    // commit marker of the state it holds, so no half-applied operation counts as committed.
    // Operations are short; one still open after a second fails this compaction (the next
    // write that wants one tries again) rather than count part of it as committed.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    let (mark, units_at_mark, (records, sessions), histories, committed) = loop {
        let appender = shared.log.lock();
        let committed = shared.inner.commit_mark();
        if committed.is_some() && appender.uncommitted {
            drop(appender);
            if std::time::Instant::now() >= deadline {
                return Err(Error::Unavailable(
                    "compaction waits for a moment between two replicated operations, and \
                     one stayed open for a second; it will be tried again"
                        .into(),
                ));
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
            continue;
        }
        let live = shared.inner.live();
        break (
            appender.offset,
            appender.units,
            live,
            shared.inner.histories(),
            committed,
        );
    };
    let live = (records.len() + sessions.len() + histories.len()) as u64;
    let written = write_fresh(
        &shared.dir,
        &shared.header,
        &records,
        &sessions,
        &histories,
        committed,
    );
    let (mut file, fresh_len) = match written {
        Ok(written) => written,
        Err(e) => {
            let _ = remove_if_present(&shared.dir.join(TEMP_FILE));
            return Err(e);
        }
    };
    let mut appender = shared.log.lock();
    let tail = appender.offset - mark;
    let copied = copy_tail(shared.log.path(), mark, tail, &mut file)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io("copy the log's tail to", shared.dir.join(TEMP_FILE), e))
        .and_then(|()| install_fresh(&shared.dir));
    if let Err(e) = copied {
        // Before the rename the old log is still whole; after a failed directory fsync the new
        // one is in place and must be what we append to.
        if shared.dir.join(TEMP_FILE).exists() {
            let _ = remove_if_present(&shared.dir.join(TEMP_FILE));
            return Err(e);
        }
        let units = live + appender.units - units_at_mark;
        let bytes_before = appender.offset;
        shared
            .log
            .install(&mut appender, file, fresh_len + tail, units);
        tracing::warn!(error = %e, bytes_before, "compaction installed the new log but could not fsync its directory");
        return Err(e);
    }
    let bytes_before = appender.offset;
    let units = live + appender.units - units_at_mark;
    shared
        .log
        .install(&mut appender, file, fresh_len + tail, units);
    shared
        .compactions
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(Compacted {
        bytes_before,
        bytes_after: fresh_len + tail,
        live,
    })
}

fn copy_tail(log: &Path, from: u64, len: u64, to: &mut File) -> io::Result<()> {
    if len == 0 {
        return Ok(());
    }
    let mut old = File::open(log)?;
    old.seek(SeekFrom::Start(from))?;
    let copied = io::copy(&mut io::Read::take(old, len), to)?;
    if copied != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("the log ended {} bytes early", len - copied),
        ));
    }
    Ok(())
}
