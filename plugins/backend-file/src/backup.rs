//! Online backup: the log as it stood at one instant, copied while writes go on.
//!
//! The log is append-only and a compaction swaps in a new file rather than rewriting the old
//! one, so holding the open file and its length at capture time is enough: those bytes never
//! change, and they end at a record boundary because they were read under the appender lock.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use coda_core::backup::BackupCopy;
use coda_core::{Error, Result};

use crate::compact::LOG_FILE;

/// The log file and how much of it the backup holds.
pub(crate) struct LogCopy {
    pub file: Arc<File>,
    pub len: u64,
    pub source: PathBuf,
}

impl BackupCopy for LogCopy {
    fn write_to(self: Box<Self>, dir: &Path) -> Result<Vec<PathBuf>> {
        let to = dir.join(LOG_FILE);
        // A handle of our own, so seeking it cannot disturb the appender (which writes in
        // append mode, wherever the offset is).
        let mut from = self
            .file
            .try_clone()
            .map_err(|e| Error::io("open", &self.source, e))?;
        from.seek(SeekFrom::Start(0))
            .map_err(|e| Error::io("seek", &self.source, e))?;
        let mut out = File::create(&to).map_err(|e| Error::io("create", &to, e))?;
        let copied = std::io::copy(&mut from.take(self.len), &mut out)
            .map_err(|e| Error::io("copy", &self.source, e))?;
        if copied != self.len {
            return Err(Error::Corrupt {
                path: self.source,
                reason: format!("held {copied} bytes where the backup expected {}", self.len),
            });
        }
        out.flush()
            .and_then(|()| out.sync_all())
            .map_err(|e| Error::io("fsync", &to, e))?;
        Ok(vec![PathBuf::from(LOG_FILE)])
    }
}
