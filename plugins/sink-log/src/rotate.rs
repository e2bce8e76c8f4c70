//! The log file itself: appended to line by line by the writer thread, rotated between two
//! lines once it reaches `max_bytes`, its rotated copies compressed by a thread of their own.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use crate::archive::Archive;

/// An appended log that rotates itself.
pub struct RotatingFile {
    path: PathBuf,
    out: BufWriter<File>,
    /// Bytes in the live file.
    size: u64,
    /// `0` never rotates.
    max_bytes: u64,
    /// The size past which the next rotation is tried: `max_bytes`, or more after a rotation
    /// failed (so a full disk is not retried at every line).
    threshold: u64,
    archive: Archive,
    /// The compression of the last rotated file (or of leftovers found at open), if running.
    compressor: Option<JoinHandle<()>>,
}

impl RotatingFile {
    /// Opens (creating) the log at `path`, finishing whatever a crash left among its rotated
    /// files: leftovers are compressed in the background.
    pub fn open(path: &Path, max_bytes: u64, keep: usize) -> io::Result<RotatingFile> {
        let archive = Archive::new(path, keep);
        let leftovers = archive.recover()?;
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)?;
        let mut size = file.metadata()?.len();
        if size > 0 && !ends_with_newline(&mut file, size)? {
            // A crash cut the last line short: end it, so the next event starts a line of its
            // own instead of being glued to (and lost with) the broken one.
            file.write_all(b"\n")?;
            size += 1;
        }
        let mut log = RotatingFile {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
            size,
            max_bytes,
            threshold: max_bytes,
            archive,
            compressor: None,
        };
        log.compress_in_background(leftovers);
        Ok(log)
    }

    /// Appends one line (`line` has no newline), rotating first if it would pass `max_bytes`.
    /// A line longer than `max_bytes` gets a file of its own: lines are never split.
    pub fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        let len = line.len() as u64 + 1;
        if self.max_bytes > 0 && self.size > 0 && self.size + len > self.threshold {
            self.rotate();
        }
        self.out.write_all(line)?;
        self.out.write_all(b"\n")?;
        self.size += len;
        Ok(())
    }

    /// Hands buffered lines to the operating system.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Flushes and waits for a running compression, at shutdown.
    pub fn finish(&mut self) -> io::Result<()> {
        let flushed = self.out.flush();
        self.wait_for_compressor();
        flushed
    }

    /// Rotates, or logs why it cannot and keeps appending to the current file: an event is
    /// never dropped for want of a rotation.
    fn rotate(&mut self) {
        if let Err(e) = self.try_rotate() {
            tracing::error!(
                path = %self.path.display(),
                error = %e,
                "log sink cannot rotate; it keeps appending and tries again later"
            );
            self.threshold = self.size.saturating_add(self.max_bytes);
        }
    }

    fn try_rotate(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()?;
        self.wait_for_compressor();
        if self.archive.plain(1).exists() {
            // The last compression failed: `<path>.1` must not be overwritten by the rename.
            self.archive.compress(1)?;
        }
        self.archive.shift()?;
        self.archive.rotate_in()?;
        let fresh = match OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
        {
            Ok(file) => file,
            Err(e) => {
                // Put the file back so it stays the live log that our handle still writes to.
                std::fs::rename(self.archive.plain(1), &self.path)?;
                return Err(e);
            }
        };
        self.out = BufWriter::new(fresh);
        self.size = 0;
        self.threshold = self.max_bytes;
        self.compress_in_background(vec![1]);
        Ok(())
    }

    fn wait_for_compressor(&mut self) {
        if let Some(compressor) = self.compressor.take() {
            if compressor.join().is_err() {
                tracing::error!("the log sink's compressor panicked");
            }
        }
    }

    /// Compresses the rotated files numbered `numbers` on the compressor thread, so writing
    /// goes on meanwhile.
    fn compress_in_background(&mut self, numbers: Vec<usize>) {
        if numbers.is_empty() {
            return;
        }
        let archive = self.archive.clone();
        let job = move || {
            for n in numbers {
                if let Err(e) = archive.compress(n) {
                    tracing::error!(
                        file = %archive.plain(n).display(),
                        error = %e,
                        "log sink cannot compress a rotated file; it stays uncompressed"
                    );
                }
            }
        };
        let spawned = std::thread::Builder::new()
            .name("coda-sink-log-zstd".into())
            .spawn(job.clone());
        match spawned {
            Ok(handle) => self.compressor = Some(handle),
            // No thread to be had: compress here rather than leave the files plain.
            Err(_) => job(),
        }
    }
}

fn ends_with_newline(file: &mut File, size: u64) -> io::Result<bool> {
    file.seek(SeekFrom::Start(size - 1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}
