//! The `Embedder` trait, the offline `hashing` embedder and `auto`, which picks `minilm` when
//! its model is installed and `hashing` otherwise.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use twox_hash::XxHash3_64;

use crate::vector::normalize;
use crate::{Error, Result};

pub mod auto;

/// What an embedder factory is given besides its options.
#[non_exhaustive]
#[derive(Default)]
pub struct EmbedderContext {
    /// Every `[embedders.<name>]` table of the configuration, so an embedder that delegates
    /// (`auto`) can build the one it picks with the user's options for it.
    pub embedders: BTreeMap<String, Value>,
}

impl EmbedderContext {
    /// A context carrying the configuration's `[embedders.*]` tables.
    pub fn new(embedders: BTreeMap<String, Value>) -> Self {
        EmbedderContext { embedders }
    }
}

/// Turns text into a vector whose cosine similarity reflects similarity of meaning.
pub trait Embedder: Send + Sync + 'static {
    /// The registered name, e.g. `hashing`.
    fn name(&self) -> &str;

    /// Length of every vector this embedder returns.
    fn dims(&self) -> usize;

    /// Identifies the vector space: two embedders with the same fingerprint produce comparable
    /// vectors. Stores record it so switching embedders never mixes vectors silently.
    fn fingerprint(&self) -> String {
        format!("{}/{}", self.name(), self.dims())
    }

    /// The L2-normalised embedding of `text`.
    fn embed(&self, text: &str) -> Result<Vec<f32>>;

    /// Whether embedding a text takes microseconds (no model to run), so the server may embed
    /// on the request's own thread rather than on its blocking pool.
    fn is_cheap(&self) -> bool {
        false
    }

    /// Embeddings of many texts; embedders that batch faster override this.
    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        texts.iter().map(|text| self.embed(text)).collect()
    }
}

/// Registered name of the feature-hashing embedder.
pub const HASHING_NAME: &str = "hashing";

/// Options of `[embedders.hashing]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HashingOptions {
    /// Vector length (buckets). More buckets mean fewer collisions and more memory.
    #[serde(default = "HashingOptions::default_dims")]
    pub dims: usize,
}

impl HashingOptions {
    fn default_dims() -> usize {
        384
    }
}

impl Default for HashingOptions {
    fn default() -> Self {
        HashingOptions {
            dims: Self::default_dims(),
        }
    }
}

/// Deterministic feature hashing of words, word bigrams and character n-grams into signed
/// buckets. It needs no model, so it works offline from the first run; it matches shared
/// vocabulary, not paraphrase.
#[derive(Debug, Clone)]
pub struct HashingEmbedder {
    dims: usize,
}

/// Weights of each feature family, chosen on the labelled retrieval set in `tests/data`.
const WORD_WEIGHT: f32 = 1.0;
const BIGRAM_WEIGHT: f32 = 0.6;
const NGRAM_WEIGHT: f32 = 0.35;
const STOPWORD_WEIGHT: f32 = 0.08;

/// Seeds keep the feature families in separate hash spaces.
const WORD_SEED: u64 = 0x5157_4f52_4453;
const BIGRAM_SEED: u64 = 0x4249_4752_414d;
const NGRAM_SEED: u64 = 0x4e47_5241_4d53;

impl HashingEmbedder {
    /// An embedder producing `dims`-long vectors; `dims` must be in `8..=65536`.
    pub fn new(dims: usize) -> Result<Self> {
        if !(8..=65536).contains(&dims) {
            return Err(Error::config(
                "embedders.hashing.dims",
                format!("{dims} is outside 8..=65536"),
            ));
        }
        Ok(HashingEmbedder { dims })
    }

    fn add(&self, v: &mut [f32], seed: u64, feature: &[u8], weight: f32) {
        let h = XxHash3_64::oneshot_with_seed(seed, feature);
        let bucket = (h % self.dims as u64) as usize;
        let sign = if h >> 63 == 0 { 1.0 } else { -1.0 };
        v[bucket] += sign * weight;
    }
}

impl Embedder for HashingEmbedder {
    fn name(&self) -> &str {
        HASHING_NAME
    }

    fn is_cheap(&self) -> bool {
        true
    }

    fn dims(&self) -> usize {
        self.dims
    }

    fn fingerprint(&self) -> String {
        format!("hashing-v1/{}", self.dims)
    }

    fn embed(&self, text: &str) -> Result<Vec<f32>> {
        let mut v = vec![0.0f32; self.dims];
        let words = words(text);
        let mut previous: Option<&str> = None;
        let mut gram = Vec::with_capacity(16);
        for word in &words {
            if is_stopword(word) {
                self.add(&mut v, WORD_SEED, word.as_bytes(), STOPWORD_WEIGHT);
                continue;
            }
            let stem = stem(word);
            self.add(&mut v, WORD_SEED, stem.as_bytes(), WORD_WEIGHT);
            if let Some(prev) = previous {
                gram.clear();
                gram.extend_from_slice(prev.as_bytes());
                gram.push(b' ');
                gram.extend_from_slice(stem.as_bytes());
                self.add(&mut v, BIGRAM_SEED, &gram, BIGRAM_WEIGHT);
            }
            previous = Some(stem);
            // Character trigrams of the marked word catch inflections and typos.
            gram.clear();
            gram.push(b'<');
            gram.extend_from_slice(word.as_bytes());
            gram.push(b'>');
            let chars: Vec<usize> = std::str::from_utf8(&gram)
                .map(|s| s.char_indices().map(|(i, _)| i).collect())
                .unwrap_or_default();
            if chars.len() >= 3 {
                let count = chars.len() - 2;
                let weight = NGRAM_WEIGHT / (count as f32).sqrt();
                for i in 0..count {
                    let end = chars.get(i + 3).copied().unwrap_or(gram.len());
                    self.add(&mut v, NGRAM_SEED, &gram[chars[i]..end], weight);
                }
            }
        }
        normalize(&mut v);
        Ok(v)
    }
}

/// Lower-cased words of `text`; possessive `'s` is dropped so "user's" matches "user".
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for raw in text.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '’')) {
        let word = raw.trim_matches(|c| c == '\'' || c == '’').to_lowercase();
        let word = word
            .strip_suffix("'s")
            .or_else(|| word.strip_suffix("’s"))
            .unwrap_or(&word)
            .to_owned();
        if !word.is_empty() {
            out.push(word);
        }
    }
    out
}

/// Words too common to say what a text is about. "user" is here on purpose: nearly every
/// memory an assistant keeps is about the user.
pub fn is_stopword(word: &str) -> bool {
    const STOPWORDS: &[&str] = &[
        "a", "about", "after", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be",
        "been", "before", "being", "but", "by", "can", "could", "did", "do", "does", "doing",
        "for", "from", "had", "has", "have", "having", "he", "her", "hers", "him", "his", "how",
        "i", "i'm", "if", "in", "into", "is", "it", "its", "just", "me", "my", "of", "on", "or",
        "our", "she", "should", "so", "some", "than", "that", "the", "their", "them", "then",
        "there", "these", "they", "this", "those", "to", "too", "user", "users", "very", "was",
        "we", "were", "what", "when", "where", "which", "who", "whom", "why", "will", "with",
        "would", "you", "your",
    ];
    STOPWORDS.binary_search(&word).is_ok()
}

/// A light suffix-stripping stemmer: enough for plurals and common verb forms.
pub fn stem(word: &str) -> &str {
    for suffix in ["ing", "ies", "ed", "es", "s"] {
        if let Some(base) = word.strip_suffix(suffix) {
            if base.chars().count() >= 3 && !(suffix == "s" && base.ends_with('s')) {
                return base;
            }
        }
    }
    word
}

fn build_hashing(options: HashingOptions, _ctx: &EmbedderContext) -> Result<Arc<dyn Embedder>> {
    Ok(Arc::new(HashingEmbedder::new(options.dims)?))
}

crate::register_embedder!(HASHING_NAME, HashingOptions, build_hashing);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vector::dot;

    #[test]
    fn stopwords_are_sorted_for_binary_search() {
        assert!(is_stopword("the") && is_stopword("user") && !is_stopword("name"));
    }

    #[test]
    fn embeddings_are_deterministic_and_unit_length() {
        let e = HashingEmbedder::new(384).expect("dims");
        let a = e.embed("The user's name is Alice.").expect("embed");
        assert_eq!(a, e.embed("The user's name is Alice.").expect("embed"));
        assert_eq!(a.len(), 384);
        assert!((dot(&a, &a) - 1.0).abs() < 1e-5);
        assert!(e
            .embed("")
            .expect("empty text embeds")
            .iter()
            .all(|x| *x == 0.0));
    }

    #[test]
    fn name_query_ranks_the_name_fact_first() {
        let e = HashingEmbedder::new(384).expect("dims");
        let q = e.embed("what is the user's name").expect("embed");
        let target = e.embed("The user's name is Alice.").expect("embed");
        for other in [
            "The user prefers brief responses.",
            "The user lives in Paris.",
            "The user has a dog named Rex.",
            "The user asked about the weather tomorrow.",
        ] {
            let o = e.embed(other).expect("embed");
            assert!(dot(&q, &target) > dot(&q, &o), "{other}");
        }
    }

    #[test]
    fn dims_out_of_range_is_a_config_error() {
        let err = HashingEmbedder::new(2).expect_err("too small");
        assert!(err.to_string().contains("embedders.hashing.dims"), "{err}");
    }
}
