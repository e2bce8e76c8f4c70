//! Symmetric int8 quantisation for a fast approximate scan ahead of exact `f32` rescoring.
//!
//! A stored vector `x` becomes `round(x / max|x| * 127)` as `i8` and one multiplier
//! `max|x| / 127`, so `x ≈ code * multiplier`. The query keeps more precision (`i16`): on
//! x86-64's baseline SSE2 an `i8 × i16` product summed into `i32` compiles to the same
//! `pmaddwd` loop as `i8 × i8` (measured equally fast), and it leaves the stored side as the
//! only quantisation error, which is what the oversampled candidate set has to absorb.

/// The largest stored code's magnitude.
const CODE_MAX: f32 = 127.0;

/// Quantises `v` into `codes` (same length) and returns the multiplier that maps a code back:
/// `v[i] ≈ codes[i] as f32 * multiplier`. A zero vector gets zero codes and multiplier 0.
///
/// A vector holding a NaN or an infinity returns a non-finite multiplier: its codes mean
/// nothing, and a scan must treat it as "score unknown" (see [`QuantizedQuery::score`]).
pub fn quantize_i8(v: &[f32], codes: &mut [i8]) -> f32 {
    let max = max_abs(v);
    let n = v.len().min(codes.len());
    if max == 0.0 || !max.is_finite() {
        codes[..n].fill(0);
        return if max == 0.0 { 0.0 } else { f32::NAN };
    }
    let to_code = CODE_MAX / max;
    for (c, x) in codes[..n].iter_mut().zip(&v[..n]) {
        // |x * to_code| <= 127 up to rounding, so the code fits an `i8`.
        *c = rounded_int(x * to_code) as i8;
    }
    max / CODE_MAX
}

/// `x` rounded to the nearest integer (ties to even) as an integer, for `|x| < 2^22`: after
/// adding 1.5 × 2^23 the low mantissa bits hold it. A float-to-int cast (`as`) saturates and
/// keeps LLVM from vectorising the loop; this is an add, a bit cast and a subtraction.
#[inline]
fn rounded_int(x: f32) -> i32 {
    const SHIFT: f32 = 12_582_912.0;
    (x + SHIFT).to_bits() as i32 - SHIFT.to_bits() as i32
}

/// The largest `|x|`, or NaN when `v` holds a NaN (so a caller never mistakes it for finite).
/// Branch-free, so it vectorises: a NaN fails every comparison and is noted on the side.
fn max_abs(v: &[f32]) -> f32 {
    // Eight lanes, as in `dot`: a reduction through one accumulator stays scalar.
    let mut lanes = [0.0f32; 8];
    let mut nan = false;
    let chunks = v.chunks_exact(8);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (lane, x) in lanes.iter_mut().zip(chunk) {
            let a = x.abs();
            nan |= a.is_nan();
            *lane = if a > *lane { a } else { *lane };
        }
    }
    let mut max = 0.0f32;
    for a in lanes.into_iter().chain(tail.iter().map(|x| x.abs())) {
        nan |= a.is_nan();
        max = if a > max { a } else { max };
    }
    if nan {
        f32::NAN
    } else {
        max
    }
}

/// Sum of `codes[i] * query[i]` in `i32`, wrapping on overflow (a [`QuantizedQuery`] picks its
/// scale so that it never overflows against codes of at most ±127).
///
/// Written as sixteen independent lanes of `i8 → i32` times `i16 → i32` products, which LLVM
/// turns into `pmaddwd` on plain SSE2 and `vpmaddwd` where AVX2 is enabled; the workspace
/// forbids `unsafe`, so there are no intrinsics here.
#[inline]
pub fn dot_i8_i16(codes: &[i8], query: &[i16]) -> i32 {
    let n = codes.len().min(query.len());
    let (codes, query) = (&codes[..n], &query[..n]);
    let mut acc = [0i32; 16];
    let chunks_c = codes.chunks_exact(16);
    let chunks_q = query.chunks_exact(16);
    let (tail_c, tail_q) = (chunks_c.remainder(), chunks_q.remainder());
    for (c, q) in chunks_c.zip(chunks_q) {
        for i in 0..16 {
            acc[i] = acc[i].wrapping_add(i32::from(c[i]) * i32::from(q[i]));
        }
    }
    let mut sum = acc.iter().fold(0i32, |s, &a| s.wrapping_add(a));
    for (c, q) in tail_c.iter().zip(tail_q) {
        sum = sum.wrapping_add(i32::from(*c) * i32::from(*q));
    }
    sum
}

/// A query quantised once per search, to score many [`quantize_i8`] codes approximately.
#[derive(Debug, Clone)]
pub struct QuantizedQuery {
    codes: Vec<i16>,
    /// `query[i] ≈ codes[i] * multiplier`.
    multiplier: f32,
}

impl QuantizedQuery {
    /// Quantises `query`. Its codes span `±min(32767, i32::MAX / (len * 127))`, so a dot
    /// product against codes of at most ±127 cannot overflow `i32` at any length.
    pub fn new(query: &[f32]) -> Self {
        let bound = i32::MAX as f32 / (query.len().max(1) as f32 * CODE_MAX);
        let code_max = bound.floor().clamp(1.0, f32::from(i16::MAX));
        let max = max_abs(query);
        if max == 0.0 || !max.is_finite() {
            return QuantizedQuery {
                codes: vec![0; query.len()],
                multiplier: if max == 0.0 { 0.0 } else { f32::NAN },
            };
        }
        let to_code = code_max / max;
        QuantizedQuery {
            codes: query
                .iter()
                .map(|x| rounded_int(x * to_code) as i16)
                .collect(),
            multiplier: max / code_max,
        }
    }

    /// False when the query held a NaN or an infinity: approximate scores mean nothing then,
    /// so the caller should scan exactly.
    pub fn is_finite(&self) -> bool {
        self.multiplier.is_finite()
    }

    /// Approximate dot product with a stored vector given as its codes and multiplier.
    ///
    /// A stored vector whose multiplier is not finite (it held a NaN or an infinity) scores
    /// `+∞`, so a candidate set always keeps it and exact rescoring decides.
    #[inline]
    pub fn score(&self, codes: &[i8], multiplier: f32) -> f32 {
        if !multiplier.is_finite() {
            return f32::INFINITY;
        }
        dot_i8_i16(codes, &self.codes) as f32 * (self.multiplier * multiplier)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vector::dot;

    /// A deterministic xorshift stream of floats in [-1, 1).
    fn floats(seed: u64, n: usize) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    #[test]
    fn dot_i8_i16_matches_a_naive_sum_for_odd_lengths() {
        let codes: Vec<i8> = (0..37).map(|i| (i * 7 % 255 - 127) as i8).collect();
        let query: Vec<i16> = (0..37).map(|i| (i * 911 % 30000 - 15000) as i16).collect();
        let naive: i64 = codes
            .iter()
            .zip(&query)
            .map(|(&c, &q)| i64::from(c) * i64::from(q))
            .sum();
        assert_eq!(i64::from(dot_i8_i16(&codes, &query)), naive);
    }

    #[test]
    fn quantised_codes_stay_within_127_and_reconstruct_closely() {
        let v = floats(7, 384);
        let mut codes = vec![0i8; v.len()];
        let m = quantize_i8(&v, &mut codes);
        assert!(
            codes.iter().all(|&c| c != i8::MIN),
            "symmetric: -128 is never used"
        );
        assert!(codes.iter().any(|&c| c.abs() == 127));
        for (x, c) in v.iter().zip(&codes) {
            assert!((x - f32::from(*c) * m).abs() <= m * 0.5 + 1e-6);
        }
    }

    #[test]
    fn approximate_score_is_close_to_the_exact_dot() {
        let (a, b) = (floats(1, 384), floats(2, 384));
        let mut codes = vec![0i8; a.len()];
        let m = quantize_i8(&a, &mut codes);
        let approx = QuantizedQuery::new(&b).score(&codes, m);
        let exact = dot(&a, &b);
        // Each code is off by at most half a step; summed over 384 random signs that is small.
        assert!((approx - exact).abs() < 0.05 * (dot(&a, &a) * dot(&b, &b)).sqrt());
    }

    #[test]
    fn the_largest_query_codes_cannot_overflow_at_large_dims() {
        let dims = 8192;
        let q = QuantizedQuery::new(&vec![1.0; dims]);
        let codes = vec![127i8; dims];
        let exact = q.codes.iter().map(|&c| i64::from(c) * 127).sum::<i64>();
        assert!(exact <= i64::from(i32::MAX));
        assert_eq!(i64::from(dot_i8_i16(&codes, &q.codes)), exact);
    }

    #[test]
    fn zero_and_non_finite_vectors_are_marked() {
        let mut codes = vec![1i8; 3];
        assert_eq!(quantize_i8(&[0.0; 3], &mut codes), 0.0);
        assert_eq!(codes, vec![0; 3]);
        let m = quantize_i8(&[1.0, f32::NAN, 0.0], &mut codes);
        assert!(!m.is_finite());
        let q = QuantizedQuery::new(&[1.0, 0.0, 0.0]);
        assert_eq!(q.score(&codes, m), f32::INFINITY);
        assert!(!QuantizedQuery::new(&[f32::INFINITY, 0.0, 0.0]).is_finite());
        assert!(QuantizedQuery::new(&[0.0; 3]).is_finite());
    }
}
