//! The memory backend's two indexes over the same vectors — `exact` (every `f32` vector scored)
//! and `int8` (an int8 scan, the best `10 × oversample` rescored exactly) — with recall@10,
//! bytes per vector, and faiss `IndexFlatIP` (one thread) on the same files when Python can
//! import faiss.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use coda::backend_memory::{InMemoryBackend, IndexOptions};
use coda::vector::normalize;
use coda::{Memory, MemoryBackend, MemoryRecord, Metadata, Scope, ScoredMemory};

use super::{report, time};

/// Vectors to search and queries to search them with.
pub struct Dataset {
    /// What the vectors are, for the report.
    pub name: &'static str,
    pub dims: usize,
    pub vectors: Vec<Vec<f32>>,
    pub queries: Vec<Vec<f32>>,
}

/// A deterministic xorshift64 stream: every run (and faiss) sees the same vectors.
pub struct Rng(pub u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Roughly normal components (a sum of four uniforms), normalised: dense like a sentence
    /// embedding, and with crowded scores, the hard case for a quantised scan.
    pub fn unit(&mut self, dims: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..dims)
            .map(|_| {
                (0..4)
                    .map(|_| (self.next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5)
                    .sum()
            })
            .collect();
        normalize(&mut v);
        v
    }
}

impl Dataset {
    pub fn random(n: usize, dims: usize, queries: usize, seed: u64) -> Dataset {
        let mut rng = Rng(seed);
        Dataset {
            name: "gaussian",
            dims,
            vectors: (0..n).map(|_| rng.unit(dims)).collect(),
            queries: (0..queries).map(|_| rng.unit(dims)).collect(),
        }
    }
}

pub fn load(backend: &InMemoryBackend, vectors: &[Vec<f32>]) {
    let scope = Scope::default();
    for (i, embedding) in vectors.iter().enumerate() {
        let metadata = Metadata::new("fact", 0.5);
        let memory = Memory::new(uuid::Uuid::new_v4(), format!("v{i}"), metadata).in_scope(&scope);
        let record = MemoryRecord {
            memory,
            embedding: embedding.clone(),
        };
        backend.insert(&scope, record).expect("insert");
    }
}

/// Every query's top 10, and the time each took.
pub fn run(
    backend: &InMemoryBackend,
    queries: &[Vec<f32>],
) -> (Vec<Vec<ScoredMemory>>, Vec<Duration>) {
    let scope = Scope::default();
    // A few untimed searches first, so page faults and cold caches are not in the figures.
    for q in queries.iter().take(5) {
        backend.search(&scope, q, 10, -1.0, None).expect("search");
    }
    queries
        .iter()
        .map(|q| time(|| backend.search(&scope, q, 10, -1.0, None).expect("search")))
        .unzip()
}

pub fn p50(samples: &[Duration]) -> f64 {
    let mut s = samples.to_vec();
    s.sort();
    s[(s.len() - 1) / 2].as_secs_f64() * 1e6
}

/// Recall@10 that counts ties as hits: a returned memory counts when its (exact) score is at
/// least the exact 10th best, so equal scores broken differently are not misses.
pub fn recall(exact: &[Vec<ScoredMemory>], int8: &[Vec<ScoredMemory>]) -> f64 {
    let mut hits = 0;
    let mut wanted = 0;
    for (want, got) in exact.iter().zip(int8) {
        let Some(tenth) = want.last() else { continue };
        wanted += want.len();
        hits += got
            .iter()
            .filter(|h| h.similarity >= tenth.similarity)
            .count()
            .min(want.len());
    }
    hits as f64 / wanted.max(1) as f64
}

/// Exact against int8 over `data`, faiss beside them; prints one summary line at the end.
pub fn compare(data: &Dataset) {
    let n = data.vectors.len();
    let exact = InMemoryBackend::with_index(data.dims, IndexOptions::exact());
    let int8 = InMemoryBackend::with_index(data.dims, IndexOptions::default());
    load(&exact, &data.vectors);
    load(&int8, &data.vectors);
    let (want, exact_t) = run(&exact, &data.queries);
    let bytes_exact = exact.vector_bytes() as f64 / n as f64;
    drop(exact);
    let (got, int8_t) = run(&int8, &data.queries);
    let bytes_int8 = int8.vector_bytes() as f64 / n as f64;
    drop(int8);
    let (exact_p50, int8_p50) = (p50(&exact_t), p50(&int8_t));
    report(&format!("search top-10 over {n} exact"), exact_t);
    report(&format!("search top-10 over {n} int8"), int8_t);
    let faiss = faiss_p50(data);
    let recall = recall(&want, &got);
    let vs_faiss = faiss.map_or("faiss not run".to_owned(), |f| {
        format!("faiss {:.2} ms, int8/faiss {:.2}", f / 1e3, int8_p50 / f)
    });
    println!(
        "summary {} {n} x {}: exact {:.2} ms, int8 {:.2} ms (int8/exact {:.2}), {vs_faiss}, \
         recall@10 {recall:.4}, vector bytes/memory exact {bytes_exact:.0} int8 {bytes_int8:.0}",
        data.name,
        data.dims,
        exact_p50 / 1e3,
        int8_p50 / 1e3,
        int8_p50 / exact_p50,
    );
}

/// Where the int8 scan starts to beat the exact one: both forced on, at small sizes.
pub fn crossover(dims: usize) {
    for n in [500, 1_000, 2_000, 4_000, 8_000] {
        let data = Dataset::random(n, dims, 300, 0xC0DA + n as u64);
        let exact = InMemoryBackend::with_index(dims, IndexOptions::exact());
        let int8 = InMemoryBackend::with_index(dims, IndexOptions::default().with_exact_below(0));
        load(&exact, &data.vectors);
        load(&int8, &data.vectors);
        let (_, e) = run(&exact, &data.queries);
        let (_, i) = run(&int8, &data.queries);
        println!(
            "crossover {n:>5} x {dims}: exact p50 {:>8.1} µs, int8 (forced) p50 {:>8.1} µs",
            p50(&e),
            p50(&i)
        );
    }
}

pub fn write_rows(path: &Path, rows: &[Vec<f32>]) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for row in rows {
        for x in row {
            out.write_all(&x.to_le_bytes())?;
        }
    }
    out.flush()
}

/// faiss's p50 in µs on `data`, or `None` (with the reason printed) when it cannot run.
fn faiss_p50(data: &Dataset) -> Option<f64> {
    let importable = Command::new("python3")
        .args(["-c", "import faiss, numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !importable {
        println!(
            "faiss: skipped (python3 cannot import faiss and numpy; `pip install faiss-cpu numpy`)"
        );
        return None;
    }
    let dir = std::env::temp_dir().join(format!("coda-faiss-{}", std::process::id()));
    let result = run_faiss(&dir, data);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Writes `data` into `dir` and runs the faiss script on it; its p50 in µs.
fn run_faiss(dir: &Path, data: &Dataset) -> Option<f64> {
    std::fs::create_dir_all(dir).ok()?;
    let (base, queries) = (dir.join("base.f32"), dir.join("queries.f32"));
    write_rows(&base, &data.vectors).ok()?;
    write_rows(&queries, &data.queries).ok()?;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/faiss_side_by_side.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(data.dims.to_string())
        .arg(&base)
        .arg(&queries)
        .output()
        .ok()?;
    if !out.status.success() {
        println!(
            "faiss: failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return None;
    }
    let mut p50 = None;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        match line.strip_prefix("faiss_p50_us ") {
            Some(v) => p50 = v.trim().parse::<f64>().ok(),
            None => println!("{line}"),
        }
    }
    p50
}
