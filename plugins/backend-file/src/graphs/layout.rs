//! The bytes of a saved graph file (see `graphs.rs` for the layout): version 2 written, its
//! trailer checked against its footer and its graph streamed through a checksum; version 1
//! decoded whole.

use std::fs::File;
use std::hash::Hasher;
use std::io::{Read, Seek, SeekFrom};

use coda_backend_memory::SavedGraph;
use coda_core::Owner;
use twox_hash::XxHash3_64;

use crate::format::Reader;

const MAGIC: &[u8; 8] = b"CODAHNSW";
/// Ends a version 2 file.
const FOOTER_MAGIC: &[u8; 8] = b"CODAHNS2";
const VERSION: u32 = 2;
/// The version whose header came first, still read.
const VERSION_1: u32 = 1;
/// Trailer length, trailer checksum, magic.
const FOOTER_BYTES: u64 = 24;
/// The graph's bytes are checksummed through a buffer this large.
const CHECK_CHUNK: usize = 1 << 20;

/// Where the log stood when a save began, for the header.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LogPosition {
    pub offset: u64,
    pub units: u64,
}

/// A version 2 file's trailer and footer, written after USearch's graph.
pub(super) fn encode(
    graph: &SavedGraph,
    at: LogPosition,
) -> (Vec<u8>, [u8; FOOTER_BYTES as usize]) {
    let (listing, usearch) = graph.parts();
    let (tenant, user) = (
        graph.owner.tenant.as_bytes(),
        graph.owner.user_id.as_bytes(),
    );
    let mut trailer = Vec::with_capacity(64 + tenant.len() + user.len() + listing.len());
    trailer.extend_from_slice(MAGIC);
    trailer.extend_from_slice(&VERSION.to_le_bytes());
    for name in [tenant, user] {
        trailer.extend_from_slice(&(name.len() as u32).to_le_bytes());
        trailer.extend_from_slice(name);
    }
    for n in [
        at.offset,
        at.units,
        graph.memories as u64,
        usearch.len() as u64,
        XxHash3_64::oneshot(usearch),
    ] {
        trailer.extend_from_slice(&n.to_le_bytes());
    }
    trailer.extend_from_slice(listing);
    let mut footer = [0u8; FOOTER_BYTES as usize];
    footer[..8].copy_from_slice(&(trailer.len() as u64).to_le_bytes());
    footer[8..16].copy_from_slice(&XxHash3_64::oneshot(&trailer).to_le_bytes());
    footer[16..].copy_from_slice(FOOTER_MAGIC);
    (trailer, footer)
}

/// A version 1 file's header, checked against its payload.
pub(super) struct DecodedV1<'a> {
    pub(super) owner: Owner,
    pub(super) at: LogPosition,
    pub(super) memories: u64,
    pub(super) payload: &'a [u8],
}

pub(super) fn decode_v1(bytes: &[u8]) -> std::result::Result<DecodedV1<'_>, String> {
    let mut r = Reader(bytes);
    if r.take(MAGIC.len())? != MAGIC {
        return Err("not a graph file (bad magic)".into());
    }
    let version = r.u32()?;
    if version != VERSION_1 {
        return Err(format!(
            "format version {version} at the head, {VERSION_1} expected there"
        ));
    }
    let owner = Owner::new(r.str()?.to_owned(), r.str()?.to_owned());
    let at = LogPosition {
        offset: r.u64()?,
        units: r.u64()?,
    };
    let memories = r.u64()?;
    let len = r.u64()?;
    let checksum = r.u64()?;
    if len != r.0.len() as u64 {
        return Err(format!(
            "the payload holds {} bytes, the header says {len} (truncated or extended)",
            r.0.len()
        ));
    }
    if XxHash3_64::oneshot(r.0) != checksum {
        return Err("checksum mismatch (damaged)".into());
    }
    Ok(DecodedV1 {
        owner,
        at,
        memories,
        payload: r.0,
    })
}

/// A version 2 file's trailer, checked against its footer.
pub(super) struct Trailer {
    pub(super) owner: Owner,
    pub(super) at: LogPosition,
    pub(super) memories: u64,
    /// Length and `xxh3` of the USearch graph the file begins with.
    pub(super) graph_len: u64,
    pub(super) graph_hash: u64,
    pub(super) listing: Vec<u8>,
}

/// The trailer of a version 2 file of `len` bytes; `None` when the file does not end with a
/// version 2 footer (a version 1 file, or one cut short).
pub(super) fn read_trailer(
    file: &mut File,
    len: u64,
) -> std::result::Result<Option<Trailer>, String> {
    let io = |e: std::io::Error| e.to_string();
    if len < FOOTER_BYTES {
        return Ok(None);
    }
    let mut footer = [0u8; FOOTER_BYTES as usize];
    file.seek(SeekFrom::Start(len - FOOTER_BYTES)).map_err(io)?;
    file.read_exact(&mut footer).map_err(io)?;
    let mut r = Reader(&footer);
    let (trailer_len, trailer_hash) = (r.u64()?, r.u64()?);
    if r.0 != FOOTER_MAGIC {
        return Ok(None);
    }
    let Some(graph_len) = (len - FOOTER_BYTES).checked_sub(trailer_len) else {
        return Err(format!(
            "the footer gives a {trailer_len}-byte trailer in a {len}-byte file"
        ));
    };
    let mut trailer = vec![0u8; usize::try_from(trailer_len).map_err(|e| e.to_string())?];
    file.seek(SeekFrom::Start(graph_len)).map_err(io)?;
    file.read_exact(&mut trailer).map_err(io)?;
    if XxHash3_64::oneshot(&trailer) != trailer_hash {
        return Err("trailer checksum mismatch (damaged)".into());
    }
    let mut r = Reader(&trailer);
    if r.take(MAGIC.len())? != MAGIC {
        return Err("not a graph file (bad trailer magic)".into());
    }
    let version = r.u32()?;
    if version != VERSION {
        return Err(format!("format version {version}, {VERSION} expected"));
    }
    let owner = Owner::new(r.str()?.to_owned(), r.str()?.to_owned());
    let at = LogPosition {
        offset: r.u64()?,
        units: r.u64()?,
    };
    let (memories, saved_len, graph_hash) = (r.u64()?, r.u64()?, r.u64()?);
    if saved_len != graph_len {
        return Err(format!(
            "the graph holds {graph_len} bytes, the trailer says {saved_len} (truncated or \
             extended)"
        ));
    }
    Ok(Some(Trailer {
        owner,
        at,
        memories,
        graph_len,
        graph_hash,
        listing: r.0.to_vec(),
    }))
}

/// The `xxh3` of the first `len` bytes of `file`, read through a small buffer.
pub(super) fn hash_prefix(file: &mut File, len: u64) -> std::io::Result<u64> {
    file.seek(SeekFrom::Start(0))?;
    let mut hasher = XxHash3_64::default();
    let mut buf = vec![0u8; CHECK_CHUNK];
    let mut left = len;
    while left > 0 {
        let n = usize::try_from(left).map_or(CHECK_CHUNK, |left| left.min(CHECK_CHUNK));
        file.read_exact(&mut buf[..n])?;
        hasher.write(&buf[..n]);
        left -= n as u64;
    }
    Ok(hasher.finish())
}
