//! Scoped search figures (issue 11): 1,000,000 memories over 10,000 users, top-10 search within
//! one user, a writer on another user, one oversized user, memory per memory, and the same search
//! through the manager.
//!
//! `cargo bench --bench scopes` (`-- --quick` for 10,000 memories over 100 users, a CI smoke
//! run). Target: top-10 within one user p50 ≤ 0.2 ms on the 2-core machine.
//!
//! Vectors come from a seeded xorshift, not the embedder, so loading a million memories takes
//! seconds and every run sees the same data; they go straight into `InMemoryBackend::insert`.

mod data;
mod figures;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use coda::backend_memory::InMemoryBackend;
use coda::{Config, Memory, MemoryBackend, MemoryManager, NewMemory, Scope, SearchMode};

use data::{record, text, user, XorShift, DIMS, SUBJECTS};
use figures::{micros, rss_bytes, Summary};

const TARGET_P50: Duration = Duration::from_micros(200);

/// How big a run is.
struct Plan {
    users: usize,
    per_user: usize,
    /// Timed searches for the plain p50/p99.
    queries: usize,
    /// Searches per side per round of the writer comparison.
    round_queries: usize,
    rounds: usize,
    /// Memories of the one oversized user in the skewed case.
    whale: usize,
    /// Users and memories each for the manager run.
    manager_users: usize,
    manager_per_user: usize,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Plan {
                users: 100,
                per_user: 100,
                queries: 2_000,
                round_queries: 500,
                rounds: 2,
                whale: 10_000,
                manager_users: 20,
                manager_per_user: 100,
            }
        } else {
            Plan {
                users: 10_000,
                per_user: 100,
                queries: 50_000,
                round_queries: 10_000,
                rounds: 5,
                whale: 100_000,
                manager_users: 500,
                manager_per_user: 100,
            }
        }
    }
}

/// Top-10 searches in random users among `users` (never `skip`), each timed alone. The same
/// `seed` gives the same users and queries, so two runs can be compared query for query.
fn search_users(
    backend: &InMemoryBackend,
    users: &[Scope],
    skip: Option<usize>,
    queries: usize,
    seed: u64,
) -> Vec<Duration> {
    let mut rng = XorShift::new(seed);
    let mut samples = Vec::with_capacity(queries);
    while samples.len() < queries {
        let u = rng.below(users.len());
        if Some(u) == skip {
            continue;
        }
        let query = rng.unit_vector();
        let start = Instant::now();
        let hits = backend
            .search(&users[u], &query, 10, -1.0, None)
            .expect("search");
        samples.push(start.elapsed());
        assert_eq!(hits.len(), 10.min(backend.count(&users[u]).expect("count")));
    }
    samples
}

/// Loads `plan.users × plan.per_user` memories, round-robin over users as live traffic would
/// arrive, and reports load time and bytes per memory.
fn load(backend: &InMemoryBackend, users: &[Scope], plan: &Plan) {
    let before = rss_bytes();
    let mut rng = XorShift::new(1);
    let start = Instant::now();
    for round in 0..plan.per_user {
        for (u, scope) in users.iter().enumerate() {
            // Consecutive texts per user, so each user mentions every subject.
            let i = u * plan.per_user + round;
            backend
                .insert(scope, record(&mut rng, scope, i))
                .expect("insert");
        }
    }
    let elapsed = start.elapsed();
    let count = backend.len().expect("len");
    println!(
        "loaded {count} memories over {} users in {:.2} s ({:.0} inserts/s)",
        users.len(),
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64()
    );
    match (before, rss_bytes()) {
        (Some(before), Some(after)) => {
            let per = after.saturating_sub(before) as f64 / count as f64;
            let vector = (DIMS * std::mem::size_of::<f32>()) as f64;
            println!(
                "memory: RSS {:.1} → {:.1} MiB; {per:.0} bytes/memory = vector {vector:.0} + \
                 everything else {:.0} (content ~{} bytes, size_of::<Memory>() {})",
                before as f64 / 1048576.0,
                after as f64 / 1048576.0,
                per - vector,
                text(count / 2).len(),
                std::mem::size_of::<Memory>()
            );
        }
        _ => println!("memory: /proc/self/status unavailable, bytes/memory not measured"),
    }
}

/// What a writer thread did: inserts, for how long, and its slowest insert.
#[derive(Default)]
struct Writes {
    inserts: usize,
    elapsed: Duration,
    slowest: Duration,
}

/// `search_users(searched, ..)` while another thread inserts flat out into user 0 of `target`.
fn while_writing(
    searched: &InMemoryBackend,
    target: &InMemoryBackend,
    users: &[Scope],
    queries: usize,
    seed: u64,
    writes: &mut Writes,
) -> Vec<Duration> {
    let stop = AtomicBool::new(false);
    let before = target.count(&users[0]).expect("count");
    let start = Instant::now();
    let (samples, (inserts, slowest)) = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut rng = XorShift::new(seed ^ 0x5EED);
            let (mut n, mut slowest) = (0, Duration::ZERO);
            while !stop.load(Ordering::Relaxed) {
                let r = record(&mut rng, &users[0], n);
                let t = Instant::now();
                target.insert(&users[0], r).expect("writer insert");
                slowest = slowest.max(t.elapsed());
                n += 1;
            }
            (n, slowest)
        });
        // Let the writer get going before the first timed search.
        while !writer.is_finished() && target.count(&users[0]).expect("count") == before {
            std::hint::spin_loop();
        }
        let samples = search_users(searched, users, Some(0), queries, seed);
        stop.store(true, Ordering::Relaxed);
        (samples, writer.join().expect("writer thread"))
    });
    writes.elapsed += start.elapsed();
    writes.inserts += inserts;
    writes.slowest = writes.slowest.max(slowest);
    samples
}

/// Search latency in the other users with no writer, with a thread inserting flat out into
/// user B of the same backend, and (the control) into another backend: the same load on cores
/// and memory bandwidth but no shared lock. Rounds alternate the three so drift in machine load
/// hits all alike; each side runs the same queries.
fn writer_comparison(backend: &InMemoryBackend, users: &[Scope], plan: &Plan) {
    let elsewhere = InMemoryBackend::new(DIMS);
    let (mut quiet, mut same, mut other) = (Vec::new(), Vec::new(), Vec::new());
    let (mut same_writes, mut other_writes) = (Writes::default(), Writes::default());
    for round in 0..plan.rounds {
        let (seed, n) = (100 + round as u64, plan.round_queries);
        quiet.extend(search_users(backend, users, Some(0), n, seed));
        same.extend(while_writing(
            backend,
            backend,
            users,
            n,
            seed,
            &mut same_writes,
        ));
        other.extend(while_writing(
            backend,
            &elsewhere,
            users,
            n,
            seed,
            &mut other_writes,
        ));
    }
    let quiet = Summary::of(quiet);
    quiet.print("search top-10, no writer");
    for (name, samples, writes) in [
        ("writer into user B", same, same_writes),
        ("writer into other backend", other, other_writes),
    ] {
        let busy = Summary::of(samples);
        busy.print(&format!("search top-10, {name}"));
        println!(
            "  vs no writer: p50 {:.2}×, p99 {:.2}×; writer {} inserts ({:.0}/s), slowest \
             insert {:.1} ms",
            busy.p50.as_secs_f64() / quiet.p50.as_secs_f64(),
            busy.p99.as_secs_f64() / quiet.p99.as_secs_f64(),
            writes.inserts,
            writes.inserts as f64 / writes.elapsed.as_secs_f64(),
            writes.slowest.as_secs_f64() * 1e3
        );
    }
}

/// One user far bigger than the rest: its own search scans all of it, the others' do not.
fn skewed(backend: &InMemoryBackend, users: &[Scope], plan: &Plan) {
    let whale = Scope::user("whale").expect("valid user id");
    let mut rng = XorShift::new(3);
    for i in 0..plan.whale {
        backend
            .insert(&whale, record(&mut rng, &whale, i))
            .expect("insert");
    }
    let samples = search_users(backend, std::slice::from_ref(&whale), None, 200, 11);
    Summary::of(samples).print(&format!("search top-10 in the user with {}", plan.whale));
    let samples = search_users(backend, users, None, plan.queries / 5, 12);
    Summary::of(samples).print(&format!(
        "search top-10 in a user of {}, beside it",
        plan.per_user
    ));
}

/// The same scoped search through the manager: query embedding, ranking mode, events.
fn manager_path(plan: &Plan) {
    let dir = std::env::temp_dir().join(format!("coda-bench-scopes-{}", std::process::id()));
    let config = Config::from_toml_str(&format!(
        "[memory]\nbackend = \"memory\"\nembedder = \"hashing\"\n[stores.fs]\ndir = \"{}\"",
        dir.display()
    ))
    .expect("config");
    let manager = MemoryManager::builder(config)
        .backend(Arc::new(InMemoryBackend::new(DIMS)))
        .configured_sinks(false)
        .build()
        .expect("manager");
    let names: Vec<String> = (0..plan.manager_users)
        .map(|u| format!("user-{u:05}"))
        .collect();
    let start = Instant::now();
    for round in 0..plan.manager_per_user {
        for (u, name) in names.iter().enumerate() {
            let new = NewMemory::new(text(u * plan.manager_per_user + round), "fact");
            manager
                .user(name)
                .expect("user")
                .add_memory(new)
                .expect("add");
        }
    }
    let count = plan.manager_users * plan.manager_per_user;
    println!(
        "manager: added {count} memories over {} users in {:.2} s",
        plan.manager_users,
        start.elapsed().as_secs_f64()
    );
    for mode in [SearchMode::Vector, SearchMode::Lexical, SearchMode::Hybrid] {
        let mut rng = XorShift::new(21);
        let mut hits = 0;
        let samples: Vec<Duration> = (0..plan.queries / 10)
            .map(|q| {
                let scoped = manager.user(&names[rng.below(names.len())]).expect("user");
                let query = format!("what about the {}", SUBJECTS[q % SUBJECTS.len()]);
                let start = Instant::now();
                let found = scoped
                    .search_memories(&query, 10, 0.0, None, Some(mode))
                    .expect("search");
                let elapsed = start.elapsed();
                hits += found.len();
                elapsed
            })
            .collect();
        let n = samples.len();
        Summary::of(samples).print(&format!("manager search_memories {mode:?}, one user"));
        println!("  {:.1} results a query", hits as f64 / n as f64);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let plan = Plan::new(quick);
    let backend = InMemoryBackend::new(DIMS);
    let users: Vec<Scope> = (0..plan.users).map(user).collect();

    load(&backend, &users, &plan);
    let plain = Summary::of(search_users(&backend, &users, None, plan.queries, 42));
    plain.print(&format!("search top-10 in one user of {}", plan.per_user));
    println!(
        "target p50 ≤ {} µs: {}",
        micros(TARGET_P50),
        if plain.p50 <= TARGET_P50 {
            "met"
        } else {
            "MISSED"
        }
    );
    writer_comparison(&backend, &users, &plan);
    skewed(&backend, &users, &plan);
    manager_path(&plan);
}
