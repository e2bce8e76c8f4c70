//! Replaying a log on open: what is valid, where damage is, and whether it is only a torn tail.
//!
//! A record that fails its checksum (or ends early) is *tail* damage when no valid record
//! follows it anywhere in the file: a write cut short by a crash. That is truncated with a
//! warning. When a valid record does follow, the damage is in the middle, which a crash cannot
//! cause; the log refuses to open unless `repair` is set, which skips exactly the bad bytes.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::Path;

use coda_core::{Change, Error, Result};

use crate::format::Decoded;

use crate::format::{self, Header, FILE_MAGIC, FRAME_HEADER, FRAME_MAGIC};

/// Bytes of a log that were not replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// Where the damage starts.
    pub offset: u64,
    /// How many bytes were skipped or cut off.
    pub bytes: u64,
    /// How many records (whole or partial) they held, as far as their frame marks tell.
    pub records: u64,
    /// What was wrong with the first of them.
    pub reason: String,
}

/// The outcome of replaying a log.
#[derive(Debug)]
pub struct Replayed {
    /// Offset just past the last valid record: where appends continue.
    pub end: u64,
    /// Record units replayed (a `ReplaceUser` of n records counts n + 1), for dead-record counts.
    pub units: u64,
    /// A torn or corrupt tail that must be cut off at `end`.
    pub torn_tail: Option<Dropped>,
    /// Damaged stretches in the middle that `repair` skipped.
    pub repaired: Vec<Dropped>,
}

/// A log whose header has been read, ready to replay.
pub struct LogScan {
    path: std::path::PathBuf,
    log: FrameReader,
    start: u64,
}

/// Opens the log at `path` and reads its header.
pub fn open_log(path: &Path) -> Result<(Header, LogScan)> {
    let mut log = FrameReader::open(path)?;
    let io = |e| Error::io("read", path, e);
    let mut magic = [0u8; 8];
    if log.len < 8 || log.read_exact_at(0, &mut magic).map_err(io)?.is_err() || magic != FILE_MAGIC
    {
        return Err(Error::corrupt(
            path,
            "not a Coda memory log (bad magic at offset 0)",
        ));
    }
    let header = match log.frame_at(8).map_err(io)? {
        Ok(()) => Header::decode(&log.buf),
        Err(reason) => Err(reason),
    }
    .map_err(|reason| Error::corrupt(path, format!("bad header at offset 8: {reason}")))?;
    let start = 8 + (FRAME_HEADER + log.buf.len()) as u64;
    Ok((
        header,
        LogScan {
            path: path.to_owned(),
            log,
            start,
        },
    ))
}

/// Decoded frames per hand-over from the reading thread to the applying one.
const BATCH: usize = 512;

/// A batch of decoded frames on its way from the reading thread to the applying one: each
/// single-record write's embedding is in `vectors` (the range beside it) rather than a vector
/// of its own, so a replay allocates no vector per memory (and frees none on the other thread).
struct Batch {
    frames: Vec<(Decoded, Option<Range<usize>>, u64)>,
    vectors: Vec<f32>,
}

impl Batch {
    /// An empty batch with room for `vectors` floats (the last batch's count: a log's batches
    /// are alike, and growing the buffer from nothing cost a copy at each doubling).
    fn with_room(vectors: usize) -> Self {
        Batch {
            frames: Vec::with_capacity(BATCH),
            vectors: Vec::with_capacity(vectors),
        }
    }
}

impl LogScan {
    /// Replays every valid change in order, handing each to `apply` with the offset just past
    /// its record; reading, checking and decoding run on a thread of its own while this one
    /// applies: at open the two halves cost about the same, so a log replays in
    /// little more than the time of the slower. `apply` sees the same changes in the same
    /// order, except that a single-record write comes with an empty embedding and its vector
    /// beside it; batches of [`BATCH`] frames pass through a channel that holds at most four,
    /// so memory stays bounded.
    pub fn replay_pipelined(
        self,
        repair: bool,
        mut apply: impl FnMut(Decoded, Option<&[f32]>, u64),
    ) -> Result<Replayed> {
        std::thread::scope(|threads| {
            let (send, batches) = std::sync::mpsc::sync_channel::<Batch>(4);
            let reader = std::thread::Builder::new()
                .name("coda-file-replay".into())
                .spawn_scoped(threads, move || {
                    let mut batch = Batch::with_room(0);
                    let replayed = self.replay_with(repair, |payload, end| {
                        let start = batch.vectors.len();
                        let (decoded, split) = format::decode_into(payload, &mut batch.vectors)?;
                        let vector = split.then_some(start..batch.vectors.len());
                        let units = decoded_units(&decoded);
                        batch.frames.push((decoded, vector, end));
                        if batch.frames.len() == BATCH {
                            // Fails only once the applying side is gone (it panicked).
                            let room = batch.vectors.len();
                            let _ =
                                send.send(std::mem::replace(&mut batch, Batch::with_room(room)));
                        }
                        Ok(units)
                    });
                    if !batch.frames.is_empty() {
                        let _ = send.send(batch);
                    }
                    replayed
                })
                .map_err(|e| Error::Unavailable(format!("could not start a replay thread: {e}")))?;
            for batch in batches {
                for (decoded, vector, end) in batch.frames {
                    apply(decoded, vector.map(|range| &batch.vectors[range]), end);
                }
            }
            reader.join().unwrap_or_else(|_| {
                Err(Error::Unavailable(
                    "the thread reading the memory log panicked".into(),
                ))
            })
        })
    }

    /// Hands the payload of every valid frame, in order, to `step` with the offset just past
    /// it; `step` decodes and applies it and returns its record units, or why the payload does
    /// not decode (which counts as damage there, as a bad checksum does).
    fn replay_with(
        self,
        repair: bool,
        mut step: impl FnMut(&[u8], u64) -> std::result::Result<u64, String>,
    ) -> Result<Replayed> {
        let LogScan {
            path,
            mut log,
            start,
        } = self;
        let io = |e| Error::io("read", &path, e);
        let mut out = Replayed {
            end: start,
            units: 0,
            torn_tail: None,
            repaired: Vec::new(),
        };
        let mut offset = start;
        while offset < log.len {
            let framed = log.frame_at(offset).map_err(io)?;
            let reason = match framed {
                Ok(()) => {
                    let end = offset + (FRAME_HEADER + log.buf.len()) as u64;
                    match step(&log.buf, end) {
                        Ok(units) => {
                            out.units += units;
                            offset = end;
                            out.end = end;
                            continue;
                        }
                        Err(reason) => reason,
                    }
                }
                Err(reason) => reason,
            };
            let (next, records) = log.next_valid(offset + 1).map_err(io)?;
            let damage = Dropped {
                offset,
                bytes: next.unwrap_or(log.len) - offset,
                records,
                reason,
            };
            match next {
                None => {
                    out.torn_tail = Some(damage);
                    break;
                }
                Some(_) if !repair => {
                    return Err(Error::corrupt(
                        &path,
                        format!(
                            "damaged record at offset {} ({}), followed by valid records {} \
                             bytes later, so this is not a torn write; set \
                             `backends.file.repair = true` to open anyway, keeping every valid \
                             record before and after the damage",
                            damage.offset, damage.reason, damage.bytes
                        ),
                    ));
                }
                Some(next) => {
                    out.repaired.push(damage);
                    offset = next;
                }
            }
        }
        Ok(out)
    }
}

/// How many record units a decoded frame adds to the log.
pub fn decoded_units(decoded: &Decoded) -> u64 {
    match decoded {
        Decoded::Change(change) => units(change),
        Decoded::History(_) => 1,
    }
}

/// How many record units a change adds to the log.
pub fn units(change: &Change) -> u64 {
    match change {
        Change::ReplaceUser { records, .. } | Change::Persist { records, .. } => {
            records.len() as u64 + 1
        }
        _ => 1,
    }
}

/// Random access to frames, buffered for the sequential common case.
struct FrameReader {
    file: BufReader<File>,
    pos: u64,
    len: u64,
    buf: Vec<u8>,
}

impl FrameReader {
    fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("stat", path, e))?
            .len();
        Ok(FrameReader {
            file: BufReader::with_capacity(1 << 20, file),
            pos: 0,
            len,
            buf: Vec::new(),
        })
    }

    /// Fills `out` from `offset`; `Ok(Err)` when the file ends first.
    fn read_exact_at(&mut self, offset: u64, out: &mut [u8]) -> io::Result<Result<(), String>> {
        if offset + out.len() as u64 > self.len {
            return Ok(Err(format!(
                "incomplete record: {} of {} bytes present",
                self.len.saturating_sub(offset),
                out.len()
            )));
        }
        if self.pos != offset {
            self.file.seek(SeekFrom::Start(offset))?;
        }
        self.file.read_exact(out)?;
        self.pos = offset + out.len() as u64;
        Ok(Ok(()))
    }

    /// Reads the frame at `offset` into `buf`, checking its magic and checksum.
    fn frame_at(&mut self, offset: u64) -> io::Result<Result<(), String>> {
        let mut head = [0u8; FRAME_HEADER];
        if let Err(reason) = self.read_exact_at(offset, &mut head)? {
            return Ok(Err(reason));
        }
        let Some((len, sum)) = format::parse_frame_header(&head) else {
            return Ok(Err("no record mark".into()));
        };
        let present = self.len - offset - FRAME_HEADER as u64;
        if u64::from(len) > present {
            return Ok(Err(format!(
                "incomplete record: {present} of {len} payload bytes present"
            )));
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.resize(len as usize, 0);
        let read = self.read_exact_at(offset + FRAME_HEADER as u64, &mut buf);
        self.buf = buf;
        if let Err(reason) = read? {
            return Ok(Err(reason));
        }
        if format::checksum(&self.buf) != sum {
            return Ok(Err("checksum mismatch".into()));
        }
        Ok(Ok(()))
    }

    fn change_at(&mut self, offset: u64) -> io::Result<Result<Decoded, String>> {
        Ok(match self.frame_at(offset)? {
            Ok(()) => format::decode(&self.buf),
            Err(reason) => Err(reason),
        })
    }

    /// The first valid change frame at or after `from`, and how many record marks the damaged
    /// stretch before it held (counting the damaged record itself).
    fn next_valid(&mut self, from: u64) -> io::Result<(Option<u64>, u64)> {
        const CHUNK: usize = 1 << 20;
        let mut records = 1;
        let mut start = from;
        let mut chunk = vec![0u8; CHUNK];
        while start + FRAME_MAGIC.len() as u64 <= self.len {
            let n = CHUNK.min((self.len - start) as usize);
            if self.read_exact_at(start, &mut chunk[..n])?.is_err() {
                break;
            }
            let candidates: Vec<u64> = chunk[..n]
                .windows(FRAME_MAGIC.len())
                .enumerate()
                .filter(|(_, w)| *w == FRAME_MAGIC)
                .map(|(i, _)| start + i as u64)
                .collect();
            for candidate in candidates {
                if self.change_at(candidate)?.is_ok() {
                    return Ok((Some(candidate), records));
                }
                records += 1;
            }
            // Overlap by the magic's length minus one so a mark split across chunks is seen.
            start += (n - (FRAME_MAGIC.len() - 1)).max(1) as u64;
        }
        Ok((None, records))
    }
}
