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
}

/// The vector index of an [`InMemoryBackend`](crate::InMemoryBackend), checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexOptions {
    kind: IndexKind,
    oversample: usize,
    exact_below: usize,
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
        })
    }

    /// The exact scan.
    pub fn exact() -> Self {
        IndexOptions {
            kind: IndexKind::Exact,
            oversample: Self::DEFAULT_OVERSAMPLE,
            exact_below: Self::DEFAULT_EXACT_BELOW,
        }
    }

    /// The int8 scan with `oversample` candidates per wanted result (at least 1).
    pub fn int8(oversample: usize) -> Self {
        IndexOptions {
            kind: IndexKind::Int8,
            oversample: oversample.max(1),
            exact_below: Self::DEFAULT_EXACT_BELOW,
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
}

impl Default for IndexOptions {
    fn default() -> Self {
        Self::int8(Self::DEFAULT_OVERSAMPLE)
    }
}

pub(crate) fn default_oversample() -> usize {
    IndexOptions::DEFAULT_OVERSAMPLE
}

/// Options of the `memory` backend.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryOptions {
    /// `int8` (default) or `exact`: how searches scan the vectors (see [`IndexKind`]).
    #[serde(default)]
    pub index: IndexKind,
    /// With `index = "int8"`: candidates kept per result wanted, rescored exactly (at least 1).
    #[serde(default = "default_oversample")]
    pub oversample: usize,
}

impl MemoryOptions {
    /// The checked index options.
    pub fn index_options(&self) -> Result<IndexOptions> {
        IndexOptions::new(self.index, self.oversample, "backends.memory")
    }
}

impl Default for MemoryOptions {
    fn default() -> Self {
        MemoryOptions {
            index: IndexKind::default(),
            oversample: default_oversample(),
        }
    }
}
