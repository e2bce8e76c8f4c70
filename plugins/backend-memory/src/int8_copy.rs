//! The int8 copy of one owner's vectors that a search scans before rescoring exactly.

use coda_core::vector::{quantize_i8, QuantizedQuery, TopK};

use crate::rows::Rows;

/// Codes of vector `i` in `codes.row(i)` and its multiplier at `multipliers[i]`:
/// slot for slot the same layout as the `f32` array beside it in [`Slots`](crate::slots::Slots),
/// which keeps the two in step through every push, replace and swap-remove.
pub(crate) struct Int8Copy {
    codes: Rows<i8>,
    multipliers: Vec<f32>,
}

impl Int8Copy {
    pub(crate) fn new(dims: usize) -> Self {
        Int8Copy {
            codes: Rows::new(dims),
            multipliers: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, vector: &[f32]) {
        let m = self.codes.push_with(|codes| quantize_i8(vector, codes));
        self.multipliers.push(m);
    }

    pub(crate) fn set(&mut self, slot: usize, vector: &[f32]) {
        self.multipliers[slot] = quantize_i8(vector, self.codes.row_mut(slot));
    }

    /// Moves the last vector into `slot` and drops the last, as `Vec::swap_remove` does.
    pub(crate) fn swap_remove(&mut self, slot: usize) {
        self.codes.swap_remove(slot);
        self.multipliers.swap_remove(slot);
    }

    /// Bytes held per vector: its codes and its multiplier.
    pub(crate) fn bytes(&self) -> usize {
        self.codes.bytes() + self.multipliers.len() * std::mem::size_of::<f32>()
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
        let rows = self.codes.iter().zip(&self.multipliers);
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
        (self.codes.row(slot), self.multipliers[slot])
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.multipliers.len()
    }
}
