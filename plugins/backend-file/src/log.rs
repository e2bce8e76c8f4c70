//! Appending to the log and making appends durable, with group commit.
//!
//! Writers append under [`Log::appender`]'s lock, which also orders them against the in-memory
//! apply, then wait *outside* it for a shared fsync: the first waiter becomes the leader and
//! fsyncs everything appended so far, the rest sleep on a condvar until a leader's fsync covers
//! their bytes. While one fsync runs, the next group is appending, so throughput grows with
//! concurrency instead of being one fsync per write.
//!
//! Positions are *log sequence numbers*: bytes ever appended, across compactions. A compaction
//! swaps in a new, already-fsynced file, so it marks everything appended so far as synced.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use coda_core::{Error, Result};
use parking_lot::{Condvar, Mutex, MutexGuard};

/// The open log file and where its end is.
pub struct Appender {
    /// The current log file, opened for appending.
    pub file: Arc<File>,
    /// Length of the current file: where the next record goes.
    pub offset: u64,
    /// Record units in the current file (live and dead), for the compaction threshold.
    pub units: u64,
    /// Bytes ever appended, across files: the position durability is measured in.
    pub lsn: u64,
    /// Set once a write or fsync failed in a way that may have lost acknowledged-to-be data;
    /// every later write fails with it rather than pretend (see PostgreSQL's "fsyncgate").
    pub failed: Option<String>,
    /// Changes were appended since the last commit marker ([`coda_core::Change::Commit`]).
    pub uncommitted: bool,
}

struct SyncState {
    /// Everything up to this LSN is on disk.
    synced: u64,
    /// A leader is fsyncing right now.
    syncing: bool,
    /// Why the last fsync failed, if it did; writes fail from then on.
    failed: Option<String>,
    /// [`Log::appends`] covered by the last fsync, and how many that fsync covered.
    appends_synced: u64,
    last_group: u64,
}

/// The log: its path, appender and group-commit state.
pub struct Log {
    path: PathBuf,
    appender: Mutex<Appender>,
    sync: Mutex<SyncState>,
    synced_cv: Condvar,
    fsyncs: AtomicU64,
    /// Writers between starting a commit and finishing its append; a leader about to fsync
    /// waits briefly for them so they join its group instead of needing the next fsync.
    appending: AtomicUsize,
    /// Appends ever made, to size groups.
    appends: AtomicU64,
}

/// Marks a writer as on its way to append; see [`Log::begin_append`].
pub struct Appending<'a>(&'a AtomicUsize);

impl Drop for Appending<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Release);
    }
}

/// The longest a leader waits for writers on their way to append before it fsyncs.
const GATHER: Duration = Duration::from_micros(200);

impl Log {
    /// Opens `path` (already replayed and valid up to `end`) for appending.
    pub fn open(path: &Path, end: u64, units: u64) -> Result<Log> {
        let file = open_append(path)?;
        Ok(Log {
            path: path.to_owned(),
            appender: Mutex::new(Appender {
                file: Arc::new(file),
                offset: end,
                units,
                lsn: 0,
                failed: None,
                uncommitted: false,
            }),
            sync: Mutex::new(SyncState {
                synced: 0,
                syncing: false,
                failed: None,
                appends_synced: 0,
                last_group: 0,
            }),
            synced_cv: Condvar::new(),
            fsyncs: AtomicU64::new(0),
            appending: AtomicUsize::new(0),
            appends: AtomicU64::new(0),
        })
    }

    /// The log file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Counts the caller as on its way to append until the returned guard drops.
    pub fn begin_append(&self) -> Appending<'_> {
        self.appending.fetch_add(1, Ordering::AcqRel);
        Appending(&self.appending)
    }

    /// Locks the appender; the holder is the only writer of the log and of the live set.
    pub fn lock(&self) -> MutexGuard<'_, Appender> {
        self.appender.lock()
    }

    /// Appends `bytes` (whole frames holding `units` record units) and returns the LSN just
    /// past them. A failed write is cut back off so the log never holds a partial record
    /// followed by good ones.
    pub fn append(&self, appender: &mut Appender, bytes: &[u8], units: u64) -> Result<u64> {
        if let Some(reason) = &appender.failed {
            return Err(Error::Unavailable(format!(
                "the memory log is unusable: {reason}"
            )));
        }
        if let Err(e) = (&*appender.file).write_all(bytes) {
            if let Err(cut) = appender.file.set_len(appender.offset) {
                appender.failed = Some(format!(
                    "a failed write could not be cut off the end of {}: {cut}",
                    self.path.display()
                ));
            }
            return Err(Error::io("write", &self.path, e));
        }
        appender.offset += bytes.len() as u64;
        appender.units += units;
        appender.lsn += bytes.len() as u64;
        self.appends.fetch_add(1, Ordering::Release);
        Ok(appender.lsn)
    }

    /// Returns once everything up to `lsn` is fsynced, fsyncing as the group's leader if no
    /// fsync is under way.
    pub fn wait_durable(&self, lsn: u64) -> Result<()> {
        self.wait_durable_gathering(lsn, true)
    }

    /// [`wait_durable`](Self::wait_durable) for the fsync thread of handed-off waits: as a
    /// leader it fsyncs at once. Its writers do not sleep meanwhile, so the next group fills
    /// while this fsync runs, and spinning for stragglers would only take CPU from them.
    pub fn wait_durable_now(&self, lsn: u64) -> Result<()> {
        self.wait_durable_gathering(lsn, false)
    }

    fn wait_durable_gathering(&self, lsn: u64, gather: bool) -> Result<()> {
        let mut state = self.sync.lock();
        loop {
            if let Some(reason) = &state.failed {
                return Err(Error::Unavailable(format!(
                    "the memory log is unusable: {reason}"
                )));
            }
            if state.synced >= lsn {
                return Ok(());
            }
            if state.syncing {
                self.synced_cv.wait(&mut state);
                continue;
            }
            state.syncing = true;
            let (base, last_group) = (state.appends_synced, state.last_group);
            drop(state);
            // Wait (briefly) for writers on their way and for a group as big as the last one:
            // each fsync costs the same whether it covers one write or sixteen.
            let until = Instant::now() + GATHER;
            while gather
                && Instant::now() < until
                && (self.appending.load(Ordering::Acquire) > 0
                    || self.appends.load(Ordering::Acquire) - base < last_group)
            {
                std::thread::yield_now();
            }
            let (file, target, appends) = {
                let appender = self.appender.lock();
                let appends = self.appends.load(Ordering::Acquire);
                (Arc::clone(&appender.file), appender.lsn, appends)
            };
            let result = file.sync_data();
            self.fsyncs.fetch_add(1, Ordering::Relaxed);
            state = self.sync.lock();
            state.syncing = false;
            match result {
                Ok(()) if target > state.synced => {
                    state.synced = target;
                    state.last_group = appends - state.appends_synced;
                    state.appends_synced = appends;
                }
                Ok(()) => {}
                Err(e) => {
                    let reason = format!("fsync of {} failed: {e}", self.path.display());
                    state.failed = Some(reason.clone());
                    self.synced_cv.notify_all();
                    // Lock order is appender, then sync: never take the appender holding sync.
                    drop(state);
                    self.appender.lock().failed = Some(reason);
                    state = self.sync.lock();
                }
            }
            self.synced_cv.notify_all();
        }
    }

    /// How many fsyncs of appended records have run.
    pub fn fsyncs(&self) -> u64 {
        self.fsyncs.load(Ordering::Relaxed)
    }

    /// Makes everything appended so far durable.
    pub fn sync_all_appended(&self) -> Result<()> {
        let lsn = self.appender.lock().lsn;
        self.wait_durable(lsn)
    }

    /// Whether anything appended is not yet known durable.
    pub fn has_unsynced(&self) -> bool {
        let lsn = self.appender.lock().lsn;
        self.sync.lock().synced < lsn
    }

    /// Swaps in `file` (complete and fsynced, already renamed into place) as the log. The caller
    /// holds the appender lock; everything appended so far is in `file`, so all of it is durable.
    pub fn install(&self, appender: &mut Appender, file: File, offset: u64, units: u64) {
        appender.file = Arc::new(file);
        appender.offset = offset;
        appender.units = units;
        let mut state = self.sync.lock();
        state.synced = state.synced.max(appender.lsn);
        self.synced_cv.notify_all();
    }
}

/// Opens the log for appending (and reading, for compaction's tail copy).
pub fn open_append(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io("open", path, e))
}

/// Fsyncs a directory so a rename or create inside it survives a power loss.
pub fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io("fsync directory", dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}
