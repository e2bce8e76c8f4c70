//! `[backends.memory]` options, and the vector-index choice the `file` backend shares.

use coda_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// How a search finds its best matches within one owner's vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IndexKind {
    /// Scan an int8 copy of every vector (a quarter of the bytes of `f32`), keep the best
    /// `limit × oversample` candidates, and rescore those exactly: returned scores, the
    /// threshold and the order are exact; a true match can be missed only if quantisation
    /// pushed it out of the candidates (recall@10 ≥ 0.99 at the default `oversample`).
    #[default]
    Int8,
    /// Score every vector in `f32`: no int8 copy, slower over large indexes.
    Exact,
    /// As `int8` for users with fewer than `hnsw_min_vectors` memories; from there on an HNSW
    /// graph (built in the background, then kept up to date on every write) finds the
    /// candidates, which are rescored exactly. Approximate: recall@10 ≥ 0.95 rather than 0.99,
    /// for a search that no longer reads every vector.
    Hnsw,
}

/// The vector index of an [`InMemoryBackend`](crate::InMemoryBackend), checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexOptions {
    kind: IndexKind,
    oversample: usize,
    exact_below: usize,
    hnsw: HnswOptions,
}

/// Settings of the HNSW graph used with `index = "hnsw"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HnswOptions {
    /// An owner's graph is built once it holds this many vectors (and dropped below half).
    pub min_vectors: usize,
    /// Breadth of a search (HNSW's `ef`): more finds more of the true top-k, slower.
    pub ef_search: usize,
    /// Links per node (HNSW's `M`; layer 0 keeps twice as many).
    pub links: usize,
    /// Breadth of an insertion (HNSW's `ef_construction`).
    pub ef_construction: usize,
    /// Build graphs on a thread of their own (the default), searches scanning meanwhile; off,
    /// the write that makes a build due runs it before returning (tests and benches).
    pub background: bool,
}

impl HnswOptions {
    /// Owners below this many vectors are scanned (int8, rescored): up to 200,000 × 384 that
    /// is ≈ 20 ms and finds the exact top 10 (recall ≥ 0.99), while a graph costs about 3 KB
    /// more per memory and about a minute of build time per 200,000 on two cores.
    pub const DEFAULT_MIN_VECTORS: usize = 200_000;
    /// Search breadth by default: at 1,000,000 × 384 (the bench's hashing-embedder memories)
    /// recall@10 ≈ 0.95 at p50 1.6–2.0 ms, where 128 gave only ≈ 0.90; at 200,000, 0.990 at
    /// 0.98 ms (128: 0.978 at 0.61 ms). README figures.
    pub const DEFAULT_EF_SEARCH: usize = 256;
    /// Links per node: 16, the usual choice for a few hundred dimensions.
    pub const DEFAULT_LINKS: usize = 16;
    /// Insertion breadth.
    pub const DEFAULT_EF_CONSTRUCTION: usize = 128;
}

impl Default for HnswOptions {
    fn default() -> Self {
        HnswOptions {
            min_vectors: Self::DEFAULT_MIN_VECTORS,
            ef_search: Self::DEFAULT_EF_SEARCH,
            links: Self::DEFAULT_LINKS,
            ef_construction: Self::DEFAULT_EF_CONSTRUCTION,
            background: true,
        }
    }
}

impl IndexOptions {
    /// Candidates kept per result wanted by the int8 scan unless configured otherwise.
    pub const DEFAULT_OVERSAMPLE: usize = 4;

    /// Below this many vectors an owner's search scans `f32` exactly even with the int8
    /// index: `cargo bench --bench core` (its `crossover` lines) found the two equal at 500 ×
    /// 384 and 3–17 % apart at 1,000, so below this the exact scan, which cannot miss, costs
    /// next to nothing; from 2,000 up the int8 scan is clearly faster (1.2–1.6×).
    pub const DEFAULT_EXACT_BELOW: usize = 1_000;

    /// `kind` with `oversample` candidates per wanted result; `section` (e.g.
    /// `backends.memory`) names the table in the error when `oversample` is out of range.
    pub fn new(kind: IndexKind, oversample: usize, section: &str) -> Result<Self> {
        if oversample == 0 {
            return Err(Error::config(
                format!("{section}.oversample"),
                "must be at least 1",
            ));
        }
        Ok(IndexOptions {
            kind,
            oversample,
            exact_below: Self::DEFAULT_EXACT_BELOW,
            hnsw: HnswOptions::default(),
        })
    }

    /// With `index = "hnsw"`: builds an owner's graph from `min_vectors` vectors and searches
    /// it `ef_search` wide; `section` names the table in the error when a value is out of range.
    pub fn with_hnsw_settings(
        mut self,
        min_vectors: usize,
        ef_search: usize,
        section: &str,
    ) -> Result<Self> {
        if ef_search == 0 || ef_search > 10_000 {
            return Err(Error::config(
                format!("{section}.hnsw_ef"),
                format!("{ef_search} is not between 1 and 10000"),
            ));
        }
        self.hnsw.min_vectors = min_vectors;
        self.hnsw.ef_search = ef_search;
        Ok(self)
    }

    /// HNSW with the given graph settings (for the bench and tests: links and insertion breadth
    /// are not config keys). `links` is kept within 2..=128.
    pub fn hnsw(hnsw: HnswOptions) -> Self {
        IndexOptions {
            kind: IndexKind::Hnsw,
            oversample: Self::DEFAULT_OVERSAMPLE,
            exact_below: Self::DEFAULT_EXACT_BELOW,
            hnsw: HnswOptions {
                links: hnsw.links.clamp(2, 128),
                ef_search: hnsw.ef_search.max(1),
                ef_construction: hnsw.ef_construction.max(1),
                ..hnsw
            },
        }
    }

    /// The exact scan.
    pub fn exact() -> Self {
        IndexOptions {
            kind: IndexKind::Exact,
            oversample: Self::DEFAULT_OVERSAMPLE,
            exact_below: Self::DEFAULT_EXACT_BELOW,
            hnsw: HnswOptions::default(),
        }
    }

    /// The int8 scan with `oversample` candidates per wanted result (at least 1).
    pub fn int8(oversample: usize) -> Self {
        IndexOptions {
            kind: IndexKind::Int8,
            oversample: oversample.max(1),
            exact_below: Self::DEFAULT_EXACT_BELOW,
            hnsw: HnswOptions::default(),
        }
    }

    /// The same, scanning exactly only below `count` vectors per owner (default
    /// [`DEFAULT_EXACT_BELOW`](Self::DEFAULT_EXACT_BELOW)): not a config key, it is for
    /// measuring where the int8 scan starts to pay (the bench) and for tests on small data.
    pub fn with_exact_below(mut self, count: usize) -> Self {
        self.exact_below = count;
        self
    }

    /// Which scan.
    pub fn kind(&self) -> IndexKind {
        self.kind
    }

    /// Candidates per wanted result.
    pub fn oversample(&self) -> usize {
        self.oversample
    }

    /// The owner size below which searches scan exactly.
    pub fn exact_below(&self) -> usize {
        self.exact_below
    }

    /// The HNSW graph's settings (used only with [`IndexKind::Hnsw`]).
    pub fn hnsw_options(&self) -> HnswOptions {
        self.hnsw
    }
}

impl Default for IndexOptions {
    fn default() -> Self {
        Self::int8(Self::DEFAULT_OVERSAMPLE)
    }
}

pub(crate) fn default_oversample() -> usize {
    IndexOptions::DEFAULT_OVERSAMPLE
}

pub(crate) fn default_hnsw_min_vectors() -> usize {
    HnswOptions::DEFAULT_MIN_VECTORS
}

pub(crate) fn default_hnsw_ef() -> usize {
    HnswOptions::DEFAULT_EF_SEARCH
}

/// Options of the `memory` backend.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryOptions {
    /// `int8` (default), `exact` or `hnsw`: how searches find the best vectors (see
    /// [`IndexKind`]).
    #[serde(default)]
    pub index: IndexKind,
    /// With `index = "int8"` or `"hnsw"`: candidates kept per result wanted by the int8 scan,
    /// rescored exactly (at least 1).
    #[serde(default = "default_oversample")]
    pub oversample: usize,
    /// With `index = "hnsw"`: a user's graph is built from this many memories on.
    #[serde(default = "default_hnsw_min_vectors")]
    pub hnsw_min_vectors: usize,
    /// With `index = "hnsw"`: search breadth, 1 to 10000 (higher: better recall, slower).
    #[serde(default = "default_hnsw_ef")]
    pub hnsw_ef: usize,
}

impl MemoryOptions {
    /// The checked index options.
    pub fn index_options(&self) -> Result<IndexOptions> {
        IndexOptions::new(self.index, self.oversample, "backends.memory")?.with_hnsw_settings(
            self.hnsw_min_vectors,
            self.hnsw_ef,
            "backends.memory",
        )
    }
}

impl Default for MemoryOptions {
    fn default() -> Self {
        MemoryOptions {
            index: IndexKind::default(),
            oversample: default_oversample(),
            hnsw_min_vectors: default_hnsw_min_vectors(),
            hnsw_ef: default_hnsw_ef(),
        }
    }
}
