//! `coda-cluster-bench`: writes per second and replication lag through a cluster on loopback.
//! It starts a `nats-server -js` (Debian's, on a random port, temp store) and N in-process
//! nodes (memory backend, hashing embedder), drives `POST /api/v1/memories` from keep-alive
//! clients spread over the nodes for a while, and watches every node's `/ws`. It prints
//! acknowledged writes/s, write latency p50/p99 and replication lag p50/p99: for each event,
//! from its arrival on the first node's `/ws` to its arrival on the last node's.
//!
//! ```sh
//! cargo run --release -p coda-server --bin coda-cluster-bench -- --nodes 1
//! cargo run --release -p coda-server --bin coda-cluster-bench -- --nodes 3
//! ```

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::StreamExt;
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// Load-test a Coda cluster on loopback.
#[derive(Parser, Debug)]
#[command(name = "coda-cluster-bench")]
struct Args {
    /// Coda nodes sharing the stream.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Concurrent HTTP clients (keep-alive), spread round-robin over the nodes.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// How long to write.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// The nats-server binary.
    #[arg(long, default_value = "nats-server")]
    nats_server: String,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let (mut nats, port) = start_nats(&args.nats_server, dir.path())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(run(&args, dir.path(), port));
    let _ = nats.kill();
    let _ = nats.wait();
    result
}

fn start_nats(
    binary: &str,
    dir: &std::path::Path,
) -> Result<(std::process::Child, u16), Box<dyn std::error::Error>> {
    let mut child = Command::new(binary)
        .args(["-js", "-a", "127.0.0.1", "-p", "-1", "-sd"])
        .arg(dir.join("nats"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run `{binary}` (apt-get install nats-server): {e}"))?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let marker = "Listening for client connections on ";
    let mut lines = BufReader::new(stderr).lines();
    for line in lines.by_ref() {
        let line = line?;
        if let Some(at) = line.find(marker) {
            let port = line[at + marker.len()..]
                .rsplit(':')
                .next()
                .and_then(|p| p.trim().parse().ok())
                .ok_or("unreadable port")?;
            // Keep reading its log: a closed pipe would end the server at its next line.
            std::thread::spawn(move || lines.for_each(drop));
            return Ok((child, port));
        }
    }
    Err("nats-server exited before listening".into())
}

async fn run(
    args: &Args,
    dir: &std::path::Path,
    port: u16,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut nodes = Vec::new();
    for i in 0..args.nodes {
        let toml = format!(
            "[memory]\nbackend = \"memory\"\nembedder = \"hashing\"\n[stores.fs]\ndir = \"{}\"\n\
             [cluster]\nnats_url = \"nats://127.0.0.1:{port}\"\nnode_id = \"n{i}\"\n\
             [events]\nreplay_capacity = 100000\n[[sinks]]\ntype = \"websocket\"\nqueue = 100000\n",
            dir.join(format!("snaps{i}")).display()
        );
        let mut config = coda::Config::from_toml_str(&toml)?;
        config.server.bind = "127.0.0.1:0".into();
        nodes.push(coda_server::start(config).await?);
    }
    let addrs: Vec<String> = nodes.iter().map(|n| n.addr().to_string()).collect();
    // Arrival time of each event seq on each node's /ws.
    let arrivals: Arc<Mutex<HashMap<u64, Vec<Instant>>>> = Arc::default();
    let mut watchers = Vec::new();
    for addr in &addrs {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await?;
        let arrivals = Arc::clone(&arrivals);
        watchers.push(tokio::spawn(async move {
            while let Some(Ok(message)) = ws.next().await {
                let at = Instant::now();
                if let Message::Text(text) = message {
                    let Ok(frame) = serde_json::from_str::<serde_json::Value>(&text) else {
                        continue;
                    };
                    if frame["type"] == "memory_store" {
                        if let Some(seq) = frame["seq"].as_u64() {
                            arrivals.lock().entry(seq).or_default().push(at);
                        }
                    }
                }
            }
        }));
    }
    let until = Instant::now() + Duration::from_secs_f64(args.seconds);
    let started = Instant::now();
    let mut clients = Vec::new();
    for c in 0..args.clients {
        let addr = addrs[c % addrs.len()].clone();
        clients.push(tokio::spawn(async move { writer(&addr, c, until).await }));
    }
    let mut latencies = Vec::new();
    let mut failed = 0u64;
    for client in clients {
        let (ok, bad) = client.await??;
        latencies.extend(ok);
        failed += bad;
    }
    let elapsed = started.elapsed().as_secs_f64();
    // Let the last events reach every node.
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let complete = arrivals.lock().values().all(|v| v.len() == addrs.len());
        if complete && arrivals.lock().len() >= latencies.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut lags: Vec<f64> = arrivals
        .lock()
        .values()
        .filter(|v| v.len() == addrs.len())
        .filter_map(|v| {
            let first = v.iter().min()?;
            let last = v.iter().max()?;
            Some(last.duration_since(*first).as_secs_f64() * 1000.0)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    lags.sort_by(f64::total_cmp);
    let pct = |v: &[f64], p: f64| -> f64 {
        if v.is_empty() {
            return f64::NAN;
        }
        v[((v.len() - 1) as f64 * p).round() as usize]
    };
    println!(
        "nodes {}  clients {}  writes {}  refused {}  writes/s {:.0}",
        args.nodes,
        args.clients,
        latencies.len(),
        failed,
        latencies.len() as f64 / elapsed
    );
    println!(
        "write latency ms  p50 {:.2}  p99 {:.2}",
        pct(&latencies, 0.5),
        pct(&latencies, 0.99)
    );
    println!(
        "replication lag ms (first node's /ws to last node's)  p50 {:.2}  p99 {:.2}  events {}",
        pct(&lags, 0.5),
        pct(&lags, 0.99),
        lags.len()
    );
    for watcher in watchers {
        watcher.abort();
    }
    for node in nodes {
        node.shutdown().await?;
    }
    Ok(())
}

/// Posts memories on one keep-alive connection until `until`; returns the latencies (ms) of
/// acknowledged writes and the count of refused ones.
async fn writer(
    addr: &str,
    client: usize,
    until: Instant,
) -> Result<(Vec<f64>, u64), std::io::Error> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut latencies = Vec::new();
    let mut refused = 0;
    let mut buf = vec![0u8; 64 * 1024];
    let mut i = 0u64;
    while Instant::now() < until {
        let body = format!(r#"{{"content":"client {client} memory {i} about green tea"}}"#);
        let request = format!(
            "POST /api/v1/memories HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let sent = Instant::now();
        stream.write_all(request.as_bytes()).await?;
        let status = read_response(&mut stream, &mut buf).await?;
        if status == 201 {
            latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
        } else {
            refused += 1;
        }
        i += 1;
    }
    Ok((latencies, refused))
}

/// Reads one HTTP/1.1 response with a Content-Length body; returns its status.
async fn read_response(stream: &mut TcpStream, buf: &mut [u8]) -> Result<u16, std::io::Error> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let mut filled = 0;
    loop {
        let n = stream.read(&mut buf[filled..]).await?;
        if n == 0 {
            return Err(bad("connection closed"));
        }
        filled += n;
        let text = String::from_utf8_lossy(&buf[..filled]);
        let Some(end) = text.find("\r\n\r\n") else {
            continue;
        };
        let head = &text[..end];
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("no status"))?;
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        if filled >= end + 4 + length {
            return Ok(status);
        }
    }
}
