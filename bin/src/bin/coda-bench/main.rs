//! `coda-bench`: a load tool for the WebSocket fan-out. It starts the server in-process on an
//! ephemeral port, connects N WebSocket clients, emits conversation turns through the library
//! at a given rate, and prints deliveries per second, delivery latency (p50/p99/max) and what
//! was dropped.
//!
//! ```sh
//! cargo run --release -p coda-server --bin coda-bench -- --clients 100 --rate 5000 --seconds 5
//! cargo run --release -p coda-server --bin coda-bench -- --clients 100 --rate 0 --batch
//! ```
//!
//! With `--url`, it drives a server in another process over HTTP instead (`remote.rs`); with
//! `--floor`, it measures what one loopback write costs without any server (`floor.rs`).

mod floor;
mod remote;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

/// Load-test Coda's WebSocket fan-out.
#[derive(Parser, Debug)]
#[command(name = "coda-bench")]
struct Args {
    /// WebSocket clients.
    #[arg(long, default_value_t = 100)]
    clients: usize,
    /// Events per second; 0 emits as fast as possible (saturation).
    #[arg(long, default_value_t = 5000)]
    rate: u64,
    /// How long to emit.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Bytes of content per event.
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Ask for `batch` frames.
    #[arg(long)]
    batch: bool,
    /// The sink's per-connection queue.
    #[arg(long, default_value_t = 1024)]
    queue: usize,
    /// Tokio worker threads of the server (and of the clients, unless --client-threads).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Give the clients their own runtime with this many threads, as separate client
    /// processes would have (0 = share the server's).
    #[arg(long, default_value_t = 0)]
    client_threads: usize,
    /// Drive the server at this URL (`http://HOST:PORT`, started separately) over HTTP: turns
    /// POSTed by `--posters` keep-alive clients, `--clients` subscribers on `/ws`.
    #[arg(long)]
    url: Option<String>,
    /// With `--url`: the server's process id, to report its CPU per delivery.
    #[arg(long)]
    server_pid: Option<u32>,
    /// With `--url`: keep-alive HTTP clients POSTing turns.
    #[arg(long, default_value_t = 16)]
    posters: usize,
    /// No server: one thread writes `--size` bytes to each of `--clients` loopback TCP
    /// connections per event at `--rate`, and reports its CPU per write (the kernel's floor).
    #[arg(long)]
    floor: bool,
}

/// What one client saw.
#[derive(Default)]
struct Seen {
    latencies_us: Vec<u32>,
    deliveries: u64,
    lagged_dropped: u64,
    last_receipt: Option<Instant>,
    max_seq: u64,
    out_of_order: u64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if args.floor {
        return floor::run(&args).map_err(|e| e as Box<dyn std::error::Error>);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    let clients = match args.client_threads {
        0 => None,
        n => Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(n)
                .enable_all()
                .build()?,
        ),
    };
    if let Some(url) = args.url.clone() {
        return runtime
            .block_on(remote::run(&args, &url))
            .map_err(|e| e as Box<dyn std::error::Error>);
    }
    let handle = clients
        .as_ref()
        .map_or_else(|| runtime.handle().clone(), |c| c.handle().clone());
    let result = runtime.block_on(run(args, handle));
    if let Some(clients) = clients {
        clients.shutdown_background();
    }
    result
}

/// Every `"seq":N` in a frame (one event, or a batch).
fn seqs(text: &str, out: &mut Vec<u64>) {
    const KEY: &str = "\"seq\":";
    let mut rest = text;
    while let Some(at) = rest.find(KEY) {
        rest = &rest[at + KEY.len()..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if let Ok(seq) = rest[..digits].parse() {
            out.push(seq);
        }
    }
}

async fn run(
    args: Args,
    clients: tokio::runtime::Handle,
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("coda-bench-{}", std::process::id()));
    let toml = format!(
        "[server]\nbind = \"127.0.0.1:0\"\n[memory]\nbackend = \"memory\"\nembedder = \"hashing\"\nshort_term_max_turns = 10\n\
         [stores.fs]\ndir = \"{}\"\n[events]\nreplay_capacity = 1000\n\
         [[sinks]]\ntype = \"websocket\"\nqueue = {}\nreplay_on_connect = 0\n",
        dir.display(),
        args.queue
    );
    let server = coda_server::start(coda::Config::from_toml_str(&toml)?).await?;
    let addr = server.addr();
    let query = if args.batch {
        "replay=0&batch=1"
    } else {
        "replay=0"
    };

    let expected = if args.rate == 0 {
        u64::MAX
    } else {
        (args.rate as f64 * args.seconds) as u64
    };
    let slots = if args.rate == 0 {
        50_000_000
    } else {
        expected as usize + 1
    };
    // When each seq was emitted, in nanoseconds since `origin`.
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..=slots).map(|_| AtomicU64::new(0)).collect());
    let origin = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let last_seq = Arc::new(AtomicU64::new(0));

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut readers = Vec::with_capacity(args.clients);
    for _ in 0..args.clients {
        let (sent, done, last_seq) = (sent.clone(), done.clone(), last_seq.clone());
        let mut stop = stop_rx.clone();
        let (connected, is_connected) = tokio::sync::oneshot::channel();
        let url = format!("ws://{addr}/ws?{query}");
        readers.push(clients.spawn(async move {
            let mut seen = Seen::default();
            // tungstenite zeroes up to `read_buffer_size` bytes before every read; keep it small.
            let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
                .read_buffer_size(16 * 1024);
            let connecting = tokio_tungstenite::connect_async_with_config(url, Some(config), true);
            let mut ws = match connecting.await {
                Ok((ws, _)) => ws,
                Err(e) => {
                    eprintln!("connect failed: {e}");
                    return seen;
                }
            };
            let _ = connected.send(());
            let mut batch = Vec::new();
            loop {
                let message = tokio::select! {
                    biased;
                    message = ws.next() => match message {
                        Some(Ok(message)) => message,
                        _ => break,
                    },
                    _ = stop.changed() => break,
                };
                let Message::Text(text) = message else {
                    continue;
                };
                let now = origin.elapsed().as_nanos() as u64;
                if text.starts_with(r#"{"type":"welcome""#) {
                    continue;
                }
                if text.starts_with(r#"{"type":"lagged""#) {
                    let value: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                    seen.lagged_dropped += value["dropped"].as_u64().unwrap_or(0);
                    continue;
                }
                batch.clear();
                seqs(&text, &mut batch);
                for &seq in &batch {
                    if seq <= seen.max_seq {
                        seen.out_of_order += 1;
                    }
                    seen.max_seq = seen.max_seq.max(seq);
                    if let Some(at) = sent.get(seq as usize) {
                        let at = at.load(Ordering::Relaxed);
                        seen.latencies_us
                            .push((now.saturating_sub(at) / 1000) as u32);
                    }
                    seen.deliveries += 1;
                }
                seen.last_receipt = Some(Instant::now());
                if done.load(Ordering::Acquire) && seen.max_seq >= last_seq.load(Ordering::Acquire)
                {
                    break;
                }
            }
            seen
        }));
        is_connected
            .await
            .map_err(|_| "a client failed to connect")?;
    }

    let emit_origin = Instant::now();
    let manager = Arc::clone(server.manager());
    let (rate, seconds, size) = (args.rate, args.seconds, args.size);
    let emitter_sent = sent.clone();
    let emitter = std::thread::spawn(move || -> coda::Result<(u64, Duration)> {
        let content = "x".repeat(size.max(1));
        let start = Instant::now();
        let stop_at = start + Duration::from_secs_f64(seconds);
        let mut seq = 0u64;
        loop {
            let now = Instant::now();
            if now >= stop_at || seq as usize + 1 >= emitter_sent.len() {
                break;
            }
            let due = if rate == 0 {
                seq + 64
            } else {
                ((now - start).as_secs_f64() * rate as f64) as u64
            };
            if seq >= due {
                // Sleep until the next event is due (rate > 0 here).
                let next = start + Duration::from_secs_f64((seq + 1) as f64 / rate as f64);
                std::thread::sleep(next.saturating_duration_since(now));
                continue;
            }
            while seq < due && (seq as usize + 1) < emitter_sent.len() {
                seq += 1;
                emitter_sent[seq as usize]
                    .store(origin.elapsed().as_nanos() as u64, Ordering::Relaxed);
                manager.add_turn(coda::Role::User, &content)?;
            }
        }
        Ok((seq, start.elapsed()))
    });
    let (emitted, emit_time) = tokio::task::spawn_blocking(move || emitter.join())
        .await?
        .map_err(|_| "the emitter panicked")??;
    last_seq.store(emitted, Ordering::Release);
    done.store(true, Ordering::Release);
    // Readers stop by themselves at the last event; one that lost it to drops is stopped
    // once nothing has been delivered for a while.
    let hub = coda_server_hub(&server);
    let mut delivered = hub.as_ref().map_or(0, |h| h.stats().delivered);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = hub.as_ref().map_or(0, |h| h.stats().delivered);
        if now == delivered || readers.iter().all(|r| r.is_finished()) {
            break;
        }
        delivered = now;
    }
    let _ = stop_tx.send(true);

    let mut all = Vec::new();
    let mut deliveries = 0u64;
    let mut lagged = 0u64;
    let mut out_of_order = 0u64;
    let mut last_receipt = origin;
    for reader in readers {
        let mut seen = reader.await?;
        deliveries += seen.deliveries;
        lagged += seen.lagged_dropped;
        out_of_order += seen.out_of_order;
        all.append(&mut seen.latencies_us);
        if let Some(at) = seen.last_receipt {
            last_receipt = last_receipt.max(at);
        }
    }
    let stats = server.manager().bus().stats();
    let hub = hub.map(|h| h.stats()).unwrap_or_default();
    all.sort_unstable();
    let pct = |p: f64| -> f64 {
        if all.is_empty() {
            return 0.0;
        }
        let i = ((all.len() - 1) as f64 * p).round() as usize;
        all[i] as f64 / 1000.0
    };
    // From the first emission to the last receipt.
    let active = last_receipt
        .saturating_duration_since(emit_origin)
        .as_secs_f64()
        .max(emit_time.as_secs_f64());
    println!(
        "clients={} rate={} batch={} size={} queue={} threads={}",
        args.clients,
        if args.rate == 0 {
            "max".to_owned()
        } else {
            args.rate.to_string()
        },
        args.batch,
        args.size,
        args.queue,
        args.threads
    );
    println!(
        "emitted={} in {:.2}s ({:.0} events/s); published={}",
        emitted,
        emit_time.as_secs_f64(),
        emitted as f64 / emit_time.as_secs_f64(),
        stats.published.iter().sum::<u64>()
    );
    println!(
        "deliveries={} ({:.0}/s), expected={}",
        deliveries,
        deliveries as f64 / active,
        emitted * args.clients as u64
    );
    println!(
        "latency ms: p50={:.3} p99={:.3} max={:.3}",
        pct(0.5),
        pct(0.99),
        all.last().map_or(0.0, |&m| m as f64 / 1000.0)
    );
    println!(
        "dropped: sink={} (lagged frames reported {}), disconnected={}, out of order or repeated={}",
        hub.events_dropped, lagged, hub.disconnected_overflow, out_of_order
    );
    server.shutdown().await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The server's WebSocket hub, for its counters.
fn coda_server_hub(
    server: &coda_server::ServerHandle,
) -> Option<Arc<coda::sink_websocket::WebSocketHub>> {
    server.manager().bus().sinks().iter().find_map(|s| {
        s.as_any()?
            .downcast_ref::<coda::sink_websocket::WebSocketSink>()
            .map(|s| s.hub())
    })
}
