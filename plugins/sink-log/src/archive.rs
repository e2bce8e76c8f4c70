//! The rotated files beside a log: `<path>.1.zst` (newest) to `<path>.<keep>.zst` (oldest), and
//! the crash-safe steps that make them.
//!
//! Every step leaves a state that [`Archive::recover`] can finish or clean up:
//! - rotating renames `<path>` to `<path>.1` (one atomic rename, the file already fsynced);
//! - compressing writes `<path>.N.zst.tmp`, fsyncs it, renames it to `<path>.N.zst`, fsyncs
//!   the directory and only then deletes the plain `<path>.N`. So a `.zst.tmp` is always
//!   incomplete (deleted, the plain file is still there), and a plain file beside its `.zst` is
//!   a copy already safe (deleted);
//! - shifting renames `.N.zst` to `.N+1.zst` from the oldest down; a crash between two renames
//!   leaves a gap in the numbers, never two files with one number.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

/// zstd level for rotated files: the library default, fast and about 10x on JSON lines.
const LEVEL: i32 = 3;

/// The rotated files of one log.
#[derive(Debug, Clone)]
pub struct Archive {
    base: PathBuf,
    keep: usize,
}

impl Archive {
    /// The rotated files of the log at `base`, at most `keep` of them.
    pub fn new(base: &Path, keep: usize) -> Archive {
        Archive {
            base: base.to_path_buf(),
            keep,
        }
    }

    fn with_suffix(&self, suffix: &str) -> PathBuf {
        let mut name = self.base.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    }

    /// `<path>.N`: a rotated file not yet compressed.
    pub fn plain(&self, n: usize) -> PathBuf {
        self.with_suffix(&format!(".{n}"))
    }

    /// `<path>.N.zst`: a rotated, compressed file.
    pub fn compressed(&self, n: usize) -> PathBuf {
        self.with_suffix(&format!(".{n}.zst"))
    }

    fn partial(&self, n: usize) -> PathBuf {
        self.with_suffix(&format!(".{n}.zst.tmp"))
    }

    /// The numbers in use beside the log (plain, compressed or partial), ascending.
    fn numbers(&self) -> io::Result<Vec<usize>> {
        let dir = parent(&self.base);
        let Some(stem) = self.base.file_name().and_then(|n| n.to_str()) else {
            return Ok(Vec::new());
        };
        let prefix = format!("{stem}.");
        let mut numbers = Vec::new();
        for entry in fs::read_dir(dir)? {
            let name = entry?.file_name();
            let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
                continue;
            };
            let digits = rest
                .strip_suffix(".zst.tmp")
                .or_else(|| rest.strip_suffix(".zst"))
                .unwrap_or(rest);
            if let Ok(n) = digits.parse::<usize>() {
                if n > 0 && digits == n.to_string() && !numbers.contains(&n) {
                    numbers.push(n);
                }
            }
        }
        numbers.sort_unstable();
        Ok(numbers)
    }

    /// Finishes what a crash interrupted: deletes partial `.zst.tmp` files and plain files
    /// already compressed, and files numbered beyond `keep`. Returns the plain files still to
    /// compress, by number.
    pub fn recover(&self) -> io::Result<Vec<usize>> {
        let mut to_compress = Vec::new();
        for n in self.numbers()? {
            remove_if_exists(&self.partial(n))?;
            if n > self.keep {
                remove_if_exists(&self.plain(n))?;
                remove_if_exists(&self.compressed(n))?;
            } else if self.plain(n).exists() {
                if self.compressed(n).exists() {
                    remove_if_exists(&self.plain(n))?;
                } else {
                    to_compress.push(n);
                }
            }
        }
        sync_dir(parent(&self.base))?;
        Ok(to_compress)
    }

    /// Makes room for a new `<path>.1`: deletes the files that would pass `keep`, then moves
    /// every `.N.zst` to `.N+1.zst`, oldest first. A plain file left by a failed compression
    /// moves with its number, so it never sits beside another file's `.zst`.
    pub fn shift(&self) -> io::Result<()> {
        remove_if_exists(&self.compressed(self.keep))?;
        remove_if_exists(&self.plain(self.keep))?;
        for n in (1..self.keep).rev() {
            rename_if_exists(&self.compressed(n), &self.compressed(n + 1))?;
            rename_if_exists(&self.plain(n), &self.plain(n + 1))?;
        }
        sync_dir(parent(&self.base))
    }

    /// Renames the (fsynced) log to `<path>.1`; the caller then opens a fresh log.
    pub fn rotate_in(&self) -> io::Result<()> {
        fs::rename(&self.base, self.plain(1))?;
        sync_dir(parent(&self.base))
    }

    /// Compresses `<path>.N` into `<path>.N.zst`, then deletes the plain file.
    pub fn compress(&self, n: usize) -> io::Result<()> {
        let (plain, partial, done) = (self.plain(n), self.partial(n), self.compressed(n));
        let input = BufReader::new(File::open(&plain)?);
        let output = File::create(&partial)?;
        let mut writer = BufWriter::new(output);
        zstd::stream::copy_encode(input, &mut writer, LEVEL)?;
        writer.flush()?;
        let output = writer
            .into_inner()
            .map_err(io::IntoInnerError::into_error)?;
        output.sync_all()?;
        drop(output);
        fs::rename(&partial, &done)?;
        sync_dir(parent(&self.base))?;
        fs::remove_file(&plain)
    }

    /// Every rotated file that exists, oldest first: what a reader concatenates (after
    /// decompressing the `.zst` ones) before the live log.
    pub fn files_oldest_first(&self) -> io::Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        for n in self.numbers()?.into_iter().rev() {
            if self.compressed(n).exists() {
                out.push(self.compressed(n));
            } else if self.plain(n).exists() {
                out.push(self.plain(n));
            }
        }
        Ok(out)
    }
}

/// The directory holding `path` (`.` for a bare file name).
pub fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Makes renames and deletions in `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn rename_if_exists(from: &Path, to: &Path) -> io::Result<()> {
    match fs::rename(from, to) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}
