//! Vector arithmetic shared by backends: dot products over contiguous `f32` storage, top-k,
//! and int8 codes for an approximate first pass (see [`QuantizedQuery`]).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

mod int8;

pub use int8::{dot_i8_i16, quantize_i8, QuantizedQuery};

/// Dot product of two equal-length slices; for L2-normalised vectors this is the cosine.
///
/// Eight independent accumulators let the compiler vectorise the loop and hide FMA latency;
/// brute-force search spends nearly all its time here.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; 8];
    let chunks_a = a.chunks_exact(8);
    let chunks_b = b.chunks_exact(8);
    let (tail_a, tail_b) = (chunks_a.remainder(), chunks_b.remainder());
    for (ca, cb) in chunks_a.zip(chunks_b) {
        for i in 0..8 {
            acc[i] += ca[i] * cb[i];
        }
    }
    let mut sum = (acc[0] + acc[4]) + (acc[1] + acc[5]) + (acc[2] + acc[6]) + (acc[3] + acc[7]);
    for (x, y) in tail_a.iter().zip(tail_b) {
        sum += x * y;
    }
    sum
}

/// Scales `v` to unit length in place; a zero vector stays zero.
pub fn normalize(v: &mut [f32]) {
    let norm = dot(v, v).sqrt();
    if norm > 0.0 {
        for x in v.iter_mut() {
            *x /= norm;
        }
    }
}

#[derive(PartialEq)]
struct Candidate {
    score: f32,
    index: usize,
}

impl Eq for Candidate {}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Candidate {
    // Reversed, so the max-heap keeps the *worst* kept candidate on top; ties prefer the
    // earlier index so results are deterministic.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then(self.index.cmp(&other.index))
    }
}

/// Keeps the `k` best `(index, score)` pairs offered, best first.
pub struct TopK {
    k: usize,
    heap: BinaryHeap<Candidate>,
}

impl TopK {
    /// A collector for the best `k`.
    pub fn new(k: usize) -> Self {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k.saturating_add(1).min(4096)),
        }
    }

    /// The score a new candidate must beat to be kept, once `k` are held.
    #[inline]
    pub fn threshold(&self) -> Option<f32> {
        if self.heap.len() < self.k {
            None
        } else {
            self.heap.peek().map(|c| c.score)
        }
    }

    /// Offers a candidate.
    #[inline]
    pub fn offer(&mut self, index: usize, score: f32) {
        if self.k == 0 || score.is_nan() {
            return;
        }
        if let Some(worst) = self.threshold() {
            if score <= worst {
                return;
            }
            self.heap.pop();
        }
        self.heap.push(Candidate { score, index });
    }

    /// The kept candidates as `(index, score)`, best first.
    pub fn into_sorted(self) -> Vec<(usize, f32)> {
        // `into_sorted_vec` is ascending by `Ord`, which is reversed: best comes first.
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|c| (c.index, c.score))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_naive_sum_for_odd_lengths() {
        let a: Vec<f32> = (0..19).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..19).map(|i| 1.0 - i as f32 * 0.1).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - naive).abs() < 1e-4);
    }

    #[test]
    fn top_k_keeps_the_best_in_order() {
        let mut top = TopK::new(3);
        for (i, s) in [0.1, 0.9, 0.5, 0.7, 0.2, 0.9].into_iter().enumerate() {
            top.offer(i, s);
        }
        assert_eq!(top.into_sorted(), vec![(1, 0.9), (5, 0.9), (3, 0.7)]);
    }
}
