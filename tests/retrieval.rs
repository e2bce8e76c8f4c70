//! Retrieval quality of the `hashing` embedder on the labelled set in `tests/data`.
//!
//! Run with `cargo test --test retrieval -- --nocapture` to see the figures.

use coda::embed::{Embedder, HashingEmbedder};
use coda::vector::dot;
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

/// Recall@1 and recall@5 of `embedder` over the queries of `kind`.
fn recall(set: &LabelledSet, embedder: &dyn Embedder, kind: &str) -> (f64, f64, usize) {
    let vectors: Vec<Vec<f32>> = set
        .memories
        .iter()
        .map(|m| embedder.embed(&m.content).expect("embed memory"))
        .collect();
    let (mut at1, mut at5, mut n) = (0, 0, 0);
    for q in set.queries.iter().filter(|q| q.kind == kind) {
        let qv = embedder.embed(&q.query).expect("embed query");
        let mut ranked: Vec<(usize, f32)> = vectors
            .iter()
            .enumerate()
            .map(|(i, v)| (i, dot(&qv, v)))
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        let hit = |k: usize| {
            ranked[..k]
                .iter()
                .any(|(i, _)| q.relevant.contains(&set.memories[*i].id))
        };
        at1 += usize::from(hit(1));
        at5 += usize::from(hit(5));
        n += 1;
    }
    (at1 as f64 / n as f64, at5 as f64 / n as f64, n)
}

#[test]
fn hashing_embedder_finds_keyword_queries() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/retrieval_set.json");
    let set: LabelledSet =
        serde_json::from_slice(&std::fs::read(path).expect("labelled set")).expect("json");
    assert!(set.memories.len() >= 200 && set.queries.len() >= 30);
    let embedder = HashingEmbedder::new(384).expect("embedder");
    let (k1, k5, kn) = recall(&set, &embedder, "keyword");
    let (p1, p5, pn) = recall(&set, &embedder, "paraphrase");
    println!("hashing/384 keyword    ({kn} queries): recall@1 {k1:.3}  recall@5 {k5:.3}");
    println!("hashing/384 paraphrase ({pn} queries): recall@1 {p1:.3}  recall@5 {p5:.3}");
    // A quality floor, not a speed figure: keyword queries share words with their memory.
    assert!(k5 >= 0.85, "keyword recall@5 fell to {k5:.3}");
}
