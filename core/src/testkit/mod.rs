//! Conformance suites: one per trait, run by every bundled plugin and by your own.
//!
//! Each suite takes a constructor for a fresh, empty component and panics with a message naming
//! the broken rule. Enable with the `testkit` feature in `[dev-dependencies]`.

mod backend;
mod history;
mod scopes;
mod sink;
mod store;

pub use backend::backend_conformance;
pub use sink::{sink_conformance, CollectingSink};
pub use store::{sample_snapshot, store_conformance};

use crate::embed::Embedder;

/// Checks an embedder: right length, unit norm, deterministic, and ranks an obvious match first.
pub fn embedder_conformance(embedder: &dyn Embedder) {
    let dims = embedder.dims();
    assert!(dims > 0, "dims must be positive");
    let texts = [
        "The user's name is Alice.",
        "The user has a dog named Rex.",
        "The user lives in Paris.",
    ];
    let vectors = embedder.embed_batch(&texts).expect("embed_batch");
    assert_eq!(
        vectors.len(),
        texts.len(),
        "embed_batch returns one vector per text"
    );
    for (text, v) in texts.iter().zip(&vectors) {
        assert_eq!(v.len(), dims, "vector of {text:?} has the wrong length");
        let norm = crate::vector::dot(v, v).sqrt();
        assert!(
            (norm - 1.0).abs() < 1e-3,
            "vector of {text:?} is not unit length ({norm})"
        );
        assert_eq!(
            &embedder.embed(text).expect("embed"),
            v,
            "embed and embed_batch disagree"
        );
    }
    let query = embedder
        .embed("what is the user's name")
        .expect("embed query");
    let scores: Vec<f32> = vectors
        .iter()
        .map(|v| crate::vector::dot(&query, v))
        .collect();
    assert!(
        scores[0] > scores[1] && scores[0] > scores[2],
        "the name query should rank the name memory first: {scores:?}"
    );
}
