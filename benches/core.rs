//! Core figures: embed, add_memory, and search top-10 over 10k and 100k memories.
//!
//! `cargo bench --bench core` (optionally `-- --quick` for a smaller run). Prints p50/p99 per
//! operation; the search target is < 20 ms p50 over 100k × 384 on one core.

use std::sync::Arc;
use std::time::{Duration, Instant};

use coda::backend_memory::InMemoryBackend;
use coda::embed::{Embedder, HashingEmbedder};
use coda::{
    Config, Memory, MemoryBackend, MemoryManager, MemoryRecord, Metadata, NewMemory, Scope,
};

const SUBJECTS: &[&str] = &[
    "dog", "cat", "sister", "brother", "car", "bike", "garden", "kitchen", "office", "doctor",
    "dentist", "flight", "hotel", "concert", "recipe", "coffee", "tea", "book", "movie", "song",
];
const VERBS: &[&str] = &[
    "likes",
    "prefers",
    "visited",
    "booked",
    "cancelled",
    "asked about",
    "bought",
    "repaired",
    "mentioned",
    "planned",
];
const PLACES: &[&str] = &[
    "Paris", "Berlin", "Tokyo", "Lisbon", "Oslo", "Austin", "Lima", "Cairo", "Seoul", "Quebec",
];

/// A varied, deterministic memory text.
fn text(i: usize) -> String {
    format!(
        "The user {} the {} in {} on day {} ({}).",
        VERBS[i % VERBS.len()],
        SUBJECTS[(i / 7) % SUBJECTS.len()],
        PLACES[(i / 13) % PLACES.len()],
        i % 365,
        i
    )
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let p50 = percentile(&samples, 0.5);
    let p99 = percentile(&samples, 0.99);
    println!(
        "{name:<34} n={:<6} p50 {:>10.3} µs   p99 {:>10.3} µs",
        samples.len(),
        p50.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6
    );
}

fn time<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed())
}

fn bench_search(embedder: &HashingEmbedder, n: usize, queries: usize) {
    let backend = InMemoryBackend::new(embedder.dims());
    // Everything in one user, so the search scans all `n`: the unscoped figure as before.
    let scope = Scope::default();
    let (_, load) = time(|| {
        for i in 0..n {
            let content = text(i);
            let embedding = embedder.embed(&content).expect("embed");
            let metadata = Metadata {
                source_type: "fact".into(),
                importance: 0.5,
                timestamp: chrono::Utc::now(),
                topics: Vec::new(),
                extra: Default::default(),
            };
            let memory = Memory::new(uuid::Uuid::new_v4(), content, metadata).in_scope(&scope);
            backend
                .insert(&scope, MemoryRecord { memory, embedding })
                .expect("insert");
        }
    });
    println!("loaded {n} memories in {:.2} s", load.as_secs_f64());
    let samples: Vec<Duration> = (0..queries)
        .map(|q| {
            let query = embedder
                .embed(&format!(
                    "what did the user say about the {}",
                    SUBJECTS[q % SUBJECTS.len()]
                ))
                .expect("embed");
            time(|| {
                backend
                    .search(&scope, &query, 10, 0.0, None)
                    .expect("search")
            })
            .1
        })
        .collect();
    report(&format!("search top-10 over {n}"), samples);
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let embedder = HashingEmbedder::new(384).expect("embedder");

    let samples: Vec<Duration> = (0..20_000)
        .map(|i| {
            let t = text(i);
            time(|| embedder.embed(&t).expect("embed")).1
        })
        .collect();
    report("embed (hashing/384)", samples);

    let dir = std::env::temp_dir().join(format!("coda-bench-{}", std::process::id()));
    let config = Config::from_toml_str(&format!(
        "[memory]\nbackend = \"memory\"\nembedder = \"hashing\"\n[stores.fs]\ndir = \"{}\"",
        dir.display()
    ))
    .expect("config");
    let manager: Arc<MemoryManager> = MemoryManager::builder(config)
        .configured_sinks(false)
        .build()
        .expect("manager");
    let samples: Vec<Duration> = (0..20_000)
        .map(|i| {
            let new = NewMemory::new(text(i), "fact");
            time(|| manager.add_memory(new).expect("add")).1
        })
        .collect();
    report("add_memory (memory backend)", samples);
    let _ = std::fs::remove_dir_all(&dir);

    bench_search(&embedder, 10_000, 500);
    if !quick {
        bench_search(&embedder, 100_000, 200);
    }
}
