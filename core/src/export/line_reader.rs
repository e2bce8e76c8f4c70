//! Reading an export line by line, with a bound on a line's length so a file without newlines
//! cannot exhaust memory.

use std::io::{BufRead, Read};

use crate::{Error, Result};

/// Longest line read, in bytes: far above any real line (a history of many 64 KiB versions),
/// low enough that a file without newlines cannot exhaust memory.
const MAX_LINE_BYTES: u64 = 64 << 20;

/// Reads an export's lines one at a time, numbering them from 1 and skipping blank ones.
pub struct LineReader<R> {
    inner: R,
    number: u64,
    buf: Vec<u8>,
}

impl<R: BufRead> LineReader<R> {
    /// A reader at the start of `inner`.
    pub fn new(inner: R) -> Self {
        LineReader {
            inner,
            number: 0,
            buf: Vec::new(),
        }
    }

    /// The next non-blank line and its number, `None` at the end.
    pub fn next_line(&mut self) -> Result<Option<(u64, String)>> {
        loop {
            self.buf.clear();
            self.number += 1;
            let read = (&mut self.inner)
                .take(MAX_LINE_BYTES + 1)
                .read_until(b'\n', &mut self.buf)
                .map_err(|e| Error::io("read the import", "", e))?;
            if read == 0 {
                return Ok(None);
            }
            let at = || format!("line {}", self.number);
            if self.buf.len() as u64 > MAX_LINE_BYTES {
                return Err(Error::invalid(
                    at(),
                    format!("is longer than {MAX_LINE_BYTES} bytes"),
                ));
            }
            let text = std::str::from_utf8(&self.buf)
                .map_err(|_| Error::invalid(at(), "is not UTF-8"))?
                .trim();
            if !text.is_empty() {
                return Ok(Some((self.number, text.to_owned())));
            }
        }
    }

    /// The number of the last line read.
    pub fn number(&self) -> u64 {
        self.number
    }
}
