//! The running backend: reads from the in-memory live set, writes through the log.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use coda_backend_memory::{InMemoryBackend, IndexKind};
use coda_core::{
    By, Change, Erased, Error, Filter, Memory, MemoryBackend, MemoryId, MemoryRecord, Owner,
    Result, Scope, ScoredMemory, SessionChange, SessionInfo, SessionKey, SessionState, Version,
};
use parking_lot::Mutex;

use crate::compact::{self, Compacted};
use crate::config::{FileOptions, SyncPolicy};
use crate::format::{self, Header};
use crate::graphs::{self, LogPosition};
use crate::lock::DirLock;
use crate::log::{Appender, Log};
use crate::open::Recovery;
use crate::recover::units;
use crate::syncer::{BatchSyncer, DurableSyncer};

/// State shared with the background syncer and compactor threads.
pub(crate) struct Shared {
    pub options: FileOptions,
    pub dir: PathBuf,
    pub header: Header,
    /// The live set; changed only by holders of the appender lock, after the log write.
    pub inner: InMemoryBackend,
    pub log: Log,
    /// Held for the whole of a compaction: a manual one and a background one never overlap.
    pub compaction: Mutex<()>,
    /// A background compaction has been started and not finished.
    compacting: AtomicBool,
    /// Compactions that rewrote the log since open, manual and background.
    pub compactions: AtomicU64,
    /// Compactions under way right now (see [`compact::Compacting`]).
    pub compacting_now: AtomicUsize,
    /// The change stamp of each user's graph file on disk (see `graphs.rs`).
    graphs_on_disk: Mutex<HashMap<Owner, u64>>,
    _lock: DirLock,
}

impl Shared {
    pub(crate) fn new(
        options: FileOptions,
        header: Header,
        inner: InMemoryBackend,
        log: Log,
        lock: DirLock,
        graphs_on_disk: HashMap<Owner, u64>,
    ) -> Self {
        Shared {
            dir: options.dir.clone(),
            options,
            header,
            inner,
            log,
            compaction: Mutex::new(()),
            compacting: AtomicBool::new(false),
            compactions: AtomicU64::new(0),
            compacting_now: AtomicUsize::new(0),
            graphs_on_disk: Mutex::new(graphs_on_disk),
            _lock: lock,
        }
    }

    /// With `index = "hnsw"`: saves each user's graph that changed since it was last saved
    /// or loaded, beside the log (see `graphs.rs`); the caller holds the compaction lock, so
    /// saves never overlap. Returns how many graphs were written.
    pub(crate) fn save_graphs(&self) -> usize {
        if self.inner.index().kind() != IndexKind::Hnsw {
            return 0;
        }
        let at = {
            let appender = self.log.lock();
            LogPosition {
                offset: appender.offset,
                units: appender.units,
            }
        };
        let started = std::time::Instant::now();
        let written = graphs::save_all(&self.dir, &self.inner, at, &mut self.graphs_on_disk.lock());
        if written > 0 {
            tracing::info!(
                dir = %self.dir.display(),
                graphs = written,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "saved HNSW graphs beside the memory log"
            );
        }
        written
    }

    /// Whether dead records outnumber live ones by the configured ratio. Live units are what a
    /// compaction keeps: records, sessions and histories.
    pub fn wants_compaction(&self, appender: &Appender) -> bool {
        let live = (self.inner.len().unwrap_or(0)
            + self.inner.session_count()
            + self.inner.history_count()) as u64;
        let dead = appender.units.saturating_sub(live);
        dead >= self.options.compact_min_dead
            && dead as f64 > self.options.compact_ratio * live as f64
    }
}

/// The background fsync thread the sync policy needs, if any.
enum Syncer {
    None,
    Batch(BatchSyncer),
    Always(DurableSyncer),
}

/// Backend `file`: a durable, append-only log of [`Change`]s in front of an in-memory live set.
pub struct FileBackend {
    pub(crate) shared: Arc<Shared>,
    recovery: Recovery,
    syncer: Syncer,
    compactor: Mutex<Option<JoinHandle<()>>>,
}

impl FileBackend {
    pub(crate) fn start(shared: Shared, recovery: Recovery) -> Self {
        let shared = Arc::new(shared);
        let syncer = match shared.options.sync {
            SyncPolicy::Batch => Syncer::Batch(BatchSyncer::spawn(&shared)),
            // Without its thread, handed-off waits are not offered: writes wait themselves.
            SyncPolicy::Always => match DurableSyncer::spawn(&shared) {
                Ok(syncer) => Syncer::Always(syncer),
                Err(e) => {
                    tracing::warn!(error = %e, "writes will wait for their fsync on their own thread");
                    Syncer::None
                }
            },
            SyncPolicy::Never => Syncer::None,
        };
        FileBackend {
            shared,
            recovery,
            syncer,
            compactor: Mutex::new(None),
        }
    }

    /// What opening found and did: records replayed, tail cut, damage repaired, re-embedding.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// The vector index the live set searches with (`index`, `oversample`).
    pub fn index(&self) -> coda_backend_memory::IndexOptions {
        self.shared.inner.index()
    }

    /// Waits until every HNSW graph whose build has started (at open, for users past
    /// `hnsw_min_vectors`) serves searches; see [`InMemoryBackend::wait_for_index`].
    pub fn wait_for_index(&self) {
        self.shared.inner.wait_for_index();
    }

    /// How many users' searches an HNSW graph serves now.
    pub fn graphs_ready(&self) -> usize {
        self.shared.inner.graphs_ready()
    }

    /// HNSW graph builds started since open (a graph loaded from its file is not built).
    pub fn graph_builds(&self) -> u64 {
        self.shared.inner.graph_builds()
    }

    /// Saves every user's HNSW graph that changed since it was last saved or loaded, beside
    /// the log, as compactions and a clean shutdown do; returns how many were written.
    pub fn save_graphs(&self) -> usize {
        let _only_one = self.shared.compaction.lock();
        self.shared.save_graphs()
    }

    /// The log file's path.
    pub fn log_path(&self) -> PathBuf {
        self.shared.log.path().to_owned()
    }

    /// How many fsyncs of appended records have run since open: with `sync = "always"` and
    /// concurrent writers, fewer than the writes (group commit).
    pub fn fsyncs(&self) -> u64 {
        self.shared.log.fsyncs()
    }

    /// Whether everything appended so far is known to be on disk.
    pub fn all_durable(&self) -> bool {
        !self.shared.log.has_unsynced()
    }

    /// How many compactions rewrote the log since open, manual and background.
    pub fn compactions(&self) -> u64 {
        self.shared.compactions.load(Ordering::Relaxed)
    }

    /// Rewrites the log now to hold only live records, whatever the threshold says.
    pub fn compact(&self) -> Result<Compacted> {
        compact::compact(&self.shared)
    }

    /// Waits for a background compaction, if one is running.
    pub fn wait_for_compaction(&self) {
        if let Some(handle) = self.compactor.lock().take() {
            let _ = handle.join();
        }
    }

    /// Checks `change` with `validate` and the live set's own rules under the appender lock,
    /// so no other write slips in between; if there is something to do, logs the change,
    /// applies it to the live set and waits for durability as the sync policy says. Returns
    /// what applying it erased, or `None` when `validate` said there was nothing to do.
    fn write(
        &self,
        change: Change,
        validate: impl FnOnce() -> Result<bool>,
    ) -> Result<Option<Erased>> {
        let appending = self.shared.log.begin_append();
        let mut bytes = Vec::new();
        format::encode_change(&change, &mut bytes).ok_or_else(|| {
            Error::invalid(
                "memories",
                "too large for one log record (over 4 GiB encoded)",
            )
        })?;
        let shared = &self.shared;
        let (erased, lsn, compact) = {
            let mut appender = shared.log.lock();
            if !validate()? {
                return Ok(None);
            }
            shared.inner.validate(&change)?;
            let lsn = shared.log.append(&mut appender, &bytes, units(&change))?;
            appender.uncommitted = !matches!(change, Change::Commit(_));
            let applied = shared.inner.apply(change);
            if let Err(e) = &applied {
                // Validation under this lock makes this unreachable; if it happens anyway, the
                // log and the live set disagree and no further write may pretend otherwise.
                appender.failed = Some(format!("a logged change could not be applied: {e}"));
            }
            (applied?, lsn, shared.wants_compaction(&appender))
        };
        drop(appending);
        if compact {
            self.start_compaction();
        }
        if shared.options.sync == SyncPolicy::Always {
            let handed = match &self.syncer {
                Syncer::Always(syncer) => syncer.hand_off(lsn),
                _ => false,
            };
            if !handed {
                shared.log.wait_durable(lsn)?;
            }
        }
        Ok(Some(erased))
    }

    fn start_compaction(&self) {
        if self.shared.compacting.swap(true, Ordering::AcqRel) {
            return;
        }
        let shared = Arc::clone(&self.shared);
        let spawned = std::thread::Builder::new()
            .name("coda-file-compact".into())
            .spawn(move || {
                match compact::compact_if_wanted(&shared) {
                    Ok(None) => {}
                    Ok(Some(done)) => tracing::info!(
                        log = %shared.log.path().display(),
                        bytes_before = done.bytes_before,
                        bytes_after = done.bytes_after,
                        live = done.live,
                        "compacted the memory log"
                    ),
                    Err(e) => tracing::warn!(error = %e, "compaction failed; the log is unchanged"),
                }
                shared.compacting.store(false, Ordering::Release);
            });
        match spawned {
            Ok(handle) => {
                let previous = self.compactor.lock().replace(handle);
                if let Some(previous) = previous {
                    let _ = previous.join();
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not start compaction");
                self.shared.compacting.store(false, Ordering::Release);
            }
        }
    }

    fn check_dims(&self, record: &MemoryRecord) -> Result<()> {
        if record.embedding.len() != self.shared.header.dims {
            return Err(Error::invalid(
                "embedding",
                format!(
                    "has {} dimensions; this backend holds {}",
                    record.embedding.len(),
                    self.shared.header.dims
                ),
            ));
        }
        Ok(())
    }
}

impl MemoryBackend for FileBackend {
    fn insert(&self, scope: &Scope, record: MemoryRecord) -> Result<()> {
        self.check_dims(&record)?;
        if !scope.owner().owns(&record.memory) {
            return Err(Error::invalid(
                "user_id",
                "the memory is not owned by the scope's user",
            ));
        }
        self.write(Change::Insert(record), || Ok(true)).map(drop)
    }

    fn get(&self, scope: &Scope, id: MemoryId) -> Result<Option<MemoryRecord>> {
        self.shared.inner.get(scope, id)
    }

    fn update(&self, scope: &Scope, record: MemoryRecord) -> Result<()> {
        self.check_dims(&record)?;
        let id = record.memory.id;
        if !scope.owner().owns(&record.memory) {
            return Err(Error::memory_not_found(id));
        }
        self.write(Change::Update(record), || {
            match self.shared.inner.get(scope, id)? {
                Some(_) => Ok(true),
                None => Err(Error::memory_not_found(id)),
            }
        })
        .map(drop)
    }

    fn delete(&self, scope: &Scope, id: MemoryId, by: By) -> Result<bool> {
        // Deleting what is not there (in this scope) logs nothing.
        let at = coda_core::model::timestamp::now();
        self.write(Change::Delete { id, by, at }, || {
            Ok(self.shared.inner.get(scope, id)?.is_some())
        })
        .map(|done| done.is_some())
    }

    fn history(&self, scope: &Scope, id: MemoryId) -> Result<Option<Vec<Version>>> {
        self.shared.inner.history(scope, id)
    }

    fn list(
        &self,
        scope: &Scope,
        offset: usize,
        limit: usize,
        filter: Option<&Filter>,
    ) -> Result<Vec<Memory>> {
        self.shared.inner.list(scope, offset, limit, filter)
    }

    fn search(
        &self,
        scope: &Scope,
        query: &[f32],
        limit: usize,
        min_similarity: f32,
        filter: Option<&Filter>,
    ) -> Result<Vec<ScoredMemory>> {
        self.shared
            .inner
            .search(scope, query, limit, min_similarity, filter)
    }

    fn len(&self) -> Result<usize> {
        self.shared.inner.len()
    }

    fn count(&self, scope: &Scope) -> Result<usize> {
        self.shared.inner.count(scope)
    }

    fn owners(&self, tenant: &str) -> Result<Vec<(Owner, usize)>> {
        self.shared.inner.owners(tenant)
    }

    fn scan(&self, visit: &mut dyn FnMut(&MemoryRecord)) -> Result<()> {
        self.shared.inner.scan(visit)
    }

    fn scan_owner(&self, scope: &Scope, visit: &mut dyn FnMut(&MemoryRecord)) -> Result<()> {
        self.shared.inner.scan_owner(scope, visit)
    }

    fn replace_owner(&self, scope: &Scope, records: Vec<MemoryRecord>) -> Result<()> {
        let change = Change::ReplaceUser {
            owner: scope.owner().clone(),
            records,
        };
        self.write(change, || Ok(true)).map(drop)
    }

    fn erase_owner(&self, scope: &Scope) -> Result<Erased> {
        let change = Change::EraseUser(scope.owner().clone());
        let erased = self.write(change, || Ok(true))?.unwrap_or_default();
        if erased.memories > 0 || erased.sessions > 0 {
            // An erasure must not leave the user's text in the log's dead records: rewrite it
            // now, so the bytes are gone from disk when the call returns.
            self.wait_for_compaction();
            compact::compact(&self.shared)?;
        }
        Ok(erased)
    }

    fn apply_session(&self, change: SessionChange) -> Result<()> {
        self.write(Change::Session(change), || Ok(true)).map(drop)
    }

    fn persist(
        &self,
        scope: &Scope,
        records: Vec<MemoryRecord>,
        session: SessionState,
    ) -> Result<()> {
        for record in &records {
            self.check_dims(record)?;
            if !scope.owner().owns(&record.memory) {
                return Err(Error::invalid(
                    "user_id",
                    "the memory is not owned by the scope's user",
                ));
            }
        }
        self.write(Change::Persist { records, session }, || Ok(true))
            .map(drop)
    }

    fn commit(&self, seq: u64) -> Result<()> {
        self.write(Change::Commit(seq), || Ok(true)).map(drop)
    }

    fn committed(&self) -> Result<u64> {
        Ok(self.shared.inner.commit_mark().unwrap_or(0))
    }

    fn session(&self, key: &SessionKey) -> Result<Option<SessionInfo>> {
        self.shared.inner.session(key)
    }

    fn session_state(&self, key: &SessionKey) -> Result<Option<SessionState>> {
        self.shared.inner.session_state(key)
    }

    fn sessions(&self, tenant: &str, visit: &mut dyn FnMut(&SessionState)) -> Result<()> {
        self.shared.inner.sessions(tenant, visit)
    }

    fn owner_sessions(&self, scope: &Scope, visit: &mut dyn FnMut(&SessionState)) -> Result<()> {
        self.shared.inner.owner_sessions(scope, visit)
    }

    fn owner_histories(&self, scope: &Scope, visit: &mut dyn FnMut(&[Version])) -> Result<()> {
        self.shared.inner.owner_histories(scope, visit)
    }

    fn begin_backup(&self) -> Result<Box<dyn coda_core::backup::BackupCopy>> {
        self.capture_log()
    }

    fn import_history(&self, scope: &Scope, versions: Vec<Version>) -> Result<()> {
        self.append_history(scope, versions)
    }

    fn flush(&self) -> Result<()> {
        self.shared.log.sync_all_appended()
    }

    /// Quick calls only append to the page cache: with `sync = "always"` inside a deferral
    /// scope they hand their fsync wait to the caller; the other policies never wait on one.
    /// Not while a compaction runs: it holds the appender while it takes the live set and
    /// while it swaps files, and a write would wait for that on the caller's thread.
    fn quick_when_deferred(&self) -> bool {
        self.shared.compacting_now.load(Ordering::Acquire) == 0
    }
}

impl Drop for FileBackend {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.syncer, Syncer::None) {
            Syncer::Batch(syncer) => syncer.stop(),
            Syncer::Always(syncer) => syncer.stop(),
            Syncer::None => {}
        }
        self.wait_for_compaction();
        // A clean shutdown loses nothing, whatever the sync policy.
        if let Err(e) = self.shared.log.sync_all_appended() {
            tracing::error!(error = %e, "final fsync of the memory log failed");
        }
        // So the next open loads large users' graphs instead of rebuilding them.
        let _only_one = self.shared.compaction.lock();
        self.shared.save_graphs();
    }
}
