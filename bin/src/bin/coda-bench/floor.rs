//! `--floor`: what one write to a loopback TCP connection costs the writer, without Coda. One
//! thread writes a `--size`-byte frame to each of `--clients` connections per event, `--rate`
//! events a second, with blocking writes and no runtime; another thread drains the
//! connections without ever sleeping, so no wake-up is charged to the writer. The writer's own
//! CPU time per write is the kernel's price of one delivery per write on this machine: on
//! loopback it includes the receiving side's TCP processing, which runs on the sender's CPU.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::remote::{stat_cpu_seconds, Outcome};
use super::Args;

pub(super) fn run(args: &Args) -> Outcome<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let mut readers = Vec::with_capacity(args.clients);
    let mut writers = Vec::with_capacity(args.clients);
    for _ in 0..args.clients {
        let reader = TcpStream::connect(addr)?;
        reader.set_nonblocking(true)?;
        let (writer, _) = listener.accept()?;
        writer.set_nodelay(true)?;
        readers.push(reader);
        writers.push(writer);
    }
    let done = Arc::new(AtomicBool::new(false));
    let draining = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            let mut bytes = 0u64;
            while !done.load(Ordering::Relaxed) {
                for mut reader in &readers {
                    match reader.read(&mut buf) {
                        Ok(n) => bytes += n as u64,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            Ok(bytes)
        })
    };
    let frame = vec![b'x'; args.size.max(1)];
    let period = (args.rate > 0).then(|| Duration::from_secs_f64(1.0 / args.rate as f64));
    let cpu_before = stat_cpu_seconds("/proc/thread-self/stat")?;
    let started = Instant::now();
    let mut next = started;
    let (mut writes, mut events) = (0u64, 0u64);
    while started.elapsed().as_secs_f64() < args.seconds {
        for mut writer in &writers {
            writer.write_all(&frame)?;
        }
        writes += writers.len() as u64;
        events += 1;
        if let Some(period) = period {
            next += period;
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
    }
    let cpu = stat_cpu_seconds("/proc/thread-self/stat")? - cpu_before;
    let elapsed = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let drained = draining
        .join()
        .map_err(|_| "the draining thread panicked")??;
    println!(
        "floor: {} connections, {:.0} events/s of {} bytes ({} asked): {writes} writes in \
         {elapsed:.1} s, the writing thread's CPU {:.2} µs per write ({drained} bytes drained)",
        args.clients,
        events as f64 / elapsed,
        frame.len(),
        args.rate,
        cpu * 1e6 / writes.max(1) as f64,
    );
    Ok(())
}
