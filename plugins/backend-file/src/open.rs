//! Opening a log directory: lock, replay, cut a torn tail, repair, re-embed.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use coda_backend_memory::{InMemoryBackend, IndexKind};
use coda_core::{Change, Embedder, Error, MemoryBackend, MemoryRecord, Result, SessionChange};

use crate::backend::{FileBackend, Shared};
use crate::compact::{self, LOG_FILE, TEMP_FILE};
use crate::config::{FileOptions, OnEmbedderChange};
use crate::format::Decoded;
use crate::format::Header;
use crate::graphs::{self, GraphsLoaded};
use crate::lock::DirLock;
use crate::log::Log;
use crate::recover::{self, Dropped};

/// What opening the log found and did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recovery {
    /// Record units replayed from the log.
    pub replayed: u64,
    /// Live memories after replay.
    pub live: usize,
    /// A torn or corrupt tail that was cut off.
    pub torn_tail: Option<Dropped>,
    /// Damage in the middle that `repair` skipped (the log was then rewritten without it).
    pub repaired: Vec<Dropped>,
    /// Valid records that could not be applied (e.g. an embedding of the wrong length).
    pub skipped: u64,
    /// Memories re-embedded because the embedder or `dims` changed.
    pub reembedded: Option<usize>,
    /// With `index = "hnsw"`: the users' graphs loaded from their files beside the log.
    pub graphs: GraphsLoaded,
}

impl FileBackend {
    /// Opens (or creates) the log in `options.dir` with vectors from `embedder`.
    pub fn open(options: FileOptions, embedder: Arc<dyn Embedder>) -> Result<FileBackend> {
        options.validate()?;
        let dir = options.dir.clone();
        fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
        let lock = DirLock::acquire(&dir)?;
        // A compaction that died before its rename left this; the log itself is whole.
        compact::remove_if_present(&dir.join(TEMP_FILE))?;
        let path = dir.join(LOG_FILE);
        let wanted = Header {
            fingerprint: embedder.fingerprint(),
            dims: embedder.dims(),
        };
        if !path.exists() {
            compact::write_fresh(&dir, &wanted, &[], &[], &[], None)?;
            compact::install_fresh(&dir)?;
        }
        let started = Instant::now();
        let (header, scan) = recover::open_log(&path)?;
        let index = options.index_options()?;
        let inner = InMemoryBackend::with_index(header.dims, index);
        // Saved graphs are attached after the replay; the others are built after that.
        inner.hold_graph_builds();
        let mut report = Recovery::default();
        // A single-record write comes with its vector beside it (see `replay_pipelined`).
        let mut apply = |decoded: Decoded, vector: Option<&[f32]>| match (decoded, vector) {
            (Decoded::Change(Change::Insert(r) | Change::Update(r)), Some(vector)) => {
                if inner.apply_replayed_write(r.memory, vector).is_err() {
                    report.skipped += 1;
                }
            }
            (Decoded::Change(change), _) => {
                if inner.apply_replayed(change).is_err() {
                    report.skipped += 1;
                }
            }
            (Decoded::History(versions), _) => inner.restore_history(versions),
        };
        // Once a commit marker has been read (a cluster node's log), changes wait for the next
        // one: those after the last are an operation a crash interrupted, which the node
        // applies again from the cluster's log, so they are cut off rather than kept twice.
        let mut held: Vec<Decoded> = Vec::new();
        let mut committed_end: Option<u64> = None;
        let hnsw = index.kind() == IndexKind::Hnsw;
        let (replayed, read_graphs) = std::thread::scope(|threads| {
            // Saved graphs are read and parsed while the log replays: they need only the
            // index's options, and a large user's graph costs about what their replay does.
            let reading = hnsw.then(|| {
                std::thread::Builder::new()
                    .name("coda-file-graphs".into())
                    .spawn_scoped(threads, || graphs::read_all(&dir, &inner))
            });
            let replayed = scan.replay_pipelined(options.repair, |mut decoded, vector, end| {
                let commit = matches!(decoded, Decoded::Change(Change::Commit(_)));
                if commit {
                    for decoded in held.drain(..) {
                        apply(decoded, None);
                    }
                    apply(decoded, None);
                    committed_end = Some(end);
                } else if committed_end.is_some() {
                    // Held past this batch: the write takes its vector back.
                    if let (Decoded::Change(Change::Insert(r) | Change::Update(r)), Some(v)) =
                        (&mut decoded, vector)
                    {
                        r.embedding = v.to_vec();
                    }
                    held.push(decoded);
                } else {
                    apply(decoded, vector);
                }
            });
            let read = reading.map(|spawned| match spawned {
                Ok(thread) => thread.join().unwrap_or_else(|_| {
                    Err(Error::Unavailable(
                        "the thread reading the saved graphs panicked".into(),
                    ))
                }),
                // No thread to be had: read them now.
                Err(_) => graphs::read_all(&dir, &inner),
            });
            (replayed, read)
        });
        let mut replayed = replayed?;
        if let (Some(end), false) = (committed_end, held.is_empty()) {
            tracing::warn!(
                log = %path.display(),
                records = held.len(),
                "cut the changes of an operation that did not commit off the memory log; the \
                 cluster's log applies it again"
            );
            let held_units: u64 = held.iter().map(recover::decoded_units).sum();
            replayed.units = replayed.units.saturating_sub(held_units);
            replayed.end = end;
            replayed.torn_tail = None;
            cut_tail(&path, end)?;
        }
        report.replayed = replayed.units;
        report.live = inner.len()?;
        report.torn_tail = replayed.torn_tail.clone();
        report.repaired = replayed.repaired.clone();
        let mut rewrite = false;
        if let Some(tail) = &replayed.torn_tail {
            tracing::warn!(
                log = %path.display(),
                offset = tail.offset,
                bytes = tail.bytes,
                records = tail.records,
                reason = %tail.reason,
                "cut a torn or corrupt tail off the memory log: dropped {} bytes holding {} \
                 unacknowledged record(s)",
                tail.bytes,
                tail.records
            );
            cut_tail(&path, replayed.end)?;
        }
        for damage in &replayed.repaired {
            tracing::warn!(
                log = %path.display(),
                offset = damage.offset,
                bytes = damage.bytes,
                records = damage.records,
                reason = %damage.reason,
                "repair: skipped damaged bytes in the middle of the memory log"
            );
            rewrite = true;
        }
        if report.skipped > 0 {
            tracing::warn!(
                skipped = report.skipped,
                "valid log records could not be applied"
            );
        }
        let (header, inner) = if header != wanted {
            rewrite = true;
            let (records, sessions) = inner.live();
            let records =
                reembed_or_refuse(&options, &path, &header, &wanted, records, &*embedder)?;
            report.reembedded = Some(records.len());
            let fresh = InMemoryBackend::with_index(wanted.dims, index);
            fresh.hold_graph_builds();
            for record in records {
                fresh.apply(Change::Insert(record))?;
            }
            for versions in inner.histories() {
                fresh.restore_history(versions);
            }
            for session in sessions {
                fresh.apply(Change::Session(SessionChange::Put(session)))?;
            }
            if let Some(seq) = inner.commit_mark() {
                fresh.apply(Change::Commit(seq))?;
            }
            (wanted, fresh)
        } else {
            (header, inner)
        };
        let (end, units) = if rewrite {
            let (records, sessions) = inner.live();
            let histories = inner.histories();
            let committed = inner.commit_mark();
            let (_, len) =
                compact::write_fresh(&dir, &header, &records, &sessions, &histories, committed)?;
            compact::install_fresh(&dir)?;
            let units = records.len() + sessions.len() + histories.len();
            (len, units as u64)
        } else {
            (replayed.end, replayed.units)
        };
        let graphs_on_disk = match read_graphs {
            Some(Ok(read)) => {
                let (loaded, on_disk) = graphs::attach_all(read, &inner);
                report.graphs = loaded;
                on_disk
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "could not list saved HNSW graphs; rebuilding");
                HashMap::new()
            }
            None => HashMap::new(),
        };
        inner.release_graph_builds();
        tracing::info!(
            log = %path.display(),
            memories = report.live,
            records = report.replayed,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "opened the memory log"
        );
        let log = Log::open(&path, end, units)?;
        Ok(FileBackend::start(
            Shared::new(options, header, inner, log, lock, graphs_on_disk),
            report,
        ))
    }
}

/// Cuts the log at `end` and makes the cut durable, so appends follow the last valid record.
fn cut_tail(path: &Path, end: u64) -> Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| Error::io("open", path, e))?;
    file.set_len(end)
        .map_err(|e| Error::io("truncate", path, e))?;
    file.sync_all().map_err(|e| Error::io("fsync", path, e))
}

/// The stored memories re-embedded with `embedder`, or the refusal the options ask for.
fn reembed_or_refuse(
    options: &FileOptions,
    path: &Path,
    stored: &Header,
    wanted: &Header,
    mut records: Vec<MemoryRecord>,
    embedder: &dyn Embedder,
) -> Result<Vec<MemoryRecord>> {
    if options.on_embedder_change == OnEmbedderChange::Refuse {
        return Err(Error::config(
            "backends.file.on_embedder_change",
            format!(
                "{} holds {} memories embedded by `{}` ({} dims) but the configured embedder is \
                 `{}` ({} dims); set it to \"reembed\" to re-embed them, or configure the old \
                 embedder",
                path.display(),
                records.len(),
                stored.fingerprint,
                stored.dims,
                wanted.fingerprint,
                wanted.dims
            ),
        ));
    }
    tracing::warn!(
        log = %path.display(),
        from = %stored.fingerprint,
        to = %wanted.fingerprint,
        memories = records.len(),
        "the embedder changed since the log was written; re-embedding every memory"
    );
    const BATCH: usize = 256;
    let total = records.len();
    let mut done = 0;
    let mut last_report = Instant::now();
    for chunk in records.chunks_mut(BATCH) {
        let texts: Vec<&str> = chunk.iter().map(|r| r.memory.content.as_str()).collect();
        let vectors = embedder.embed_batch(&texts)?;
        for (record, vector) in chunk.iter_mut().zip(vectors) {
            record.embedding = vector;
        }
        done += chunk.len();
        if last_report.elapsed().as_secs() >= 2 || done == total {
            tracing::info!(done, total, "re-embedding memories");
            last_report = Instant::now();
        }
    }
    Ok(records)
}
