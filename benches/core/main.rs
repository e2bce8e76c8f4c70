//! Core figures: embed, add_memory, and search top-10 over 10k and 100k memories, each search
//! with the exact index and the int8 one, faiss `IndexFlatIP` beside them when it is installed.
//!
//! `cargo bench --bench core` (optionally `-- --quick` for a smaller run: no 100k, no
//! crossover, no HNSW). Prints p50/p99 per operation, then one `summary` line per data set; the
//! search target is < 20 ms p50 over 100k × 384 on one core, and int8 ≤ 0.6 × faiss.
//!
//! Then `index = "hnsw"` over `CODA_BENCH_HNSW_N` vectors (default 200,000; see `hnsw.rs`);
//! `-- --hnsw-only` runs that part alone.

mod hnsw;
mod index;

use std::sync::Arc;
use std::time::{Duration, Instant};

use coda::embed::{Embedder, HashingEmbedder};
use coda::{Config, MemoryManager, NewMemory};

use index::Dataset;

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

/// Vectors of the bench's varied memory texts from the hashing embedder, and questions about them.
fn hashing_dataset(embedder: &HashingEmbedder, n: usize, queries: usize) -> Dataset {
    let (vectors, load) = time(|| {
        (0..n)
            .map(|i| embedder.embed(&text(i)).expect("embed"))
            .collect::<Vec<_>>()
    });
    println!("embedded {n} memories in {:.2} s", load.as_secs_f64());
    let queries = (0..queries)
        .map(|q| {
            let question = format!(
                "what did the user say about the {} in {}",
                SUBJECTS[q % SUBJECTS.len()],
                PLACES[(q / SUBJECTS.len()) % PLACES.len()]
            );
            embedder.embed(&question).expect("embed")
        })
        .collect();
    Dataset {
        name: "hashing",
        dims: embedder.dims(),
        vectors,
        queries,
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let embedder = HashingEmbedder::new(384).expect("embedder");
    if std::env::args().any(|a| a == "--hnsw-only") {
        hnsw_part(&embedder);
        return;
    }

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

    // Everything in one user, so each search scans all `n`: the unscoped figure as before.
    let dims = embedder.dims();
    index::compare(&hashing_dataset(&embedder, 10_000, 500));
    index::compare(&Dataset::random(10_000, dims, 500, 1));
    if !quick {
        index::compare(&hashing_dataset(&embedder, 100_000, 200));
        index::compare(&Dataset::random(100_000, dims, 200, 2));
        index::crossover(dims);
        hnsw_part(&embedder);
    }
}

/// The HNSW figures over one user of `hnsw::size()` memories (see `hnsw.rs` for the data).
fn hnsw_part(embedder: &HashingEmbedder) {
    let n = hnsw::size();
    if n < 2 {
        return;
    }
    let hashing = hashing_dataset(embedder, n, 200);
    hnsw::compare(&hashing);
    hnsw::open(&hashing);
    drop(hashing);
    if std::env::var("CODA_BENCH_HNSW_GAUSSIAN").is_ok_and(|v| v == "1") {
        hnsw::compare(&Dataset::random(n, embedder.dims(), 200, 3));
    }
}
