//! Embedding throughput of the `minilm` embedder on 2 threads: batched sentences per second and
//! single-sentence latency, over the memories of the bundled retrieval set.
//!
//! `CODA_MINILM_DIR=... cargo bench -p coda-embedder-minilm --bench embed`

use std::time::{Duration, Instant};

use coda_embedder_minilm::eval::RetrievalSet;
use coda_embedder_minilm::{MinilmEmbedder, MinilmOptions};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() -> coda_core::Result<()> {
    let dir = std::env::var_os("CODA_MINILM_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| MinilmOptions::default().model_dir);
    let options = MinilmOptions {
        threads: Some(2),
        batch_size: 32,
        ..MinilmOptions::with_model_dir(dir)
    };
    let embedder = MinilmEmbedder::open(&options)?;
    let set = RetrievalSet::bundled()?;
    let texts: Vec<&str> = set.memories.iter().map(|m| m.content.as_str()).collect();
    println!(
        "{} sentences, batch size {}, 2 threads",
        texts.len(),
        options.batch_size
    );

    // `encode` bypasses the cache: every round really runs the model.
    embedder.encode(&texts)?;
    let mut rounds = Vec::new();
    for _ in 0..7 {
        let start = Instant::now();
        embedder.encode(&texts)?;
        rounds.push(start.elapsed());
    }
    rounds.sort();
    let median = percentile(&rounds, 0.5);
    println!(
        "batched: median {:.1} ms per {} sentences = {:.0} sentences/s (best {:.0}/s)",
        median.as_secs_f64() * 1e3,
        texts.len(),
        texts.len() as f64 / median.as_secs_f64(),
        texts.len() as f64 / rounds[0].as_secs_f64(),
    );

    for text in texts.iter().take(20) {
        embedder.encode(&[text])?;
    }
    let mut singles = Vec::new();
    for _ in 0..2 {
        for text in &texts {
            let start = Instant::now();
            embedder.encode(&[text])?;
            singles.push(start.elapsed());
        }
    }
    singles.sort();
    println!(
        "single: p50 {:.2} ms, p99 {:.2} ms over {} sentences",
        percentile(&singles, 0.5).as_secs_f64() * 1e3,
        percentile(&singles, 0.99).as_secs_f64() * 1e3,
        singles.len()
    );
    Ok(())
}
