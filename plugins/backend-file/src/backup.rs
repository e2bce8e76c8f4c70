//! Online backup: the log as it stood at one instant, copied while writes go on; and
//! importing a history, the other record an export brings that no [`Change`] carries.
//!
//! [`Change`]: coda_core::Change
//!
//! The log is append-only and a compaction swaps in a new file rather than rewriting the old
//! one, so holding the open file and its length at capture time is enough: those bytes never
//! change, and they end at a record boundary because they were read under the appender lock.
//! The copy reads them by position: a cloned handle shares the appender's file offset, which
//! every append moves to the end, so a seek-then-read copy would read from wherever the last
//! append left it.

use std::fs::File;
use std::io::{self, Read, Write};
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
        let from = Positional {
            file: &self.file,
            at: 0,
        };
        let mut out = File::create(&to).map_err(|e| Error::io("create", &to, e))?;
        let copied = io::copy(&mut from.take(self.len), &mut out)
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

/// Reads a file from `at` on by position, leaving the file's shared offset alone.
struct Positional<'a> {
    file: &'a File,
    at: u64,
}

impl Read for Positional<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        #[cfg(unix)]
        let n = std::os::unix::fs::FileExt::read_at(self.file, buf, self.at)?;
        #[cfg(windows)]
        let n = std::os::windows::fs::FileExt::seek_read(self.file, buf, self.at)?;
        self.at += n as u64;
        Ok(n)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Appends racing the copy move the shared offset to the end after every write; the copy
    /// must hold exactly the captured bytes all the same.
    #[test]
    fn a_copy_holds_the_captured_bytes_while_appends_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join(LOG_FILE);
        let captured: Vec<u8> = (0..4u32 << 20).map(|i| (i % 251) as u8).collect();
        std::fs::write(&source, &captured).unwrap();
        let file = Arc::new(crate::log::open_append(&source).unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let appender = {
            let (file, stop) = (Arc::clone(&file), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut appended = 0;
                while !stop.load(Ordering::Acquire) || appended == 0 {
                    (&*file).write_all(b"more").unwrap();
                    appended += 1;
                }
            })
        };
        let out = tempfile::tempdir().unwrap();
        let copy = Box::new(LogCopy {
            file: Arc::clone(&file),
            len: captured.len() as u64,
            source,
        });
        let written = copy.write_to(out.path());
        stop.store(true, Ordering::Release);
        appender.join().unwrap();
        assert_eq!(written.unwrap(), vec![PathBuf::from(LOG_FILE)]);
        assert!(std::fs::read(out.path().join(LOG_FILE)).unwrap() == captured);
    }
}
