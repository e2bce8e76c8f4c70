//! Restoring a backup (`coda restore DIR --to DATA_DIR`, and a cluster node bootstrapping from a
//! cluster snapshot): checks it against its manifest, then lays it out as
//! a data directory: the backend's files in DATA_DIR (what `[backends.file] dir` names) and the
//! snapshot store's in DATA_DIR/snapshots (what `[stores.fs] dir` names by default).

use std::path::{Path, PathBuf};

use coda::backup::{self, Manifest};
use coda::Error;

type Outcome = Result<(), Box<dyn std::error::Error>>;

/// What a data directory may hold for `--force` to replace it: Coda's own files only, so a
/// mistyped `--to` never deletes anything else.
const REPLACEABLE: [&str; 4] = ["memory.log", "memory.log.compact", "LOCK", "snapshots"];

/// Where a manifest path goes: backend files under `to`, snapshot files under `store`.
fn destination(to: &Path, store: &Path, path: &str) -> coda::Result<PathBuf> {
    let (top, rest) = path.split_once('/').ok_or_else(|| Error::Corrupt {
        path: PathBuf::from(backup::MANIFEST),
        reason: format!("lists `{path}`, outside backend/ and snapshots/"),
    })?;
    match top {
        backup::BACKEND_DIR => backup::inside(to, rest),
        backup::SNAPSHOTS_DIR => backup::inside(store, rest),
        _ => Err(Error::Corrupt {
            path: PathBuf::from(backup::MANIFEST),
            reason: format!("lists `{path}`, outside backend/ and snapshots/"),
        }),
    }
}

/// Empties `to` for `--force`, refusing if it holds anything Coda did not put there.
fn clear(to: &Path) -> coda::Result<()> {
    let entries = std::fs::read_dir(to).map_err(|e| Error::io("list", to, e))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", to, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !REPLACEABLE.contains(&name.as_str()) {
            return Err(Error::invalid(
                "--to",
                format!(
                    "{} holds `{name}`, which is not a Coda data file; not replacing it",
                    to.display()
                ),
            ));
        }
        names.push(entry.path());
    }
    for path in names {
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.map_err(|e| Error::io("remove", &path, e))?;
    }
    Ok(())
}

/// Verifies `dir` and restores it into `to`: an empty or new directory, or with `force` one
/// holding only Coda's data files, which are replaced.
pub fn restore(dir: &Path, to: &Path, force: bool) -> Outcome {
    let manifest = Manifest::verify(dir)?;
    if to.exists() {
        let occupied = std::fs::read_dir(to)
            .map_err(|e| Error::io("list", to, e))?
            .next()
            .is_some();
        if occupied && !force {
            return Err(Box::new(Error::invalid(
                "--to",
                format!(
                    "{} is not empty; stop the server and pass --force to replace its data",
                    to.display()
                ),
            )));
        }
        if occupied {
            clear(to)?;
        }
    }
    lay_out(dir, &manifest, to, &to.join(backup::SNAPSHOTS_DIR))?;
    eprintln!(
        "restored {} files of a `{}` backup at seq {} (epoch {}) into {}; point \
         [backends.file] dir at it and [stores.fs] dir at {}",
        manifest.files.len(),
        manifest.backend,
        manifest.seq,
        manifest.epoch,
        to.display(),
        to.join(backup::SNAPSHOTS_DIR).display()
    );
    Ok(())
}

/// Copies the files of the backup in `dir` (checked: `manifest` is its verified manifest)
/// into a data directory: the backend's into `to`, the snapshot store's into `store`; every
/// copy is checked against the manifest.
pub fn lay_out(dir: &Path, manifest: &Manifest, to: &Path, store: &Path) -> coda::Result<()> {
    std::fs::create_dir_all(to).map_err(|e| Error::io("create", to, e))?;
    for file in &manifest.files {
        let from = backup::inside(dir, &file.path)?;
        let into = destination(to, store, &file.path)?;
        if let Some(parent) = into.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io("create", parent, e))?;
        }
        std::fs::copy(&from, &into).map_err(|e| Error::io("copy", &from, e))?;
        let (bytes, sha256) = backup::digest(&into)?;
        if bytes != file.bytes || sha256 != file.sha256 {
            return Err(Error::Corrupt {
                path: into,
                reason: "differs from the backup after copying it".into(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_paths_stay_inside_the_data_dir() {
        let to = Path::new("/data");
        let store = Path::new("/data/snapshots");
        assert_eq!(
            destination(to, store, "backend/memory.log").ok(),
            Some(PathBuf::from("/data/memory.log"))
        );
        assert_eq!(
            destination(to, store, "snapshots/tenants/acme/x.json").ok(),
            Some(PathBuf::from("/data/snapshots/tenants/acme/x.json"))
        );
        for bad in [
            "memory.log",
            "other/x",
            "backend/../x",
            "snapshots//x",
            "backend/",
        ] {
            assert!(destination(to, store, bad).is_err(), "{bad}");
        }
    }
}
