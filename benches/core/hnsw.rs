//! `index = "hnsw"` against the exact scan over one large user: graph build time, search
//! p50/p99 and recall@10 at several search breadths (`hnsw_ef`), with and without the
//! visibility filter the manager adds to every search, incremental insert time, memory per
//! vector, the file backend's graph build behind its writes, the save at shutdown and the
//! reopen that loads it, and faiss `IndexHNSWFlat` at the
//! same `M`, `efConstruction` and `efSearch` when Python can import faiss.
//!
//! Size: `CODA_BENCH_HNSW_N` vectors (default 200,000; `0` skips this part), e.g.
//! `CODA_BENCH_HNSW_N=1000000 cargo bench --bench core`. `CODA_BENCH_HNSW_OPEN=0` skips the
//! file backend's open (it writes the vectors to a log and builds the graph a second time).
//!
//! The data is the bench's hashing-embedder memories and questions about them. Gaussian
//! random vectors with random queries (`CODA_BENCH_HNSW_GAUSSIAN=1` adds them) have no
//! neighbourhood structure for a graph to follow: at 50,000 × 384 both this graph and
//! faiss's found only 15–65 % of the exact top 10 at `ef` 64–512, so they measure nothing
//! about real embeddings and take the longest to build.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use coda::backend_file::{FileBackend, FileOptions, IndexKind, SyncPolicy};
use coda::backend_memory::{HnswOptions, InMemoryBackend, IndexOptions};
use coda::embed::HashingEmbedder;
use coda::{Filter, Memory, MemoryBackend, MemoryRecord, Metadata, Scope, ScoredMemory};

use super::index::{load, p50, recall, run, write_rows, Dataset};
use super::report;

/// Search breadths swept; the default (`HnswOptions::DEFAULT_EF_SEARCH`) is among them.
const EFS: &[usize] = &[32, 64, 128, 256, 512];

/// Vectors from the environment's `CODA_BENCH_HNSW_N`, or the default.
pub fn size() -> usize {
    std::env::var("CODA_BENCH_HNSW_N")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(200_000)
}

fn resident_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn record(embedding: &[f32], i: usize) -> MemoryRecord {
    let metadata = Metadata::new("fact", 0.5);
    MemoryRecord {
        memory: Memory::new(uuid::Uuid::new_v4(), format!("v{i}"), metadata),
        embedding: embedding.to_vec(),
    }
}

fn visible() -> Filter {
    Filter::Visible {
        at: chrono::Utc::now(),
        superseded: false,
        expired: false,
    }
}

/// Every query's top 10 with `filter`, and the time each took.
fn run_filtered(
    backend: &InMemoryBackend,
    queries: &[Vec<f32>],
    filter: &Filter,
) -> (Vec<Vec<ScoredMemory>>, Vec<Duration>) {
    let scope = Scope::default();
    for q in queries.iter().take(5) {
        backend
            .search(&scope, q, 10, -1.0, Some(filter))
            .expect("search");
    }
    queries
        .iter()
        .map(|q| {
            let start = Instant::now();
            let hits = backend
                .search(&scope, q, 10, -1.0, Some(filter))
                .expect("search");
            (hits, start.elapsed())
        })
        .unzip()
}

/// The whole HNSW comparison over `data`; prints one `summary hnsw` line per breadth.
pub fn compare(data: &Dataset) {
    let n = data.vectors.len();
    let dims = data.dims;
    let exact = InMemoryBackend::with_index(dims, IndexOptions::exact());
    load(&exact, &data.vectors);
    let (want, exact_t) = run(&exact, &data.queries);
    let exact_p50 = p50(&exact_t);
    drop(exact);

    let graph = HnswOptions {
        min_vectors: n,
        background: false,
        ..HnswOptions::default()
    };
    let rss_before = resident_bytes();
    let hnsw = InMemoryBackend::with_index(dims, IndexOptions::hnsw(graph));
    let (_, last) = data.vectors.split_at(n - 1);
    let start = Instant::now();
    load(&hnsw, &data.vectors[..n - 1]);
    let loaded = start.elapsed();
    // The n-th insert makes the graph due; with `background: false` it is built before the
    // insert returns, on every core (a thread per core, USearch insertion being thread-safe).
    let start = Instant::now();
    load(&hnsw, last);
    let build = start.elapsed();
    assert_eq!(hnsw.graphs_ready(), 1);
    let rss = rss_before
        .zip(resident_bytes())
        .map(|(b, a)| a.saturating_sub(b) as f64 / n as f64);
    println!(
        "hnsw build {n} x {dims} ({}): {:.1} s on {} threads (M {}, efConstruction {}), \
         after {:.1} s of inserts",
        data.name,
        build.as_secs_f64(),
        std::thread::available_parallelism().map_or(1, |p| p.get()),
        graph.links,
        graph.ef_construction,
        loaded.as_secs_f64()
    );
    let visible = visible();
    for &ef in EFS {
        hnsw.set_hnsw_ef(ef);
        let (got, t) = run(&hnsw, &data.queries);
        let (got_v, t_v) = run_filtered(&hnsw, &data.queries, &visible);
        let (p, p_v) = (p50(&t), p50(&t_v));
        report(&format!("search top-10 over {n} hnsw ef {ef}"), t);
        report("  ... with the visibility filter", t_v);
        println!(
            "summary hnsw {} {n} x {dims} ef {ef}: p50 {:.3} ms (exact {:.2} ms, {:.0}x), \
             recall@10 {:.4}; with the visibility filter p50 {:.3} ms, recall@10 {:.4}",
            data.name,
            p / 1e3,
            exact_p50 / 1e3,
            exact_p50 / p,
            recall(&want, &got),
            p_v / 1e3,
            recall(&want, &got_v),
        );
    }
    hnsw.set_hnsw_ef(HnswOptions::DEFAULT_EF_SEARCH);
    // Incremental inserts into the built graph: what an add costs once a user has one.
    let scope = Scope::default();
    let mut rng = super::index::Rng(0xADD5);
    let adds: Vec<Duration> = (0..1_000)
        .map(|i| {
            let r = record(&rng.unit(dims), n + i);
            let start = Instant::now();
            hnsw.insert(&scope, r).expect("insert");
            start.elapsed()
        })
        .collect();
    report(&format!("insert into a {n}-vector graph"), adds);
    println!(
        "hnsw memory {}: vector_bytes/memory {:.0} (f32 + int8 + the graph as usearch counts \
         it), RSS growth per memory {} (records, maps and the graph's allocations included)",
        data.name,
        hnsw.vector_bytes() as f64 / n as f64,
        rss.map_or("unknown".to_owned(), |b| format!("{b:.0} B")),
    );
    drop(hnsw);
    faiss_hnsw(data, &graph);
}

/// Writes `data` through a file backend with `index = "hnsw"` (the graph builds in the
/// background as the user grows past `hnsw_min_vectors`), shuts it down (which saves the graph
/// beside the log), then reopens the log: with `index = "int8"` (the replay alone), and with
/// `index = "hnsw"`, timing the open until the saved graph serves searches.
pub fn open(data: &Dataset) {
    if std::env::var("CODA_BENCH_HNSW_OPEN").is_ok_and(|v| v == "0") {
        return;
    }
    let n = data.vectors.len();
    let dir = std::env::temp_dir().join(format!("coda-bench-hnsw-{}", std::process::id()));
    let embedder = Arc::new(HashingEmbedder::new(data.dims).expect("embedder"));
    let options = |index| FileOptions {
        index,
        sync: SyncPolicy::Never,
        hnsw_min_vectors: 200_000.min(n),
        ..FileOptions::in_dir(&dir)
    };
    let writer = FileBackend::open(options(IndexKind::Hnsw), embedder.clone()).expect("open");
    let scope = Scope::default();
    let start = Instant::now();
    for (i, v) in data.vectors.iter().enumerate() {
        writer.insert(&scope, record(v, i)).expect("insert");
    }
    let written = start.elapsed();
    writer.wait_for_index();
    let built = start.elapsed();
    // A clean shutdown saves the graph beside the log; the next open loads it.
    let start = Instant::now();
    drop(writer);
    let saved = start.elapsed();
    let graph_bytes: u64 = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| {
                    e.file_name()
                        .to_str()
                        .is_some_and(|n| n.starts_with(coda::backend_file::GRAPH_PREFIX))
                })
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    println!(
        "file backend write {n} x {} with index = \"hnsw\": {:.1} s of inserts, graph (built in \
         the background as the user passed hnsw_min_vectors) serving {:.1} s after the first \
         insert; the shutdown saved it in {:.1} s ({:.0} MB)",
        data.dims,
        written.as_secs_f64(),
        built.as_secs_f64(),
        saved.as_secs_f64(),
        graph_bytes as f64 / 1e6,
    );
    let start = Instant::now();
    let replayed = FileBackend::open(options(IndexKind::Int8), embedder.clone()).expect("reopen");
    let replay = start.elapsed();
    let log_mb = std::fs::metadata(replayed.log_path()).map_or(0.0, |m| m.len() as f64 / 1e6);
    drop(replayed);
    let start = Instant::now();
    let again = FileBackend::open(options(IndexKind::Hnsw), embedder).expect("reopen");
    let opened = start.elapsed();
    let loaded = again.recovery().graphs;
    let ready_at_open = again.graphs_ready();
    let builds = again.graph_builds();
    again.wait_for_index();
    println!(
        "file backend reopen {n} x {} ({log_mb:.0} MB log): replay alone (index = \"int8\") \
         {:.2} s; with index = \"hnsw\" and the saved graph {:.2} s until the graph serves \
         (loaded {}, rejected {}, ready at open {ready_at_open}, builds {builds})",
        data.dims,
        replay.as_secs_f64(),
        opened.as_secs_f64(),
        loaded.loaded,
        loaded.rejected,
    );
    drop(again);
    let _ = std::fs::remove_dir_all(&dir);
}

/// faiss `IndexHNSWFlat` (inner product, one thread for searches) on the same vectors.
fn faiss_hnsw(data: &Dataset, graph: &HnswOptions) {
    let importable = Command::new("python3")
        .args(["-c", "import faiss, numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !importable {
        println!("faiss hnsw: skipped (python3 cannot import faiss and numpy)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("coda-faiss-hnsw-{}", std::process::id()));
    let written = std::fs::create_dir_all(&dir).is_ok()
        && write_rows(&dir.join("base.f32"), &data.vectors).is_ok()
        && write_rows(&dir.join("queries.f32"), &data.queries).is_ok();
    if written {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/faiss_side_by_side.py");
        let efs: Vec<String> = EFS.iter().map(|e| e.to_string()).collect();
        let out = Command::new("python3")
            .arg(script)
            .args(["--hnsw", &graph.links.to_string()])
            .arg(graph.ef_construction.to_string())
            .arg(efs.join(","))
            .arg(data.dims.to_string())
            .arg(dir.join("base.f32"))
            .arg(dir.join("queries.f32"))
            .output();
        match out {
            Ok(out) => {
                print!("{}", String::from_utf8_lossy(&out.stdout));
                if !out.status.success() {
                    println!(
                        "faiss hnsw: failed: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            }
            Err(e) => println!("faiss hnsw: could not run: {e}"),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
