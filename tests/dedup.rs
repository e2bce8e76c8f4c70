//! When a new slot-less memory counts as a restatement of one the user has (SPEC §10), measured
//! on restatements that differ only in form and on pairs that look alike but say different
//! things, which must never merge.
//!
//! Cosine alone cannot tell them apart: with minilm "the flight leaves at 9 am" and "… 9 pm"
//! score 0.986, above every real restatement here (0.949–0.996). So a restatement needs the
//! same words in order (articles and inflections aside) *and* a cosine of at least
//! `memory.dedup_similarity` (0.9, under the lowest restatement with either embedder).
//!
//! `cargo test --test dedup -- --nocapture` prints every pair's cosine and verdict for
//! `hashing` and (with `CODA_MINILM_DIR`) `minilm`.

#![allow(clippy::unwrap_used)]

use coda::Config;

/// Same fact, other form: these may merge.
const RESTATED: &[(&str, &str)] = &[
    (
        "The user is allergic to peanuts.",
        "The user is allergic to peanut.",
    ),
    (
        "The user works at Acme Corp.",
        "the user works at acme corp",
    ),
    (
        "User prefers window seats on flights",
        "The user prefers window seats on flights.",
    ),
    (
        "The user's sister is called Anna.",
        "The user's sister is called Anna!",
    ),
    (
        "The user drinks two coffees a day.",
        "The user drinks two coffees a day",
    ),
];

/// Different facts that look alike: these must stay two memories.
const DIFFERENT: &[(&str, &str)] = &[
    (
        "The user has a dog called Rex.",
        "The user has a cat called Rex.",
    ),
    (
        "The user's sister lives in Rome.",
        "The user lives in Rome.",
    ),
    (
        "The user is allergic to peanuts.",
        "The user is allergic to shellfish.",
    ),
    (
        "The user has a meeting with Tom on Friday.",
        "The user has a meeting with Tom on Monday.",
    ),
    (
        "The user's flight leaves at 9 am.",
        "The user's flight leaves at 9 pm.",
    ),
    ("The user does not eat pork.", "The user does eat pork."),
    (
        "The user's favourite colour is blue.",
        "The user's favourite colour is green.",
    ),
    (
        "The user owes Sam 20 euros.",
        "The user owes Sam 200 euros.",
    ),
    (
        "The user's son is 7 years old.",
        "The user's son is 17 years old.",
    ),
];

fn manager(name: &str) -> Option<std::sync::Arc<coda::MemoryManager>> {
    let toml = match name {
        "minilm" => format!(
            "embedder = \"minilm\"\n[embedders.minilm]\nmodel_dir = \"{}\"\n",
            std::env::var("CODA_MINILM_DIR").ok()?
        ),
        _ => "embedder = \"hashing\"\n".to_owned(),
    };
    let config = Config::from_toml_str(&format!(
        "[stores.fs]\ndir = \"unused\"\n[memory]\nbackend = \"memory\"\n{toml}"
    ))
    .unwrap();
    Some(
        coda::MemoryManager::builder(config)
            .configured_sinks(false)
            .build()
            .unwrap(),
    )
}

/// For each pair, in a user of its own: the cosine, and whether the second was deduplicated.
fn verdicts(coda: &coda::MemoryManager, pairs: &[(&str, &str)], tag: &str) -> Vec<(f32, bool)> {
    pairs
        .iter()
        .enumerate()
        .map(|(i, (a, b))| {
            let user = coda.user(&format!("{tag}{i}")).unwrap();
            user.remember(coda::NewMemory::new(*a, "fact")).unwrap();
            let second = user.remember(coda::NewMemory::new(*b, "fact")).unwrap();
            let (ea, eb) = (
                coda.embedder().embed(a).unwrap(),
                coda.embedder().embed(b).unwrap(),
            );
            (coda::vector::dot(&ea, &eb), second.deduplicated)
        })
        .collect()
}

#[test]
fn restatements_merge_and_look_alikes_never_do() {
    for name in ["hashing", "minilm"] {
        let Some(coda) = manager(name) else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CODA_MINILM_DIR must name the model under CI"
            );
            println!("dedup: minilm skipped (set CODA_MINILM_DIR)");
            continue;
        };
        let same = verdicts(&coda, RESTATED, "r");
        let other = verdicts(&coda, DIFFERENT, "d");
        for ((a, b), (c, merged)) in RESTATED.iter().zip(&same) {
            println!("dedup {name}: restated  {c:.4} merged={merged}  {a:?} / {b:?}");
        }
        for ((a, b), (c, merged)) in DIFFERENT.iter().zip(&other) {
            println!("dedup {name}: different {c:.4} merged={merged}  {a:?} / {b:?}");
        }
        let lowest_same = same.iter().map(|v| v.0).fold(f32::MAX, f32::min);
        let highest_other = other.iter().map(|v| v.0).fold(f32::MIN, f32::max);
        println!(
            "dedup {name}: restatements from cosine {lowest_same:.4}; look-alikes up to \
             {highest_other:.4}"
        );
        assert!(
            same.iter().all(|v| v.1),
            "{name}: a restatement was stored twice"
        );
        assert!(
            !other.iter().any(|v| v.1),
            "{name}: two different facts merged"
        );
    }
}
