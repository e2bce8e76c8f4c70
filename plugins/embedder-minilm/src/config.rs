//! `[embedders.minilm]` options.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Options of the `minilm` embedder.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinilmOptions {
    /// Directory holding `model.safetensors`, `config.json` and `tokenizer.json` of
    /// all-MiniLM-L6-v2 (optionally `sentence_bert_config.json` and `1_Pooling/config.json`).
    /// A relative path is taken from the working directory.
    #[serde(default = "MinilmOptions::default_model_dir")]
    pub model_dir: PathBuf,
    /// Texts encoded together in one forward pass by the bulk paths (persist, re-embedding).
    #[serde(default = "MinilmOptions::default_batch_size")]
    pub batch_size: usize,
    /// Vectors kept for texts seen recently, so a repeated query is not encoded again;
    /// 0 turns the cache off.
    #[serde(default = "MinilmOptions::default_cache_entries")]
    pub cache_entries: usize,
    /// Threads the encoder computes with; unset uses rayon's global pool (one per core, or
    /// `RAYON_NUM_THREADS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
}

impl MinilmOptions {
    fn default_model_dir() -> PathBuf {
        PathBuf::from("models/all-MiniLM-L6-v2")
    }

    fn default_batch_size() -> usize {
        32
    }

    fn default_cache_entries() -> usize {
        1024
    }

    /// Default options reading the model from `model_dir`.
    pub fn with_model_dir(model_dir: impl Into<PathBuf>) -> Self {
        MinilmOptions {
            model_dir: model_dir.into(),
            ..Self::default()
        }
    }
}

impl Default for MinilmOptions {
    fn default() -> Self {
        MinilmOptions {
            model_dir: Self::default_model_dir(),
            batch_size: Self::default_batch_size(),
            cache_entries: Self::default_cache_entries(),
            threads: None,
        }
    }
}
