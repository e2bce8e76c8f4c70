//! Cluster snapshots (SPEC §12) on the server's side: the node holding the lease writes an
//! online backup into the object store every `cluster.snapshot_every_s`, and a node whose data
//! the stream no longer reaches (it is behind the stream's first sequence) replaces its data
//! with the newest snapshot before it opens, then applies the stream from there.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use coda::backup::{Manifest, MANIFEST};
use coda::{Config, Error, MemoryManager};
use coda_cluster_nats::EVENTS_PER_ENTRY;

use super::Node;

/// The backend that can bootstrap: its files are what a backup holds.
const FILE_BACKEND: &str = "file";

/// `path` with `.suffix` appended to its file name.
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "data".into());
    path.with_file_name(format!("{name}.{suffix}"))
}

/// The `dir` option of plugin `name` in a section of the configuration.
fn dir_option(section: &BTreeMap<String, serde_json::Value>, name: &str) -> Option<PathBuf> {
    Config::options(section, name)
        .get("dir")
        .and_then(serde_json::Value::as_str)
        .map(PathBuf::from)
}

/// The file backend's directory, when that is the backend.
fn backend_dir(config: &Config) -> Option<PathBuf> {
    (config.memory.backend == FILE_BACKEND)
        .then(|| dir_option(&config.backends, FILE_BACKEND))
        .flatten()
}

/// Whether this node has no data yet: a `file` backend whose directory is missing or empty.
pub(crate) fn fresh(config: &Config) -> bool {
    backend_dir(config).is_some_and(|dir| empty(&dir))
}

fn empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).map_or(true, |mut entries| entries.next().is_none())
}

/// Replaces this node's data with the newest cluster snapshot. The old data is moved aside
/// (`<dir>.stale-<unix seconds>`), never deleted.
pub(crate) async fn bootstrap(config: &Config, node: &Node, committed: u64) -> coda::Result<()> {
    let first = node.stream_first();
    let applied = committed / EVENTS_PER_ENTRY;
    let Some(dir) = backend_dir(config) else {
        return Err(Error::Unavailable(format!(
            "this node has applied stream sequence {applied}, but the stream now starts at \
             {first}: the entries in between are gone, and only the `file` backend can \
             bootstrap from a cluster snapshot"
        )));
    };
    let unavailable = |e: coda_cluster_nats::ClusterError| Error::Unavailable(e.to_string());
    let snapshots = node.snapshots().list().await.map_err(unavailable)?;
    let Some(newest) = snapshots.last().filter(|s| s.applied + 1 >= first) else {
        return Err(Error::Unavailable(format!(
            "this node has applied stream sequence {applied}, but the stream now starts at \
             {first}, and no cluster snapshot covers the entries in between (newest: {}); \
             copy the data directory of an up-to-date node (stopped) and start from that",
            snapshots
                .last()
                .map_or("none".to_owned(), |s| format!("sequence {}", s.applied))
        )));
    };
    let staging = beside(&dir, "bootstrap");
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(|e| Error::io("remove", &staging, e))?;
    }
    std::fs::create_dir_all(&staging).map_err(|e| Error::io("create", &staging, e))?;
    node.snapshots()
        .download(newest, &staging)
        .await
        .map_err(unavailable)?;
    let manifest = Manifest::verify(&staging)?;
    if manifest.epoch != node.epoch() || manifest.backend != FILE_BACKEND {
        return Err(Error::Corrupt {
            path: staging.join(MANIFEST),
            reason: format!(
                "is a `{}` backup of epoch {}; this node needs a `file` backup of the stream's \
                 epoch {}",
                manifest.backend,
                manifest.epoch,
                node.epoch()
            ),
        });
    }
    let store = dir_option(&config.stores, &config.snapshots.store)
        .unwrap_or_else(|| dir.join(coda::backup::SNAPSHOTS_DIR));
    let stamp = format!("stale-{}", chrono::Utc::now().timestamp());
    for old in [&dir, &store] {
        if !empty(old) {
            let aside = beside(old, &stamp);
            std::fs::rename(old, &aside).map_err(|e| Error::io("rename", old, e))?;
            tracing::warn!(
                from = %old.display(),
                to = %aside.display(),
                "moved this node's stale data aside"
            );
        }
    }
    crate::restore::lay_out(&staging, &manifest, &dir, &store)?;
    std::fs::remove_dir_all(&staging).map_err(|e| Error::io("remove", &staging, e))?;
    tracing::info!(
        snapshot = newest.applied,
        stream_first = first,
        "bootstrapped from the newest cluster snapshot; applying the stream from there"
    );
    Ok(())
}

/// Every `cluster.snapshot_every_s`, takes or renews the lease and, holding it, uploads an
/// online backup of this node; stops when the server is gone.
pub(crate) fn spawn_writer(node: Node, manager: Weak<MemoryManager>, config: &Config) {
    let every = Duration::from_secs(config.cluster.snapshot_every_s);
    let keep = config.cluster.snapshot_keep;
    let staging = backend_dir(config).map_or_else(
        || std::env::temp_dir().join(format!("coda-cluster-snapshot-{}", uuid::Uuid::new_v4())),
        |dir| beside(&dir, "cluster-snapshot"),
    );
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        let mut written = 0u64;
        loop {
            tick.tick().await;
            let Some(manager) = manager.upgrade() else {
                return;
            };
            match node.snapshots().hold_lease().await {
                Ok(true) => match write(&node, manager, &staging, keep, written).await {
                    Ok(Some(applied)) => written = applied,
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "writing a cluster snapshot failed"),
                },
                Ok(false) => {}
                Err(e) => tracing::debug!(error = %e, "no snapshot lease this round"),
            }
        }
    });
}

/// Writes one snapshot, unless nothing was applied since the last; returns its sequence.
async fn write(
    node: &Node,
    manager: Arc<MemoryManager>,
    staging: &Path,
    keep: usize,
    written: u64,
) -> coda::Result<Option<u64>> {
    // Read before the backup: the backup holds at least every entry up to here.
    let applied = manager.backend().committed()? / EVENTS_PER_ENTRY;
    if applied == 0 || applied == written {
        return Ok(None);
    }
    let dir = staging.to_owned();
    let manifest = tokio::task::spawn_blocking(move || {
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| Error::io("remove", &dir, e))?;
        }
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
        manager.backup(&dir)
    })
    .await
    .map_err(|e| Error::Unavailable(format!("the backup task failed: {e}")))??;
    let mut files: Vec<String> = manifest.files.iter().map(|f| f.path.clone()).collect();
    files.push(MANIFEST.to_owned());
    let uploaded = node
        .snapshots()
        .upload(applied, staging, &files, keep)
        .await
        .map_err(|e| Error::Unavailable(e.to_string()));
    if let Err(e) = std::fs::remove_dir_all(staging) {
        tracing::debug!(error = %e, "the snapshot's staging directory stays");
    }
    uploaded?;
    tracing::info!(applied, files = files.len(), "cluster snapshot written");
    Ok(Some(applied))
}
