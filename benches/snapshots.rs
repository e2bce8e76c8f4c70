//! Snapshot figures: save, list, load and apply of 100k memories with stores `fs` and `zstd`,
//! the compression ratio, and listing 1,000 saved snapshots.
//!
//! `cargo bench --bench snapshots` (`-- --quick` for 10k memories). Targets on the 2-core
//! machine: zstd ratio ≥ 3.5, save ≤ 0.5 s, load + apply ≤ 1 s, list of 1,000 < 50 ms.

use std::time::{Duration, Instant};

use coda::snapshot::SnapshotStore;
use coda::{Config, MemoryManager, NewMemory};

const SUBJECTS: &[&str] = &[
    "dog", "cat", "sister", "brother", "car", "garden", "kitchen", "doctor", "flight", "hotel",
    "concert", "recipe", "coffee", "book", "movie", "song", "bike", "office", "dentist", "tea",
];
const PLACES: &[&str] = &[
    "Paris", "Berlin", "Tokyo", "Lisbon", "Oslo", "Austin", "Lima", "Cairo",
];

fn text(i: usize) -> String {
    format!(
        "The user mentioned the {} in {} on day {} and asked to be reminded about it ({}).",
        SUBJECTS[i % SUBJECTS.len()],
        PLACES[(i / 7) % PLACES.len()],
        i % 365,
        i
    )
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

fn run(store: &str, n: usize, dir: &std::path::Path) -> u64 {
    let config = Config::from_toml_str(&format!(
        "[memory]\nbackend = \"memory\"\nembedder = \"hashing\"\n[snapshots]\nstore = \"{store}\"\n[stores.{store}]\ndir = \"{}\"",
        dir.join(store).display()
    ))
    .expect("config");
    let coda = MemoryManager::builder(config)
        .configured_sinks(false)
        .build()
        .expect("manager");
    for i in 0..n {
        let topics = [SUBJECTS[i % SUBJECTS.len()], "user"];
        coda.add_memory(NewMemory::new(text(i), "fact").topics(topics))
            .expect("add");
    }
    let (mut saves, mut loads, mut applies, mut lists) = (vec![], vec![], vec![], vec![]);
    let mut size = 0;
    for _ in 0..3 {
        let meta = coda.create_snapshot().expect("create");
        let t = Instant::now();
        let location = coda.save_snapshot(&meta.snapshot_id).expect("save");
        saves.push(t.elapsed());
        size = std::fs::metadata(&location).expect("stat").len();
        let t = Instant::now();
        coda.store().list().expect("list");
        lists.push(t.elapsed());
        let t = Instant::now();
        let id = coda.load_snapshot(&location).expect("load");
        loads.push(t.elapsed());
        let t = Instant::now();
        coda.apply_snapshot(&id).expect("apply");
        applies.push(t.elapsed());
    }
    let (load, apply) = (median(loads), median(applies));
    println!(
        "{store:<5} {n} memories: save {}  list {}  load {}  apply {}  load+apply {}  file {:.1} MB",
        secs(median(saves)),
        secs(median(lists)),
        secs(load),
        secs(apply),
        secs(load + apply),
        size as f64 / 1e6
    );
    size
}

fn list_thousand(dir: &std::path::Path) {
    let store = coda::snapshot_zstd::open(&coda::snapshot_zstd::ZstdOptions {
        dir: dir.join("thousand"),
        ..Default::default()
    })
    .expect("store");
    let base = chrono::Utc::now() - chrono::Duration::days(30);
    for i in 0..1000 {
        let snapshot = coda::testkit::sample_snapshot(base + chrono::Duration::minutes(i));
        store.save(&snapshot).expect("save");
    }
    let runs: Vec<Duration> = (0..20)
        .map(|_| {
            let t = Instant::now();
            assert_eq!(store.list().expect("list").len(), 1000);
            t.elapsed()
        })
        .collect();
    let reopened = coda::snapshot_zstd::open(&coda::snapshot_zstd::ZstdOptions {
        dir: dir.join("thousand"),
        ..Default::default()
    })
    .expect("reopen");
    std::fs::remove_file(dir.join("thousand").join(coda::snapshot_fs::INDEX_FILE))
        .expect("drop index");
    let t = Instant::now();
    reopened.list().expect("rebuild");
    let rebuild = t.elapsed();
    println!(
        "list 1000 saved snapshots (zstd): median {:.2} ms; without index (rebuild) {:.1} ms",
        median(runs).as_secs_f64() * 1e3,
        rebuild.as_secs_f64() * 1e3
    );
}

fn main() {
    let n = if std::env::args().any(|a| a == "--quick") {
        10_000
    } else {
        100_000
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let plain = run("fs", n, dir.path());
    let packed = run("zstd", n, dir.path());
    println!(
        "zstd ratio against plain JSON: {:.2}",
        plain as f64 / packed as f64
    );
    list_thousand(dir.path());
}
