//! File backend benchmark: write throughput and latency per sync policy, and open (recovery)
//! time with the CPU it took. Prints figures; asserts nothing. It allocates with jemalloc, as
//! the `coda` binary does.
//!
//! `cargo bench -p coda-backend-file`; scale with environment variables:
//! `CODA_BENCH_WRITES` (writes per scenario, default 20000), `CODA_BENCH_OPEN` (comma-separated
//! memory counts to reopen, default `100000,1000000`), `CODA_BENCH_DIMS` (default 384),
//! `CODA_BENCH_DIR` (where logs go, default a temp dir; put it on the disk you care about),
//! `CODA_BENCH_KEEP` (set: keep the open logs in `CODA_BENCH_DIR` and reuse them next run, to
//! profile opening alone), `CODA_BENCH_INDEX` (`hnsw`: the opens also load the user's saved
//! graph, built and saved first when the directory has none; default `int8`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::DateTime;
use coda_backend_file::{FileBackend, FileOptions, IndexKind, SyncPolicy};
use coda_core::vector::normalize;
use coda_core::{Embedder, HashingEmbedder, Memory, MemoryBackend, MemoryRecord, Metadata, Scope};
use uuid::Uuid;

/// The `coda` binary's allocator, so the figures are the server's.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn record(i: u64, dims: usize) -> MemoryRecord {
    let mut state = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut embedding: Vec<f32> = (0..dims)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 2000) as f32 / 1000.0 - 1.0
        })
        .collect();
    normalize(&mut embedding);
    MemoryRecord {
        memory: Memory::new(
            Uuid::new_v4(),
            format!("The user mentioned fact number {i} about topic {}.", i % 97),
            Metadata {
                source_type: "fact".into(),
                importance: 0.5,
                timestamp: DateTime::from_timestamp(1_700_000_000 + i as i64, 0)
                    .unwrap_or_default(),
                topics: vec![format!("topic{}", i % 97)],
                extra: Default::default(),
            },
        ),
        embedding,
    }
}

/// User `default`, who owns every benchmark memory.
fn ds() -> Scope {
    Scope::default()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

fn writes(
    root: &std::path::Path,
    embedder: &Arc<dyn Embedder>,
    sync: SyncPolicy,
    writers: usize,
    total: usize,
) {
    let dims = embedder.dims();
    let dir = root.join(format!("writes-{sync:?}-{writers}"));
    let options = FileOptions {
        sync,
        ..FileOptions::in_dir(&dir)
    };
    let backend = Arc::new(FileBackend::open(options, Arc::clone(embedder)).expect("open"));
    let per_writer = total / writers;
    let batches: Vec<Vec<MemoryRecord>> = (0..writers)
        .map(|w| {
            (0..per_writer)
                .map(|i| record((w * per_writer + i) as u64, dims))
                .collect()
        })
        .collect();
    let started = Instant::now();
    let threads: Vec<_> = batches
        .into_iter()
        .map(|batch| {
            let backend = Arc::clone(&backend);
            std::thread::spawn(move || {
                let mut latencies = Vec::with_capacity(batch.len());
                for r in batch {
                    let t = Instant::now();
                    backend.insert(&ds(), r).expect("insert");
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies: Vec<Duration> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("writer"))
        .collect();
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let n = latencies.len();
    println!(
        "write  sync={:<6} writers={:<2} {:>9.0} writes/s  p50 {:>8.1} µs  p99 {:>8.1} µs  ({} fsyncs for {} writes)",
        format!("{sync:?}").to_lowercase(),
        writers,
        n as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5).as_secs_f64() * 1e6,
        percentile(&latencies, 0.99).as_secs_f64() * 1e6,
        backend.fsyncs(),
        n
    );
    drop(backend);
    let _ = std::fs::remove_dir_all(&dir);
}

/// CPU time (user and system, every thread) this process has used so far; zero where
/// `/proc/self/stat` is not to be had.
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line (11 and 12 from 0 after the name); the clock
    // ticks 100 times a second on Linux.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

fn open_time(root: &std::path::Path, embedder: &Arc<dyn Embedder>, count: usize) {
    let dims = embedder.dims();
    let dir = root.join(format!("open-{count}"));
    let hnsw = std::env::var("CODA_BENCH_INDEX").is_ok_and(|v| v == "hnsw");
    let options = FileOptions {
        sync: SyncPolicy::Never,
        index: if hnsw {
            IndexKind::Hnsw
        } else {
            IndexKind::Int8
        },
        ..FileOptions::in_dir(&dir)
    };
    let keep = std::env::var_os("CODA_BENCH_KEEP").is_some();
    if !(keep && dir.join(coda_backend_file::LOG_FILE).exists()) {
        let backend = FileBackend::open(options.clone(), Arc::clone(embedder)).expect("open");
        for i in 0..count {
            backend
                .insert(&ds(), record(i as u64, dims))
                .expect("insert");
        }
        backend.flush().expect("flush");
    }
    let has_graph = || {
        std::fs::read_dir(&dir).is_ok_and(|entries| {
            entries.filter_map(|e| e.ok()).any(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| n.starts_with(coda_backend_file::GRAPH_PREFIX))
            })
        })
    };
    if hnsw && !has_graph() {
        // The graph builds in the background once the user is large enough; a clean shutdown
        // saves it beside the log for the opens below.
        let started = Instant::now();
        let backend = FileBackend::open(options.clone(), Arc::clone(embedder)).expect("open");
        backend.wait_for_index();
        drop(backend);
        println!(
            "graph  {count:>8} memories built and saved in {:.0} s",
            started.elapsed().as_secs_f64()
        );
    }
    let size = std::fs::metadata(dir.join(coda_backend_file::LOG_FILE))
        .map(|m| m.len())
        .unwrap_or(0);
    let mut times = Vec::new();
    let mut cpu = Vec::new();
    for _ in 0..3 {
        let (started, cpu_before) = (Instant::now(), process_cpu());
        let backend = FileBackend::open(options.clone(), Arc::clone(embedder)).expect("reopen");
        times.push(started.elapsed());
        cpu.push(process_cpu().saturating_sub(cpu_before));
        assert_eq!(backend.len().expect("len"), count);
        if hnsw {
            assert_eq!(backend.recovery().graphs.loaded, 1, "the saved graph loads");
        }
    }
    times.sort_unstable();
    cpu.sort_unstable();
    println!(
        "open   {count:>8} memories ({:.0} MB log, dims {dims}, index {}): median {:.2} s over 3 opens (min {:.2} s), CPU {:.2} s",
        size as f64 / 1e6,
        if hnsw { "hnsw with its saved graph" } else { "int8" },
        times[1].as_secs_f64(),
        times[0].as_secs_f64(),
        cpu[1].as_secs_f64()
    );
    if !keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn main() {
    let total: usize = env_or("CODA_BENCH_WRITES", 20_000);
    let dims: usize = env_or("CODA_BENCH_DIMS", 384);
    let opens: Vec<usize> = std::env::var("CODA_BENCH_OPEN")
        .unwrap_or_else(|_| "100000,1000000".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let temp = tempfile::tempdir().expect("tempdir");
    let root = std::env::var("CODA_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| temp.path().to_owned());
    let embedder: Arc<dyn Embedder> = Arc::new(HashingEmbedder::new(dims).expect("dims"));
    println!(
        "coda-backend-file: {total} writes per scenario, dims {dims}, logs in {}",
        root.display()
    );
    for (sync, writers) in [
        (SyncPolicy::Always, 1),
        (SyncPolicy::Always, 16),
        (SyncPolicy::Batch, 1),
        (SyncPolicy::Batch, 16),
        (SyncPolicy::Never, 1),
        (SyncPolicy::Never, 16),
    ] {
        writes(&root, &embedder, sync, writers, total);
    }
    for count in opens {
        open_time(&root, &embedder, count);
    }
}
