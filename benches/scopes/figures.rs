//! Timing summaries and process memory.

use std::time::Duration;

/// p50, p99 and max of a set of timings.
pub struct Summary {
    pub n: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Summary {
    pub fn of(mut samples: Vec<Duration>) -> Self {
        samples.sort();
        let at = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
        Summary {
            n: samples.len(),
            p50: at(0.5),
            p99: at(0.99),
            max: at(1.0),
        }
    }

    pub fn print(&self, name: &str) {
        println!(
            "{name:<44} n={:<7} p50 {:>9.1} µs  p99 {:>9.1} µs  max {:>9.1} µs",
            self.n,
            micros(self.p50),
            micros(self.p99),
            micros(self.max)
        );
    }
}

pub fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Resident set size from `/proc/self/status`, when the platform has one.
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
