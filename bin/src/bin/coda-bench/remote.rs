//! `coda-bench --url URL`: drives a server running in another process, over HTTP and
//! WebSocket only, as its users would: `--clients` subscribers on `/ws`, `--posters`
//! keep-alive HTTP clients POSTing turns (at `--rate` in all, or as fast as they go), and the
//! server's own CPU time read from `/proc/<pid>/stat` (`--server-pid`) around the run, so the
//! figure is the server's CPU per delivered event, not the load tool's.
//!
//! ```sh
//! coda serve --config benches/ingest/bench.toml &
//! coda-bench --url http://127.0.0.1:18765 --server-pid $! --clients 1000 --rate 200 --seconds 10
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use super::Args;

pub(super) type Outcome<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// User plus system CPU seconds of process `pid` so far.
fn cpu_seconds(pid: u32) -> Outcome<f64> {
    stat_cpu_seconds(&format!("/proc/{pid}/stat"))
}

/// User plus system CPU seconds so far from a `/proc` `stat` file (a process's or a thread's).
pub(super) fn stat_cpu_seconds(path: &str) -> Outcome<f64> {
    let stat = std::fs::read_to_string(path)?;
    // Fields after the command (which may hold spaces) closed by `)`.
    let rest = stat.rsplit_once(')').ok_or("unreadable /proc stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks =
        |i: usize| -> Outcome<f64> { Ok(fields.get(i).ok_or("short /proc stat")?.parse::<f64>()?) };
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after `state`.
    let hz = 100.0;
    Ok((ticks(11)? + ticks(12)?) / hz)
}

/// The event's `timestamp` (the last field of every event's JSON), as Unix microseconds.
fn stamped_us(text: &str) -> Option<i64> {
    const KEY: &str = "\"timestamp\":\"";
    let at = text.rfind(KEY)? + KEY.len();
    let end = at + text[at..].find('"')?;
    let ts = chrono::DateTime::parse_from_rfc3339(&text[at..end]).ok()?;
    Some(ts.timestamp_micros())
}

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Each subscriber times one delivery in this many.
const LATENCY_EVERY: u64 = 8;

/// One subscriber: counts deliveries and their latency until told to stop.
///
/// Cheap per frame, since on a shared machine the load tool's CPU is the server's latency:
/// no timer per read (the stop signal is a watch), the type is checked in the frame's first
/// bytes (an event's JSON starts with its `type`), and the latency is sampled on every
/// [`LATENCY_EVERY`]th delivery (parsing every frame's timestamp capped what one client thread could read).
async fn subscribe(url: String, mut stop: watch::Receiver<bool>) -> Outcome<(u64, Vec<u32>)> {
    const TURN: &str = "{\"type\":\"conversation_turn\"";
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(16 * 1024);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true).await?;
    let mut deliveries = 0u64;
    let mut latencies = Vec::new();
    loop {
        let message = tokio::select! {
            biased;
            next = ws.next() => match next {
                Some(Ok(message)) => message,
                _ => break,
            },
            _ = stop.changed() => break,
        };
        let Message::Text(text) = message else {
            continue;
        };
        if !text.starts_with(TURN) {
            continue;
        }
        deliveries += 1;
        if deliveries % LATENCY_EVERY != 0 {
            continue;
        }
        if let Some(at) = stamped_us(&text) {
            latencies.push(u32::try_from((now_us() - at).max(0)).unwrap_or(u32::MAX));
        }
    }
    Ok((deliveries, latencies))
}

/// Reads one HTTP/1.1 response whose body has a Content-Length; returns its status.
async fn response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Outcome<u16> {
    buf.clear();
    loop {
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err("the server closed the connection".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = std::str::from_utf8(&buf[..head_end])?;
        let status: u16 = head.get(9..12).ok_or("no status")?.parse()?;
        let length = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().ok())?
            })
            .unwrap_or(0);
        if buf.len() >= head_end + 4 + length {
            return Ok(status);
        }
    }
}

/// One keep-alive poster: `share` turns per second (0: as fast as it goes) until `until`.
/// One keep-alive client POSTing turns, `share` a second (0: as fast as it goes). Poster `i` of
/// `posters` starts `i / posters` of a period late, so together they post evenly spaced turns
/// rather than bursts of one turn from each at the same instant.
async fn post(
    host: String,
    (poster, posters): (usize, usize),
    share: f64,
    until: Instant,
) -> Outcome<u64> {
    let mut stream = TcpStream::connect(&host).await?;
    stream.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(8192);
    let start = Instant::now();
    let mut sent = 0u64;
    while Instant::now() < until {
        if share > 0.0 {
            let offset = poster as f64 / posters as f64;
            let due = start + Duration::from_secs_f64((sent as f64 + offset) / share);
            tokio::time::sleep_until(due.into()).await;
        }
        let body = format!(r#"{{"role":"user","content":"poster {poster} turn {sent}"}}"#);
        let request = format!(
            "POST /api/v1/turns?user_id=bench-{poster} HTTP/1.1\r\nHost: {host}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await?;
        let status = response(&mut stream, &mut buf).await?;
        if status != 201 {
            return Err(format!("POST /api/v1/turns answered {status}").into());
        }
        sent += 1;
    }
    Ok(sent)
}

/// Runs the remote benchmark and prints its figures.
pub async fn run(args: &Args, url: &str) -> Outcome<()> {
    let host = url
        .strip_prefix("http://")
        .ok_or("--url must be http://HOST:PORT")?
        .trim_end_matches('/')
        .to_owned();
    let (stop, stopped) = watch::channel(false);
    let mut subscribers = Vec::with_capacity(args.clients);
    for _ in 0..args.clients {
        let url = format!("ws://{host}/ws?replay=0&types=conversation_turn");
        subscribers.push(tokio::spawn(subscribe(url, stopped.clone())));
    }
    // Let every upgrade finish before the clock starts.
    let ready = Instant::now() + Duration::from_secs(30);
    while Instant::now() < ready {
        let metrics = get(&host, "/metrics").await.unwrap_or_default();
        let open = metrics
            .lines()
            .find(|l| l.starts_with("coda_websocket_connections "))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0);
        if open as usize >= args.clients {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cpu_before = args.server_pid.map(cpu_seconds).transpose()?;
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(args.seconds);
    let share = args.rate as f64 / args.posters.max(1) as f64;
    let posted = AtomicU64::new(0);
    let mut posters = Vec::new();
    for poster in 0..args.posters.max(1) {
        let of = (poster, args.posters.max(1));
        posters.push(tokio::spawn(post(host.clone(), of, share, until)));
    }
    for p in posters {
        posted.fetch_add(p.await??, Ordering::Relaxed);
    }
    let elapsed = started.elapsed().as_secs_f64();
    // Deliveries still in flight arrive within the latency budget.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cpu = match (args.server_pid, cpu_before) {
        (Some(pid), Some(before)) => Some(cpu_seconds(pid)? - before),
        _ => None,
    };
    // Every subscriber holds a receiver, so the send reaches them.
    let _ = stop.send(true);
    let mut deliveries = 0u64;
    let mut latencies = Vec::new();
    for s in subscribers {
        let (n, mut l) = s.await??;
        deliveries += n;
        latencies.append(&mut l);
    }
    latencies.sort_unstable();
    let pct = |p: f64| -> f64 {
        latencies
            .get(((latencies.len().saturating_sub(1)) as f64 * p) as usize)
            .map_or(0.0, |&us| us as f64 / 1000.0)
    };
    let posted = posted.load(Ordering::Relaxed);
    println!(
        "remote {url}: subscribers={} posters={} rate={}",
        args.clients,
        args.posters,
        if args.rate == 0 {
            "max".to_owned()
        } else {
            args.rate.to_string()
        }
    );
    println!(
        "posted={posted} in {elapsed:.2}s ({:.0} turns/s); deliveries={deliveries} ({:.0}/s), expected={}",
        posted as f64 / elapsed,
        deliveries as f64 / elapsed,
        posted * args.clients as u64
    );
    println!(
        "latency ms: p50={:.3} p99={:.3} max={:.3}",
        pct(0.5),
        pct(0.99),
        latencies.last().map_or(0.0, |&us| us as f64 / 1000.0)
    );
    if let Some(cpu) = cpu {
        println!(
            "server CPU: {cpu:.2}s ({:.0}% of one core); {:.2} µs per delivery",
            cpu / elapsed * 100.0,
            cpu * 1e6 / deliveries.max(1) as f64
        );
    }
    Ok(())
}

/// A plain HTTP GET (the load tool needs nothing more).
async fn get(host: &str, path: &str) -> Outcome<String> {
    let mut stream = TcpStream::connect(host).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut text = String::new();
    stream.read_to_string(&mut text).await?;
    Ok(text)
}
