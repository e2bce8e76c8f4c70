//! A BERT encoder (the architecture of all-MiniLM-L6-v2) on candle's CPU backend, with
//! sentence-transformers' mean pooling and L2 normalisation.
//!
//! Written out rather than taken from candle-transformers: the encoder is short, and this spares
//! every build that crate's hundreds of other models. It works on `[tokens, hidden]` matrices of
//! texts packed end to end: every projection is one matrix product run by candle, and the rest
//! (attention, GELU, layer norms) is fused into the custom ops of [`crate::kernels`].

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde::Deserialize;

use coda_core::{Error, Result};

use crate::kernels::{layer_norm, AddNorm, BiasGelu, PackedAttention};

/// The fields of `config.json` the encoder needs (a Hugging Face `BertConfig`).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct BertConfig {
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "BertConfig::default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "BertConfig::default_act")]
    pub hidden_act: String,
}

impl BertConfig {
    fn default_eps() -> f64 {
        1e-12
    }

    fn default_act() -> String {
        "gelu".into()
    }
}

/// Token ids of several texts packed end to end, without padding; `lens` splits them.
pub(crate) struct Packed {
    pub ids: Vec<u32>,
    pub lens: Vec<usize>,
}

/// Turns a candle error into Coda's: it can only mean the model and the code disagree.
pub(crate) fn candle_err(e: candle_core::Error) -> Error {
    Error::Unavailable(format!("minilm encoder failed: {e}"))
}

/// A layer norm's parameters.
struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    eps: f32,
}

/// A projection: the weight stored transposed, `[in, out]` contiguous, which is the layout
/// gemm multiplies without repacking it on every call; and the bias, added by the fused op
/// that follows.
struct Linear {
    weight_t: Tensor,
    bias: Vec<f32>,
}

impl Linear {
    /// From PyTorch's `[out, in]` weight.
    fn new(weight: &Tensor, bias: Vec<f32>) -> Result<Linear> {
        let weight_t = weight
            .t()
            .and_then(|t| t.contiguous())
            .map_err(candle_err)?;
        Ok(Linear { weight_t, bias })
    }

    fn product(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.matmul(&self.weight_t)
    }

    fn add_norm(&self, x: &Tensor, residual: &Tensor, norm: &Norm) -> candle_core::Result<Tensor> {
        let op = AddNorm {
            bias: &self.bias,
            gamma: &norm.gamma,
            beta: &norm.beta,
            eps: norm.eps,
        };
        self.product(x)?.apply_op2_no_bwd(residual, &op)
    }
}

struct Layer {
    /// Query, key and value projections stacked into one `[3·hidden, hidden]` product.
    qkv: Linear,
    attention_out: Linear,
    attention_norm: Norm,
    intermediate: Linear,
    output: Linear,
    output_norm: Norm,
}

/// The encoder's weights; immutable after loading, so one instance serves every thread.
pub(crate) struct Bert {
    /// `[vocab, hidden]`, row-major.
    word_embeddings: Vec<f32>,
    /// `[max_positions, hidden]`, row-major.
    position_embeddings: Vec<f32>,
    /// Sentence embedding uses one segment: type 0 for every token.
    token_type_embedding: Vec<f32>,
    embedding_norm: Norm,
    layers: Vec<Layer>,
    heads: usize,
    hidden: usize,
    vocab: usize,
    max_positions: usize,
    device: Device,
}

/// Looks up named tensors, reporting a missing or misshapen one against the weights file.
struct Weights<'a> {
    tensors: HashMap<String, Tensor>,
    path: &'a Path,
}

impl Weights<'_> {
    fn get(&mut self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let tensor = self
            .tensors
            .remove(name)
            .ok_or_else(|| Error::corrupt(self.path, format!("tensor `{name}` is missing")))?;
        if tensor.dims() != shape {
            return Err(Error::corrupt(
                self.path,
                format!(
                    "tensor `{name}` has shape {:?}, config.json implies {shape:?}",
                    tensor.dims()
                ),
            ));
        }
        tensor.to_dtype(DType::F32).map_err(candle_err)
    }

    fn vec(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        self.get(name, shape)?
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(candle_err)
    }

    fn rows(&self, name: &str) -> usize {
        self.tensors
            .get(name)
            .and_then(|t| t.dims().first().copied())
            .unwrap_or(0)
    }

    /// A projection's PyTorch `[out, in]` weight and its bias.
    fn linear(&mut self, prefix: &str, out: usize, inp: usize) -> Result<(Tensor, Vec<f32>)> {
        Ok((
            self.get(&format!("{prefix}.weight"), &[out, inp])?,
            self.vec(&format!("{prefix}.bias"), &[out])?,
        ))
    }

    fn projection(&mut self, prefix: &str, out: usize, inp: usize) -> Result<Linear> {
        let (weight, bias) = self.linear(prefix, out, inp)?;
        Linear::new(&weight, bias)
    }

    fn norm(&mut self, prefix: &str, dims: usize, eps: f64) -> Result<Norm> {
        Ok(Norm {
            gamma: self.vec(&format!("{prefix}.weight"), &[dims])?,
            beta: self.vec(&format!("{prefix}.bias"), &[dims])?,
            eps: eps as f32,
        })
    }
}

impl Bert {
    /// Builds the encoder from the bytes of `model.safetensors` (read from `path`).
    pub(crate) fn load(config: &BertConfig, bytes: &[u8], path: &Path) -> Result<Bert> {
        let config_path = path.with_file_name("config.json");
        if config.hidden_act != "gelu" {
            return Err(Error::corrupt(
                config_path,
                format!(
                    "hidden_act `{}` is not supported (only `gelu`)",
                    config.hidden_act
                ),
            ));
        }
        if config.num_attention_heads == 0 || config.hidden_size % config.num_attention_heads != 0 {
            return Err(Error::corrupt(
                config_path,
                "hidden_size must be a multiple of num_attention_heads",
            ));
        }
        let device = Device::Cpu;
        let tensors = candle_core::safetensors::load_buffer(bytes, &device)
            .map_err(|e| Error::corrupt(path, e.to_string()))?;
        // Some exports prefix every name with `bert.`; accept both.
        let tensors = tensors
            .into_iter()
            .map(|(name, t)| {
                (
                    name.strip_prefix("bert.")
                        .map(str::to_owned)
                        .unwrap_or(name),
                    t,
                )
            })
            .collect();
        let mut w = Weights { tensors, path };
        let h = config.hidden_size;
        let eps = config.layer_norm_eps;
        let vocab = w.rows("embeddings.word_embeddings.weight");
        let types = w.rows("embeddings.token_type_embeddings.weight").max(1);
        let word_embeddings = w.vec("embeddings.word_embeddings.weight", &[vocab, h])?;
        let position_embeddings = w.vec(
            "embeddings.position_embeddings.weight",
            &[config.max_position_embeddings, h],
        )?;
        let mut token_type_embedding =
            w.vec("embeddings.token_type_embeddings.weight", &[types, h])?;
        token_type_embedding.truncate(h);
        let embedding_norm = w.norm("embeddings.LayerNorm", h, eps)?;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{i}");
            let q = w.linear(&format!("{p}.attention.self.query"), h, h)?;
            let k = w.linear(&format!("{p}.attention.self.key"), h, h)?;
            let v = w.linear(&format!("{p}.attention.self.value"), h, h)?;
            let qkv = Linear::new(
                &Tensor::cat(&[&q.0, &k.0, &v.0], 0).map_err(candle_err)?,
                [q.1, k.1, v.1].concat(),
            )?;
            layers.push(Layer {
                qkv,
                attention_out: w.projection(&format!("{p}.attention.output.dense"), h, h)?,
                attention_norm: w.norm(&format!("{p}.attention.output.LayerNorm"), h, eps)?,
                intermediate: w.projection(
                    &format!("{p}.intermediate.dense"),
                    config.intermediate_size,
                    h,
                )?,
                output: w.projection(&format!("{p}.output.dense"), h, config.intermediate_size)?,
                output_norm: w.norm(&format!("{p}.output.LayerNorm"), h, eps)?,
            });
        }
        Ok(Bert {
            word_embeddings,
            position_embeddings,
            token_type_embedding,
            embedding_norm,
            layers,
            heads: config.num_attention_heads,
            hidden: h,
            vocab,
            max_positions: config.max_position_embeddings,
            device,
        })
    }

    /// Length of the sentence vectors.
    pub(crate) fn hidden(&self) -> usize {
        self.hidden
    }

    /// Longest input the position table covers.
    pub(crate) fn max_positions(&self) -> usize {
        self.max_positions
    }

    /// Mean-pooled, L2-normalised sentence vectors, one per packed text.
    pub(crate) fn embed(&self, packed: &Packed) -> Result<Vec<Vec<f32>>> {
        let h = self.hidden;
        let x = self.embeddings(packed)?;
        let mut x = Tensor::from_vec(x, (packed.ids.len(), h), &self.device).map_err(candle_err)?;
        for layer in &self.layers {
            x = self.layer(layer, &x, &packed.lens).map_err(candle_err)?;
        }
        let x = x
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(candle_err)?;

        // Mean over each text's tokens, then unit length: sentence-transformers' Pooling
        // (mean tokens) followed by Normalize (eps 1e-12, like torch's F.normalize).
        let mut out = Vec::with_capacity(packed.lens.len());
        let mut rows = x.chunks_exact(h);
        for &len in &packed.lens {
            let mut mean = vec![0.0f32; h];
            for row in rows.by_ref().take(len) {
                for (m, v) in mean.iter_mut().zip(row) {
                    *m += v;
                }
            }
            let count = (len as f32).max(1e-9);
            mean.iter_mut().for_each(|m| *m /= count);
            let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            mean.iter_mut().for_each(|m| *m /= norm);
            out.push(mean);
        }
        Ok(out)
    }

    /// Word + position + segment embeddings, layer-normed, as `[tokens, hidden]`.
    fn embeddings(&self, packed: &Packed) -> Result<Vec<f32>> {
        let h = self.hidden;
        let mut x = vec![0.0f32; packed.ids.len() * h];
        let mut rows = x.chunks_exact_mut(h);
        let mut ids = packed.ids.iter();
        for &len in &packed.lens {
            if len > self.max_positions {
                return Err(Error::invalid(
                    "text",
                    "longer than the model's position table",
                ));
            }
            for (position, (row, &id)) in rows.by_ref().zip(ids.by_ref()).take(len).enumerate() {
                let id = id as usize;
                if id >= self.vocab {
                    return Err(Error::invalid(
                        "text",
                        format!("token id {id} outside the vocabulary"),
                    ));
                }
                let word = &self.word_embeddings[id * h..][..h];
                let pos = &self.position_embeddings[position * h..][..h];
                for (((v, a), b), c) in row
                    .iter_mut()
                    .zip(word)
                    .zip(pos)
                    .zip(&self.token_type_embedding)
                {
                    *v = a + b + c;
                }
                let norm = &self.embedding_norm;
                layer_norm(row, &norm.gamma, &norm.beta, norm.eps);
            }
        }
        Ok(x)
    }

    fn layer(&self, layer: &Layer, x: &Tensor, lens: &[usize]) -> candle_core::Result<Tensor> {
        let attention = PackedAttention {
            bias: &layer.qkv.bias,
            lens,
            heads: self.heads,
        };
        let context = layer.qkv.product(x)?.apply_op1_no_bwd(&attention)?;
        let x = layer
            .attention_out
            .add_norm(&context, x, &layer.attention_norm)?;
        let gelu = BiasGelu {
            bias: &layer.intermediate.bias,
        };
        let inner = layer.intermediate.product(&x)?.apply_op1_no_bwd(&gelu)?;
        layer.output.add_norm(&inner, &x, &layer.output_norm)
    }
}

/// Reads `config.json`.
pub(crate) fn read_config(path: &Path) -> Result<BertConfig> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::corrupt(path, e.to_string()))
}
