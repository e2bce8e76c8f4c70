//! Tests against the real all-MiniLM-L6-v2 files in `$CODA_MINILM_DIR` (skipped with a notice
//! when it is unset, except under CI where they must run).

use std::path::Path;

use serde::Deserialize;

use coda_core::testkit::embedder_conformance;
use coda_core::vector::dot;
use coda_core::Embedder;
use coda_embedder_minilm::{test_model_dir, MinilmEmbedder, MinilmOptions};

#[derive(Deserialize)]
struct Reference {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    text: String,
    vector: Vec<f32>,
}

fn open(dir: &Path) -> MinilmEmbedder {
    let options = MinilmOptions {
        batch_size: 4,
        ..MinilmOptions::with_model_dir(dir)
    };
    MinilmEmbedder::open(&options).expect("model loads")
}

/// Vectors must match sentence-transformers' (fixture computed once with its `encode`),
/// whether texts are embedded alone or in a padded batch, including a text past the 256-token
/// truncation and the empty text.
#[test]
fn vectors_match_sentence_transformers() {
    let Some(dir) = test_model_dir() else { return };
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/reference.json");
    let reference: Reference =
        serde_json::from_slice(&std::fs::read(path).expect("fixture")).expect("fixture parses");
    let embedder = open(&dir);
    let texts: Vec<&str> = reference.cases.iter().map(|c| c.text.as_str()).collect();
    let batched = embedder.encode(&texts).expect("batch");
    let mut lowest = f32::MAX;
    for (case, got) in reference.cases.iter().zip(&batched) {
        let single = embedder.encode(&[&case.text]).expect("single");
        for (how, v) in [("batched", got), ("alone", &single[0])] {
            assert_eq!(v.len(), 384);
            let norm = dot(&case.vector, &case.vector).sqrt();
            let cosine = dot(v, &case.vector) / norm;
            assert!(cosine >= 0.999, "{how} {:?}: cosine {cosine}", case.text);
            lowest = lowest.min(cosine);
        }
    }
    eprintln!("lowest cosine to the reference: {lowest:.7}");
}

#[test]
fn passes_the_embedder_conformance_suite_and_ranks_paraphrases() {
    let Some(dir) = test_model_dir() else { return };
    let embedder = open(&dir);
    embedder_conformance(&embedder);

    let memories = [
        "The user has a dog named Rex.",
        "The user's name is Alice.",
        "The user works as a nurse at the city hospital.",
        "The user is allergic to peanuts.",
    ];
    let vectors = embedder.embed_batch(&memories).expect("batch");
    for (query, expected) in [
        ("what pet does the user own?", 0),
        ("where is the user employed?", 2),
        ("which foods must the user avoid?", 3),
    ] {
        let q = embedder.embed(query).expect("query");
        let best = (0..memories.len())
            .max_by(|&a, &b| dot(&q, &vectors[a]).total_cmp(&dot(&q, &vectors[b])))
            .expect("non-empty");
        assert_eq!(
            best, expected,
            "{query:?} ranked {:?} first",
            memories[best]
        );
    }
}

#[test]
fn repeated_texts_come_from_the_cache() {
    let Some(dir) = test_model_dir() else { return };
    let embedder = open(&dir);
    let first = embedder
        .embed("what pet does the user own?")
        .expect("embed");
    let before = embedder.cache_stats();
    let again = embedder
        .embed("what pet does the user own?")
        .expect("embed");
    let after = embedder.cache_stats();
    assert_eq!(first, again);
    assert_eq!(
        (after.hits - before.hits, after.misses - before.misses),
        (1, 0)
    );
    // A batch reuses cached vectors and encodes only the new text.
    let batch = embedder
        .embed_batch(&["what pet does the user own?", "a new text"])
        .expect("batch");
    assert_eq!(batch[0], first);
    let last = embedder.cache_stats();
    assert_eq!((last.hits - after.hits, last.misses - after.misses), (1, 1));
}

#[test]
fn fingerprint_names_the_model_and_its_dimensions() {
    let Some(dir) = test_model_dir() else { return };
    let embedder = open(&dir);
    let fp = embedder.fingerprint();
    assert!(fp.starts_with("minilm/") && fp.ends_with("/384"), "{fp}");
    assert_eq!(fp, open(&dir).fingerprint(), "same files, same fingerprint");
    assert_ne!(
        fp,
        coda_core::HashingEmbedder::new(384)
            .expect("hashing")
            .fingerprint()
    );

    // The same weights truncating at another length give other vectors for long texts, so a
    // different fingerprint: a store must not mix them.
    #[cfg(unix)]
    {
        let other = tempfile::tempdir().expect("tempdir");
        for file in ["model.safetensors", "config.json", "tokenizer.json"] {
            std::os::unix::fs::symlink(dir.join(file), other.path().join(file)).expect("link");
        }
        std::fs::write(
            other.path().join("sentence_bert_config.json"),
            r#"{"max_seq_length": 128}"#,
        )
        .expect("write");
        let shorter = open(other.path()).fingerprint();
        assert!(
            shorter.starts_with("minilm/") && shorter != fp,
            "{shorter} vs {fp}"
        );
    }
}
