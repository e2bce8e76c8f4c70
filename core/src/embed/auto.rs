//! The `auto` embedder (SPEC §10): `minilm` when its model is found, else `hashing` with one
//! warning saying how to get semantic search.
//!
//! It lives in core, not in the minilm plugin, so a program linking coda-core alone can still
//! configure `auto` (it resolves to `hashing`). It finds `minilm` through the registry, and the
//! embedder it returns *is* the picked one: its name and fingerprint are `minilm`'s or
//! `hashing`'s, so a store re-embeds when a newly installed model switches `auto` over.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Embedder, EmbedderContext, HASHING_NAME};
use crate::registry::{self, EmbedderFactory};
use crate::Result;

/// Registered name of the embedder that picks `minilm` or `hashing`.
pub const AUTO_NAME: &str = "auto";

/// The name the MiniLM plugin registers under; `auto` picks it when its model is found.
pub const MINILM_NAME: &str = "minilm";

/// Files a MiniLM model directory must hold to count as found.
pub const MINILM_FILES: [&str; 3] = ["model.safetensors", "config.json", "tokenizer.json"];

/// The environment variable naming a MiniLM model directory.
pub const MINILM_DIR_ENV: &str = "CODA_MINILM_DIR";

/// The Hugging Face repository of the model.
pub const MINILM_REPO: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// What to run for semantic search, quoted by the fallback warning.
pub const HOW_TO_GET_SEMANTIC: &str = "run `coda models pull minilm` for semantic search";

/// Options of `[embedders.auto]`: none; `auto` uses the `[embedders.minilm]` and
/// `[embedders.hashing]` tables of whichever it picks.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoOptions {}

/// Where a candidate model directory came from, in the order `auto` looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelSource {
    /// `[embedders.minilm] model_dir`, when the configuration sets it.
    Config,
    /// `$CODA_MINILM_DIR`.
    Env,
    /// `~/.cache/coda/models/all-MiniLM-L6-v2`, where `coda models pull` installs.
    CodaCache,
    /// A snapshot in the Hugging Face hub cache (`$HF_HUB_CACHE`, else `$HF_HOME/hub`).
    HuggingFace,
}

impl fmt::Display for ModelSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ModelSource::Config => "embedders.minilm.model_dir",
            ModelSource::Env => "$CODA_MINILM_DIR",
            ModelSource::CodaCache => "coda cache",
            ModelSource::HuggingFace => "Hugging Face cache",
        })
    }
}

/// One place `auto` looks for the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelCandidate {
    /// The directory.
    pub dir: PathBuf,
    /// Why it is looked at.
    pub source: ModelSource,
}

impl ModelCandidate {
    /// Whether the directory holds every file in [`MINILM_FILES`].
    pub fn is_complete(&self) -> bool {
        is_model_dir(&self.dir)
    }
}

/// Whether `dir` holds every file in [`MINILM_FILES`] (symlinks, as in the hub cache, count).
pub fn is_model_dir(dir: &Path) -> bool {
    MINILM_FILES.iter().all(|f| dir.join(f).is_file())
}

/// What `auto` resolves to under a configuration's `[embedders.*]` tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AutoChoice {
    /// `minilm`, reading the model found at this candidate.
    Minilm(ModelCandidate),
    /// `hashing`, because of `reason`.
    Hashing {
        /// Why `minilm` was not picked.
        reason: String,
    },
}

impl AutoChoice {
    /// The registered name of the picked embedder.
    pub fn name(&self) -> &'static str {
        match self {
            AutoChoice::Minilm(_) => MINILM_NAME,
            AutoChoice::Hashing { .. } => HASHING_NAME,
        }
    }
}

impl fmt::Display for AutoChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AutoChoice::Minilm(found) => write!(
                f,
                "minilm (model at {}, from {})",
                found.dir.display(),
                found.source
            ),
            AutoChoice::Hashing { reason } => write!(f, "hashing ({reason})"),
        }
    }
}

/// `$HOME` (`%USERPROFILE%` on Windows); read from the environment so tests can move it.
pub fn home_dir() -> Option<PathBuf> {
    ["HOME", "USERPROFILE"]
        .iter()
        .filter_map(std::env::var_os)
        .find(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// `~/.cache/coda/models/all-MiniLM-L6-v2`: where `coda models pull minilm` installs.
pub fn coda_cache_dir() -> Option<PathBuf> {
    home_dir().map(|home| home.join(".cache/coda/models/all-MiniLM-L6-v2"))
}

/// The Hugging Face hub cache: `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else
/// `~/.cache/huggingface/hub`.
pub fn hf_hub_cache() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("HF_HUB_CACHE") {
        return Some(PathBuf::from(dir));
    }
    if let Some(home) = var("HF_HOME") {
        return Some(PathBuf::from(home).join("hub"));
    }
    home_dir().map(|home| home.join(".cache/huggingface/hub"))
}

/// The model's directory in the Hugging Face hub cache
/// (`models--sentence-transformers--all-MiniLM-L6-v2`).
pub fn hf_repo_dir() -> Option<PathBuf> {
    hf_hub_cache().map(|cache| cache.join(format!("models--{}", MINILM_REPO.replace('/', "--"))))
}

/// Snapshot directories of the model in the hub cache: the one `refs/main` names first, then
/// the others by name, so the choice is deterministic.
fn hf_snapshots() -> Vec<PathBuf> {
    let Some(repo) = hf_repo_dir() else {
        return Vec::new();
    };
    let snapshots = repo.join("snapshots");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&snapshots)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    if let Ok(main) = std::fs::read_to_string(repo.join("refs/main")) {
        let main = snapshots.join(main.trim());
        if let Some(i) = dirs.iter().position(|d| *d == main) {
            let first = dirs.remove(i);
            dirs.insert(0, first);
        }
    }
    dirs
}

/// Every place `auto` looks for the model, in order: `model_dir` from `minilm_options` (the
/// `[embedders.minilm]` table, when it sets one), `$CODA_MINILM_DIR`, the coda cache, then the
/// Hugging Face cache's snapshots.
pub fn minilm_candidates(minilm_options: &Value) -> Vec<ModelCandidate> {
    let mut out = Vec::new();
    if let Some(dir) = minilm_options.get("model_dir").and_then(Value::as_str) {
        out.push(ModelCandidate {
            dir: PathBuf::from(dir),
            source: ModelSource::Config,
        });
    }
    if let Some(dir) = std::env::var_os(MINILM_DIR_ENV).filter(|v| !v.is_empty()) {
        out.push(ModelCandidate {
            dir: PathBuf::from(dir),
            source: ModelSource::Env,
        });
    }
    if let Some(dir) = coda_cache_dir() {
        out.push(ModelCandidate {
            dir,
            source: ModelSource::CodaCache,
        });
    }
    out.extend(hf_snapshots().into_iter().map(|dir| ModelCandidate {
        dir,
        source: ModelSource::HuggingFace,
    }));
    out
}

/// What `auto` picks for a configuration's `[embedders.*]` tables, without loading anything.
pub fn resolve(embedders: &std::collections::BTreeMap<String, Value>) -> AutoChoice {
    if registry::find::<EmbedderFactory>(MINILM_NAME).is_err() {
        return AutoChoice::Hashing {
            reason: "the minilm embedder is not linked into this program".into(),
        };
    }
    let options = embedders.get(MINILM_NAME).cloned().unwrap_or(Value::Null);
    let candidates = minilm_candidates(&options);
    match candidates.iter().find(|c| c.is_complete()) {
        Some(found) => AutoChoice::Minilm(found.clone()),
        None => {
            let mut looked: Vec<String> = candidates
                .iter()
                .map(|c| c.dir.display().to_string())
                .collect();
            let hf_looked = candidates
                .iter()
                .any(|c| c.source == ModelSource::HuggingFace);
            if let (false, Some(repo)) = (hf_looked, hf_repo_dir()) {
                looked.push(repo.join("snapshots").display().to_string());
            }
            let looked = if looked.is_empty() {
                "nowhere to look: HOME is unset".to_owned()
            } else {
                format!("looked in {}", looked.join(", "))
            };
            AutoChoice::Hashing {
                reason: format!("no all-MiniLM-L6-v2 model found; {looked}"),
            }
        }
    }
}

/// Set once the fallback warning was logged: a process building several managers (tenants,
/// tests) says it once.
static WARNED: AtomicBool = AtomicBool::new(false);

fn build_auto(_options: AutoOptions, ctx: &EmbedderContext) -> Result<Arc<dyn Embedder>> {
    let choice = resolve(&ctx.embedders);
    let (name, options) = match &choice {
        AutoChoice::Minilm(found) => {
            let mut options = match ctx.embedders.get(MINILM_NAME) {
                Some(Value::Object(map)) => map.clone(),
                _ => Map::new(),
            };
            options.insert(
                "model_dir".into(),
                Value::String(found.dir.to_string_lossy().into_owned()),
            );
            tracing::info!(embedder = %choice, "memory.embedder \"auto\" picked minilm");
            (MINILM_NAME, Value::Object(options))
        }
        AutoChoice::Hashing { reason } => {
            if !WARNED.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "memory.embedder \"auto\" is using `hashing`, which matches words, not \
                     meaning ({reason}); {HOW_TO_GET_SEMANTIC}"
                );
            }
            let options = ctx
                .embedders
                .get(HASHING_NAME)
                .cloned()
                .unwrap_or_else(|| Value::Object(Map::new()));
            (HASHING_NAME, options)
        }
    };
    registry::find::<EmbedderFactory>(name)?.build_with(options, &format!("embedders.{name}"), ctx)
}

crate::register_embedder!(AUTO_NAME, AutoOptions, build_auto);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn without_minilm_linked_auto_is_hashing_with_its_options() {
        let choice = resolve(&BTreeMap::new());
        assert_eq!(choice.name(), HASHING_NAME);
        assert!(choice.to_string().contains("not linked"), "{choice}");
        let tables = BTreeMap::from([(HASHING_NAME.to_owned(), serde_json::json!({"dims": 64}))]);
        let embedder = registry::find::<EmbedderFactory>(AUTO_NAME)
            .expect("registered")
            .build_with(
                serde_json::json!({}),
                "embedders.auto",
                &EmbedderContext::new(tables),
            )
            .expect("builds");
        assert_eq!(embedder.name(), HASHING_NAME);
        assert_eq!(embedder.fingerprint(), "hashing-v1/64");
    }

    #[test]
    fn auto_takes_no_options() {
        let err = registry::find::<EmbedderFactory>(AUTO_NAME)
            .expect("registered")
            .check_options(serde_json::json!({"model_dir": "x"}), "embedders.auto")
            .expect_err("unknown key");
        assert!(err.to_string().contains("embedders.auto"), "{err}");
    }

    #[test]
    fn a_configured_model_dir_is_looked_at_first_and_needs_every_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let options = serde_json::json!({"model_dir": dir.path()});
        let first = minilm_candidates(&options).remove(0);
        assert_eq!(first.source, ModelSource::Config);
        assert!(!first.is_complete());
        for file in MINILM_FILES {
            std::fs::write(dir.path().join(file), b"{}").expect("write");
        }
        assert!(first.is_complete());
    }
}
