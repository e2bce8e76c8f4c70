//! The int8 copy of one owner's vectors that a search scans before rescoring exactly.

use coda_core::vector::{quantize_i8, QuantizedQuery, TopK};

/// Codes of vector `i` at `codes[i*dims..(i+1)*dims]` and its multiplier at `multipliers[i]`:
/// slot for slot the same layout as the `f32` array beside it in [`Slots`](crate::slots::Slots),
/// which keeps the two in step through every push, replace and swap-remove.
pub(crate) struct Int8Copy {
    codes: Vec<i8>,
    multipliers: Vec<f32>,
    dims: usize,
}

impl Int8Copy {
    pub(crate) fn new(dims: usize) -> Self {
        Int8Copy {
            codes: Vec::new(),
            multipliers: Vec::new(),
            dims,
        }
    }

    pub(crate) fn push(&mut self, vector: &[f32]) {
        let start = self.codes.len();
        self.codes.resize(start + self.dims, 0);
        let m = quantize_i8(vector, &mut self.codes[start..]);
        self.multipliers.push(m);
    }

    pub(crate) fn set(&mut self, slot: usize, vector: &[f32]) {
        let dims = self.dims;
        self.multipliers[slot] =
            quantize_i8(vector, &mut self.codes[slot * dims..(slot + 1) * dims]);
    }

    /// Moves the last vector into `slot` and drops the last, as `Vec::swap_remove` does.
    pub(crate) fn swap_remove(&mut self, slot: usize) {
        let dims = self.dims;
        let last = self.multipliers.len() - 1;
        if slot != last {
            self.codes
                .copy_within(last * dims..(last + 1) * dims, slot * dims);
        }
        self.multipliers.swap_remove(slot);
        self.codes.truncate(last * dims);
    }

    /// Bytes held per vector: its codes and its multiplier.
    pub(crate) fn bytes(&self) -> usize {
        self.codes.len() + self.multipliers.len() * std::mem::size_of::<f32>()
    }

    /// The `keep` best slots by approximate score among those `wanted` accepts (all, when
    /// `None`), as a [`TopK`] of approximate scores.
    pub(crate) fn candidates(
        &self,
        query: &QuantizedQuery,
        keep: usize,
        wanted: Option<&dyn Fn(usize) -> bool>,
    ) -> TopK {
        let mut top = TopK::new(keep);
        let rows = self.codes.chunks_exact(self.dims).zip(&self.multipliers);
        for (slot, (codes, &multiplier)) in rows.enumerate() {
            if wanted.is_some_and(|w| !w(slot)) {
                continue;
            }
            top.offer(slot, query.score(codes, multiplier));
        }
        top
    }

    #[cfg(test)]
    pub(crate) fn row(&self, slot: usize) -> (&[i8], f32) {
        (
            &self.codes[slot * self.dims..(slot + 1) * self.dims],
            self.multipliers[slot],
        )
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.multipliers.len()
    }
}
