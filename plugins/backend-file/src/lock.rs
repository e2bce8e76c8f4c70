//! One process per directory: an advisory lock on `dir/LOCK`.
//!
//! `flock(2)` locks belong to the open file, so the kernel releases them when the process exits
//! or is killed: a crash never leaves a stale lock behind. The holder's pid is written into the
//! file only to make the "locked" message more useful.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use coda_core::{Error, Result};

/// The lock file's name inside the log directory.
pub const LOCK_FILE: &str = "LOCK";

/// Holds the directory's lock until dropped.
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the lock on `dir`, or fails at once with [`Error::Unavailable`] if another process
    /// (or another open backend in this one) holds it.
    pub fn acquire(dir: &Path) -> Result<DirLock> {
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io("open", &path, e))?;
        if let Err(e) = try_lock(&file) {
            if e.kind() != std::io::ErrorKind::WouldBlock {
                return Err(Error::io("lock", &path, e));
            }
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let by = if holder.is_empty() {
                "another process".to_owned()
            } else {
                format!("process {holder}")
            };
            return Err(Error::Unavailable(format!(
                "memory directory {} is locked by {by} (lock file {}); only one Coda may use a \
                 file backend directory at a time",
                dir.display(),
                path.display()
            )));
        }
        let _ = write_pid(&mut file);
        Ok(DirLock { _file: file })
    }
}

fn write_pid(file: &mut File) -> std::io::Result<()> {
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    writeln!(file, "{}", std::process::id())
}

#[cfg(unix)]
fn try_lock(file: &File) -> std::io::Result<()> {
    use rustix::fs::{flock, FlockOperation};
    flock(file, FlockOperation::NonBlockingLockExclusive).map_err(std::io::Error::from)
}

/// Without flock, a second process is not kept out; the README says so.
#[cfg(not(unix))]
fn try_lock(_file: &File) -> std::io::Result<()> {
    Ok(())
}
