//! The encoder's element-wise work, fused into candle custom ops.
//!
//! candle runs each element-wise op as its own pass over memory and spreads it over a spinning
//! thread pool of its own; on a small machine that pool fights the matrix products' threads
//! for cores. Fusing "bias + GELU", "bias + residual + layer norm" and the whole attention of a
//! packed batch into three ops leaves candle only the four large matrix products per layer,
//! and lets sequences be packed without padding.
//!
//! The maths follows the Hugging Face BERT implementation; `erf` and `exp` are branch-free
//! polynomial approximations (errors ~1e-7) so the loops vectorise.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape};
use coda_core::vector::dot;
use rayon::prelude::*;

/// Below this many floats, splitting work over threads costs more than it saves.
const PARALLEL_MIN: usize = 32 * 1024;

fn contiguous<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> candle_core::Result<&'a [f32]> {
    let data = s.as_slice::<f32>()?;
    match l.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("{op}: input must be contiguous"),
    }
}

fn rows_of(l: &Layout, width: usize, op: &str) -> candle_core::Result<usize> {
    match l.dims() {
        [rows, w] if *w == width => Ok(*rows),
        dims => candle_core::bail!("{op}: expected [rows, {width}], got {dims:?}"),
    }
}

/// Runs `f(row_index, output_row)` over `out` in rows of `width`, in parallel when large.
fn for_rows(out: &mut [f32], width: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    if out.len() >= PARALLEL_MIN {
        let rows_per_task = (PARALLEL_MIN / width).max(1);
        out.par_chunks_mut(width * rows_per_task)
            .enumerate()
            .for_each(|(task, chunk)| {
                for (i, row) in chunk.chunks_exact_mut(width).enumerate() {
                    f(task * rows_per_task + i, row);
                }
            });
    } else {
        for (i, row) in out.chunks_exact_mut(width).enumerate() {
            f(i, row);
        }
    }
}

/// `e^x` (Cephes' single-precision polynomial, ~1 ulp on the clamped range).
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5·2²³: adding and subtracting it rounds to an integer
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E + MAGIC) - MAGIC;
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let e = p * r * r + r + 1.0;
    e * f32::from_bits(((n as i32 + 127) << 23) as u32)
}

/// `erf(x)` by Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7).
#[inline(always)]
pub(crate) fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = ((((1.061_405_4 * t - 1.453_152_1) * t + 1.421_413_8) * t - 0.284_496_74) * t
        + 0.254_829_6)
        * t;
    (1.0 - poly * exp(-a * a)).copysign(x)
}

/// The exact (erf) GELU that BERT's `hidden_act = "gelu"` means.
#[inline(always)]
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// Layer norm of `row` in place (biased variance, as torch computes it).
pub(crate) fn layer_norm(row: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let n = row.len() as f32;
    let mean = sum(row) / n;
    row.iter_mut().for_each(|v| *v -= mean);
    let var = dot(row, row) / n;
    let inv = 1.0 / (var + eps).sqrt();
    for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
        *v = *v * inv * g + b;
    }
}

/// Sum with eight independent accumulators, so it vectorises (as `coda_core::vector::dot`).
fn sum(v: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = v.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for i in 0..8 {
            acc[i] += c[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `gelu(x + bias)` for `x: [rows, bias.len()]`.
pub(crate) struct BiasGelu<'a> {
    pub bias: &'a [f32],
}

impl CustomOp1 for BiasGelu<'_> {
    fn name(&self) -> &'static str {
        "bias-gelu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let width = self.bias.len();
        let rows = rows_of(l, width, self.name())?;
        let x = contiguous(s, l, self.name())?;
        let mut out = x.to_vec();
        for_rows(&mut out, width, |_, row| {
            for (v, b) in row.iter_mut().zip(self.bias) {
                *v = gelu(*v + b);
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((rows, width))))
    }
}

/// `layer_norm(x + bias + residual)`, the end of each attention and feed-forward block.
pub(crate) struct AddNorm<'a> {
    pub bias: &'a [f32],
    pub gamma: &'a [f32],
    pub beta: &'a [f32],
    pub eps: f32,
}

impl CustomOp2 for AddNorm<'_> {
    fn name(&self) -> &'static str {
        "add-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let width = self.bias.len();
        let rows = rows_of(l1, width, self.name())?;
        if rows_of(l2, width, self.name())? != rows {
            candle_core::bail!("add-norm: residual has a different number of rows");
        }
        let x = contiguous(s1, l1, self.name())?;
        let residual = contiguous(s2, l2, self.name())?;
        let mut out = x.to_vec();
        for_rows(&mut out, width, |i, row| {
            let res = &residual[i * width..(i + 1) * width];
            for ((v, b), r) in row.iter_mut().zip(self.bias).zip(res) {
                *v += b + r;
            }
            layer_norm(row, self.gamma, self.beta, self.eps);
        });
        Ok((CpuStorage::F32(out), Shape::from((rows, width))))
    }
}

/// Multi-head self-attention over packed sequences: the input is the fused query-key-value
/// projection `[tokens, 3·hidden]` (bias not yet added), `lens` gives each sequence's token
/// count in order; the output is the context `[tokens, hidden]`. Tokens attend only within
/// their own sequence, which is what the padding mask achieves in a padded batch.
pub(crate) struct PackedAttention<'a> {
    pub bias: &'a [f32],
    pub lens: &'a [usize],
    pub heads: usize,
}

impl PackedAttention<'_> {
    /// Attention of one sequence: `qkv` are its rows (bias added, queries pre-scaled).
    fn sequence(&self, qkv: &[f32], len: usize, hidden: usize, out: &mut [f32]) {
        let d = hidden / self.heads;
        let stride = 3 * hidden;
        let mut scores = vec![0.0f32; len];
        for h in 0..self.heads {
            for i in 0..len {
                let q = &qkv[i * stride + h * d..][..d];
                let mut max = f32::NEG_INFINITY;
                for (j, s) in scores.iter_mut().enumerate() {
                    let k = &qkv[j * stride + hidden + h * d..][..d];
                    *s = dot(q, k);
                    max = max.max(*s);
                }
                let mut total = 0.0;
                for s in scores.iter_mut() {
                    *s = exp(*s - max);
                    total += *s;
                }
                let ctx = &mut out[i * hidden + h * d..][..d];
                ctx.fill(0.0);
                for (j, s) in scores.iter().enumerate() {
                    let p = s / total;
                    let v = &qkv[j * stride + 2 * hidden + h * d..][..d];
                    for (c, x) in ctx.iter_mut().zip(v) {
                        *c += p * x;
                    }
                }
            }
        }
    }
}

impl CustomOp1 for PackedAttention<'_> {
    fn name(&self) -> &'static str {
        "packed-attention"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let stride = self.bias.len();
        let hidden = stride / 3;
        let tokens = rows_of(l, stride, self.name())?;
        if self.lens.iter().sum::<usize>() != tokens || hidden % self.heads != 0 {
            candle_core::bail!("packed-attention: lengths or heads do not fit the input");
        }
        let scale = 1.0 / ((hidden / self.heads) as f32).sqrt();
        let mut qkv = contiguous(s, l, self.name())?.to_vec();
        for_rows(&mut qkv, stride, |_, row| {
            for (c, (v, b)) in row.iter_mut().zip(self.bias).enumerate() {
                *v += b;
                if c < hidden {
                    *v *= scale;
                }
            }
        });
        let mut out = vec![0.0f32; tokens * hidden];
        // Split input and output into per-sequence pieces so sequences run in parallel.
        let mut pieces = Vec::with_capacity(self.lens.len());
        let (mut qkv_rest, mut out_rest) = (&qkv[..], &mut out[..]);
        for &len in self.lens {
            let (q, qr) = qkv_rest.split_at(len * stride);
            let (o, or) = out_rest.split_at_mut(len * hidden);
            pieces.push((q, o, len));
            qkv_rest = qr;
            out_rest = or;
        }
        if pieces.len() > 1 {
            pieces
                .into_par_iter()
                .for_each(|(q, o, len)| self.sequence(q, len, hidden, o));
        } else {
            for (q, o, len) in pieces {
                self.sequence(q, len, hidden, o);
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((tokens, hidden))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_and_erf_are_accurate() {
        for i in -2000..=2000 {
            let x = i as f32 / 200.0;
            let e = exp(x);
            assert!(((e - x.exp()) / x.exp()).abs() < 1e-6, "exp({x}) = {e}");
            // Reference erf in f64 from its series/continued behaviour via libm-free identity:
            // compare against the odd symmetry and known values below instead.
            assert!((erf(x) + erf(-x)).abs() < 1e-7);
        }
        for (x, want) in [
            (0.0, 0.0),
            (0.5, 0.520_499_9),
            (1.0, 0.842_700_8),
            (2.0, 0.995_322_3),
        ] {
            assert!((erf(x) - want).abs() < 2e-7, "erf({x}) = {}", erf(x));
        }
        assert_eq!(exp(-1000.0), exp(-87.0));
    }

    #[test]
    fn layer_norm_centres_and_scales() {
        let mut row = [1.0, 2.0, 3.0, 4.0];
        layer_norm(&mut row, &[1.0; 4], &[0.5; 4], 0.0);
        let mean: f32 = row.iter().sum::<f32>() / 4.0;
        assert!((mean - 0.5).abs() < 1e-6);
        assert!((row[3] - row[0] - 2.683_281_6).abs() < 1e-5, "{row:?}");
    }
}
