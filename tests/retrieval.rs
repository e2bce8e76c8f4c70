//! Retrieval quality on the labelled set in `tests/data`: the `hashing` embedder with vector,
//! lexical and hybrid ranking through the manager.
//!
//! `cargo test --release --test retrieval -- --nocapture` prints the figures (and a weight
//! sweep for hybrid ranking).

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use coda::{Config, MemoryManager, NewMemory, SearchMode};
use serde::Deserialize;

#[derive(Deserialize)]
struct LabelledSet {
    memories: Vec<LabelledMemory>,
    queries: Vec<LabelledQuery>,
}

#[derive(Deserialize)]
struct LabelledMemory {
    id: String,
    content: String,
}

#[derive(Deserialize)]
struct LabelledQuery {
    query: String,
    relevant: Vec<String>,
    kind: String,
}

fn load() -> LabelledSet {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/retrieval_set.json");
    serde_json::from_slice(&std::fs::read(path).expect("labelled set")).expect("json")
}

/// A manager holding the labelled memories, and the label of each stored memory id.
fn manager(
    set: &LabelledSet,
    weights: (f32, f32),
) -> (Arc<MemoryManager>, HashMap<String, String>) {
    let dir = std::env::temp_dir();
    let config = Config::from_toml_str(&format!(
        "[memory]\nbackend = \"memory\"\nmax_content_bytes = 65536\n[search]\nvector_weight = {}\nlexical_weight = {}\n[stores.fs]\ndir = \"{}\"",
        weights.0,
        weights.1,
        dir.join("coda-retrieval-test").display()
    ))
    .expect("config");
    let coda = MemoryManager::builder(config)
        .configured_sinks(false)
        .build()
        .expect("manager");
    let mut labels = HashMap::new();
    for m in &set.memories {
        let stored = coda
            .add_memory(NewMemory::new(&m.content, "fact"))
            .expect("add");
        labels.insert(stored.id.to_string(), m.id.clone());
    }
    (coda, labels)
}

/// Recall@1 and recall@5 over the queries of `kind`.
fn recall(
    set: &LabelledSet,
    coda: &MemoryManager,
    labels: &HashMap<String, String>,
    kind: &str,
    mode: SearchMode,
) -> (f64, f64) {
    let (mut at1, mut at5, mut n) = (0, 0, 0);
    for q in set.queries.iter().filter(|q| q.kind == kind) {
        let hits = coda
            .search_memories(&q.query, 5, -1.0, None, Some(mode))
            .expect("search");
        let rank = hits
            .iter()
            .position(|h| q.relevant.contains(&labels[&h.id.to_string()]));
        at1 += usize::from(rank == Some(0));
        at5 += usize::from(rank.is_some());
        n += 1;
    }
    (at1 as f64 / n as f64, at5 as f64 / n as f64)
}

#[test]
fn ranking_quality_on_the_labelled_set() {
    let set = load();
    assert!(set.memories.len() >= 200 && set.queries.len() >= 30);
    let (coda, labels) = manager(&set, (0.7, 0.3));
    let mut keyword_at5 = HashMap::new();
    for mode in [SearchMode::Vector, SearchMode::Lexical, SearchMode::Hybrid] {
        for kind in ["keyword", "paraphrase"] {
            let (r1, r5) = recall(&set, &coda, &labels, kind, mode);
            println!("hashing/384 {mode:<8?} {kind:<10} recall@1 {r1:.3}  recall@5 {r5:.3}");
            if kind == "keyword" {
                keyword_at5.insert(format!("{mode:?}"), r5);
            }
        }
    }
    if std::env::var_os("CODA_WEIGHT_SWEEP").is_some() {
        for vw in [0.3f32, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9] {
            let (coda, labels) = manager(&set, (vw, 1.0 - vw));
            let (k1, k5) = recall(&set, &coda, &labels, "keyword", SearchMode::Hybrid);
            let (p1, p5) = recall(&set, &coda, &labels, "paraphrase", SearchMode::Hybrid);
            println!(
                "hybrid vector_weight {vw:.1}: keyword {k1:.3}/{k5:.3}  paraphrase {p1:.3}/{p5:.3}"
            );
        }
    }
    // Quality floors, not speed: keyword queries share words with their memory.
    for (mode, r5) in keyword_at5 {
        assert!(r5 >= 0.85, "{mode} keyword recall@5 fell to {r5:.3}");
    }
}
