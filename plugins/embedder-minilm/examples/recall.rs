//! Recall@1/@5 of an embedder on the labelled retrieval set, per query kind.
//!
//! `cargo run --release -p coda-embedder-minilm --example recall -- hashing`
//! `CODA_MINILM_DIR=~/.cache/coda/all-MiniLM-L6-v2 cargo run --release -p coda-embedder-minilm --example recall -- minilm`
//!
//! `lexical` measures the BM25 baseline instead of an embedder. Otherwise the embedder is built
//! through the registry by name, so any linked embedder can be measured;
//! a second argument is a JSON object of its options (for minilm, `model_dir` defaults to
//! `$CODA_MINILM_DIR`).

use std::time::Instant;

use serde_json::{json, Value};

use coda_core::registry::{find, EmbedderFactory};
use coda_core::{EmbedderContext, Error, Result};
use coda_embedder_minilm::eval::{evaluate, evaluate_embedder, LexicalRanker, RetrievalSet};

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let name = args
        .next()
        .unwrap_or_else(|| coda_embedder_minilm::NAME.to_owned());
    let mut options: Value = match args.next() {
        Some(text) => serde_json::from_str(&text)
            .map_err(|e| Error::invalid("options", format!("not JSON: {e}")))?,
        None => json!({}),
    };
    if name == coda_embedder_minilm::NAME && options.get("model_dir").is_none() {
        if let Some(dir) = std::env::var_os("CODA_MINILM_DIR") {
            options["model_dir"] = json!(dir.to_string_lossy());
        }
    }
    let set = RetrievalSet::bundled()?;
    if name == "lexical" {
        let report = evaluate(&set, &mut LexicalRanker::new(&set))?;
        println!(
            "lexical (BM25): {} memories, {} queries",
            set.memories.len(),
            set.queries.len()
        );
        print!("{report}");
        return Ok(());
    }
    let path = format!("embedders.{name}");
    let embedder =
        find::<EmbedderFactory>(&name)?.build_with(options, &path, &EmbedderContext::default())?;
    let start = Instant::now();
    let report = evaluate_embedder(&set, embedder.as_ref())?;
    println!(
        "{name} ({}): {} memories, {} queries, {:.1} s",
        embedder.fingerprint(),
        set.memories.len(),
        set.queries.len(),
        start.elapsed().as_secs_f64()
    );
    print!("{report}");
    Ok(())
}
