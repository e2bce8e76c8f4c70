//! Online backup (SPEC §13): a copy of the backend and the snapshot store equal to the state at
//! one point of the event sequence, taken while writes go on, with a manifest that says which
//! point (`seq`) and lets a restore check every file.
//!
//! Consistency comes from the manager's write gate: every writer the server runs holds it
//! shared for the whole of an operation (the backend change *and* its event), and a backup
//! holds it exclusively only while it reads `seq`, asks the backend for a [`BackupCopy`] (for
//! the file backend: the open log and its length, a record boundary) and copies the snapshot
//! files. The backend's bytes are then copied with writes flowing again.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::config::Config;
use crate::export::EmbedderInfo;
use crate::manager::MemoryManager;
use crate::model::timestamp;
use crate::{Error, Result};

/// The manifest's file name inside a backup directory.
pub const MANIFEST: &str = "manifest.json";

/// The `format` every manifest names.
pub const FORMAT: &str = "coda-backup";

/// The manifest version this Coda writes and reads.
pub const VERSION: u32 = 1;

/// Where the backend's files go inside a backup.
pub const BACKEND_DIR: &str = "backend";

/// Where the snapshot store's files go inside a backup.
pub const SNAPSHOTS_DIR: &str = "snapshots";

/// A backend's state captured at one instant, to be written out after writes resume.
pub trait BackupCopy: Send {
    /// Writes the captured state into `dir` (which exists and is empty); returns the files
    /// written, relative to `dir`.
    fn write_to(self: Box<Self>, dir: &Path) -> Result<Vec<PathBuf>>;
}

/// One file of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupFile {
    /// Its path inside the backup directory, `/`-separated.
    pub path: String,
    /// Its length.
    pub bytes: u64,
    /// SHA-256 of its bytes, lowercase hex.
    pub sha256: String,
}

/// What a backup holds and which point of the event sequence it equals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`VERSION`].
    pub version: u32,
    /// The last event whose change the backup holds: it holds every change of the events up
    /// to this `seq` and none after.
    pub seq: u64,
    /// The epoch `seq` counts in.
    pub epoch: Uuid,
    /// When the backup was taken.
    #[serde(with = "timestamp")]
    pub created_at: DateTime<Utc>,
    /// The backend's registered name.
    pub backend: String,
    /// The embedder of the stored vectors.
    pub embedder: EmbedderInfo,
    /// Every file, with its size and checksum.
    pub files: Vec<BackupFile>,
}

impl Manifest {
    /// Reads and checks `dir`'s manifest, then every file it lists: present, of its size and
    /// checksum. The error names the first file that is not.
    pub fn verify(dir: &Path) -> Result<Manifest> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
        let manifest: Manifest = serde_json::from_str(&text).map_err(|e| Error::Corrupt {
            path: path.clone(),
            reason: format!("not a Coda backup manifest: {e}"),
        })?;
        if manifest.format != FORMAT || manifest.version != VERSION {
            return Err(Error::Corrupt {
                path,
                reason: format!(
                    "is `{}` version {}; this Coda reads `{FORMAT}` version {VERSION}",
                    manifest.format, manifest.version
                ),
            });
        }
        for file in &manifest.files {
            let at = inside(dir, &file.path)?;
            let (bytes, sha256) = digest(&at)?;
            if bytes != file.bytes || sha256 != file.sha256 {
                return Err(Error::Corrupt {
                    path: at,
                    reason: format!(
                        "is {bytes} bytes with SHA-256 {sha256}; the manifest says {} bytes, {}",
                        file.bytes, file.sha256
                    ),
                });
            }
        }
        Ok(manifest)
    }
}

/// `relative` (a manifest path) under `dir`, refusing anything that would leave it.
pub fn inside(dir: &Path, relative: &str) -> Result<PathBuf> {
    let mut out = dir.to_owned();
    for part in relative.split('/') {
        if part.is_empty() || part == "." || part == ".." || part.contains('\\') {
            return Err(Error::Corrupt {
                path: dir.join(MANIFEST),
                reason: format!("lists `{relative}`, which is not a plain relative path"),
            });
        }
        out.push(part);
    }
    Ok(out)
}

/// Length and SHA-256 (hex) of the file at `path`.
pub fn digest(path: &Path) -> Result<(u64, String)> {
    let mut file = File::open(path).map_err(|e| Error::io("open", path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| Error::io("read", path, e))?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        hasher.update(&buf[..n]);
    }
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((bytes, hex))
}

/// Copies every file under `from` into `to` (created), keeping the tree; returns the files,
/// relative to `to`. A missing `from` copies nothing.
pub fn copy_tree(from: &Path, to: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if !from.exists() {
        return Ok(out);
    }
    let mut pending = vec![PathBuf::new()];
    while let Some(rel) = pending.pop() {
        let dir = from.join(&rel);
        std::fs::create_dir_all(to.join(&rel))
            .map_err(|e| Error::io("create", to.join(&rel), e))?;
        let entries = std::fs::read_dir(&dir).map_err(|e| Error::io("list", &dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("list", &dir, e))?;
            let kind = entry
                .file_type()
                .map_err(|e| Error::io("stat", entry.path(), e))?;
            let name = rel.join(entry.file_name());
            if kind.is_dir() {
                pending.push(name);
            } else if kind.is_file() {
                std::fs::copy(entry.path(), to.join(&name))
                    .map_err(|e| Error::io("copy", entry.path(), e))?;
                out.push(name);
            }
        }
    }
    Ok(out)
}

/// `path` as a manifest path: `/`-separated, UTF-8.
fn manifest_path(path: &Path) -> Result<String> {
    let parts: Option<Vec<&str>> = path.components().map(|c| c.as_os_str().to_str()).collect();
    parts
        .map(|p| p.join("/"))
        .ok_or_else(|| Error::invalid("dir", format!("{} is not a UTF-8 path", path.display())))
}

impl MemoryManager {
    /// Writes a consistent backup into `dir` (which must exist and be empty): the backend's
    /// files under `backend/`, the snapshot store's under `snapshots/`, and
    /// [`MANIFEST`], written last (a directory without one is an unfinished backup). Writers
    /// holding [`write_gate`](Self::write_gate) pause only while the state is captured.
    pub fn backup(&self, dir: &Path) -> Result<Manifest> {
        let backend_dir = dir.join(BACKEND_DIR);
        std::fs::create_dir(&backend_dir).map_err(|e| Error::io("create", &backend_dir, e))?;
        let store_dir = Config::options(&self.config().stores, &self.config().snapshots.store)
            .get("dir")
            .and_then(serde_json::Value::as_str)
            .map(PathBuf::from);
        let waited = std::time::Instant::now();
        let (seq, epoch, copy, snapshots, paused) = {
            let _paused = self.pause_writes();
            let held = std::time::Instant::now();
            let seq = self.bus().latest_seq();
            let copy = self.backend().begin_backup()?;
            let snapshots = match &store_dir {
                Some(from) => copy_tree(from, &dir.join(SNAPSHOTS_DIR))?,
                None => Vec::new(),
            };
            (seq, self.bus().epoch(), copy, snapshots, held)
        };
        tracing::info!(
            seq,
            waited_ms = (paused - waited).as_secs_f64() * 1e3,
            paused_ms = paused.elapsed().as_secs_f64() * 1e3,
            "backup captured the state; writes flow again"
        );
        let mut files = Vec::new();
        for rel in copy.write_to(&backend_dir)? {
            files.push(Path::new(BACKEND_DIR).join(rel));
        }
        for rel in snapshots {
            files.push(Path::new(SNAPSHOTS_DIR).join(rel));
        }
        let mut listed = Vec::with_capacity(files.len());
        for rel in files {
            let (bytes, sha256) = digest(&dir.join(&rel))?;
            listed.push(BackupFile {
                path: manifest_path(&rel)?,
                bytes,
                sha256,
            });
        }
        listed.sort_by(|a, b| a.path.cmp(&b.path));
        let embedder = self.embedder();
        let manifest = Manifest {
            format: FORMAT.to_owned(),
            version: VERSION,
            seq,
            epoch,
            created_at: timestamp::now(),
            backend: self.config().memory.backend.clone(),
            embedder: EmbedderInfo {
                name: embedder.name().to_owned(),
                fingerprint: embedder.fingerprint(),
                dims: embedder.dims(),
            },
            files: listed,
        };
        let text = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| Error::invalid("manifest", e.to_string()))?;
        let temp = dir.join(format!("{MANIFEST}.tmp"));
        let mut file = File::create(&temp).map_err(|e| Error::io("create", &temp, e))?;
        file.write_all(&text)
            .and_then(|()| file.sync_all())
            .map_err(|e| Error::io("write", &temp, e))?;
        std::fs::rename(&temp, dir.join(MANIFEST)).map_err(|e| Error::io("rename", &temp, e))?;
        Ok(manifest)
    }
}
