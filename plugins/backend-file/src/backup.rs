//! Online backup: the log as it stood at one instant, copied while writes go on; and
//! importing a history, the other record an export brings that no [`Change`] carries.
//!
//! [`Change`]: coda_core::Change
//!
//! The log is append-only and a compaction swaps in a new file rather than rewriting the old
//! one, so holding the open file and its length at capture time is enough: those bytes never
//! change, and they end at a record boundary because they were read under the appender lock.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use coda_core::backup::BackupCopy;
use coda_core::{Error, Result, Scope, Version};

use crate::backend::FileBackend;
use crate::compact::LOG_FILE;
use crate::config::SyncPolicy;
use crate::format;

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

impl FileBackend {
    /// The open log and its length, a record boundary: what a backup copies.
    pub(crate) fn capture_log(&self) -> Result<Box<dyn BackupCopy>> {
        let appender = self.shared.log.lock();
        if let Some(reason) = &appender.failed {
            return Err(Error::Unavailable(format!(
                "the memory log is unusable: {reason}"
            )));
        }
        Ok(Box::new(LogCopy {
            file: Arc::clone(&appender.file),
            len: appender.offset,
            source: self.shared.log.path().to_owned(),
        }))
    }

    /// Logs `versions` as one memory's history and stores it, checked under the appender lock.
    pub(crate) fn append_history(&self, scope: &Scope, versions: Vec<Version>) -> Result<()> {
        let mut bytes = Vec::new();
        format::encode_history(&versions, &mut bytes).ok_or_else(|| {
            Error::invalid(
                "versions",
                "too large for one log record (over 4 GiB encoded)",
            )
        })?;
        let shared = &self.shared;
        let appending = shared.log.begin_append();
        let lsn = {
            let mut appender = shared.log.lock();
            shared.inner.check_history(scope, &versions)?;
            let lsn = shared.log.append(&mut appender, &bytes, 1)?;
            shared.inner.import_history_checked(scope, versions)?;
            lsn
        };
        drop(appending);
        if shared.options.sync == SyncPolicy::Always {
            shared.log.wait_durable(lsn)?;
        }
        Ok(())
    }
}
