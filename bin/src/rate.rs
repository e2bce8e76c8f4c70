//! Per-tenant request rates (SPEC §9): one token bucket per tenant with a `rate_per_s`, holding
//! up to twice that many requests. Each tenant has its own bucket behind its own lock, so a
//! noisy tenant empties only its own and never slows another's requests.

use std::collections::HashMap;
use std::time::Instant;

use parking_lot::Mutex;

/// A token bucket: `tokens` refill at `rate` per second up to `burst`.
#[derive(Debug)]
struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// Takes one token at `now`; when none is left, the whole seconds until one is.
    fn take(&mut self, now: Instant) -> Result<(), u64> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - self.tokens) / self.rate;
            Err((wait.ceil() as u64).max(1))
        }
    }
}

/// The buckets of every tenant that has a `rate_per_s`.
#[derive(Debug, Default)]
pub struct RateLimits {
    buckets: HashMap<String, Mutex<Bucket>>,
}

impl RateLimits {
    /// A bucket, full, for each tenant with `rate_per_s > 0`.
    pub fn new(tenants: &[coda::TenantConfig]) -> RateLimits {
        let now = Instant::now();
        let buckets = tenants
            .iter()
            .filter(|t| t.rate_per_s > 0)
            .map(|t| {
                let rate = t.rate_per_s as f64;
                let bucket = Bucket {
                    rate,
                    burst: 2.0 * rate,
                    tokens: 2.0 * rate,
                    last: now,
                };
                (t.id.clone(), Mutex::new(bucket))
            })
            .collect();
        RateLimits { buckets }
    }

    /// Admits one request of `tenant` now, or says after how many seconds to retry.
    pub fn admit(&self, tenant: &str) -> Result<(), u64> {
        self.admit_at(tenant, Instant::now())
    }

    fn admit_at(&self, tenant: &str, now: Instant) -> Result<(), u64> {
        match self.buckets.get(tenant) {
            Some(bucket) => bucket.lock().take(now),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limits(rate: u64) -> RateLimits {
        RateLimits::new(&[coda::TenantConfig {
            id: "acme".into(),
            tokens: vec!["t".into()],
            max_memories: 0,
            rate_per_s: rate,
        }])
    }

    #[test]
    fn a_burst_of_twice_the_rate_then_the_rate() {
        let limits = limits(5);
        let start = Instant::now();
        for i in 0..10 {
            assert_eq!(limits.admit_at("acme", start), Ok(()), "request {i}");
        }
        assert_eq!(limits.admit_at("acme", start), Err(1));
        // 0.2 s later one more token has come in, and only one.
        let later = start + Duration::from_millis(200);
        assert_eq!(limits.admit_at("acme", later), Ok(()));
        assert!(limits.admit_at("acme", later).is_err());
        // Other tenants, and tenants without a rate, are never limited.
        for _ in 0..100 {
            assert_eq!(limits.admit_at("beta", start), Ok(()));
        }
    }

    #[test]
    fn retry_after_is_whole_seconds_until_a_token() {
        let limits = limits(1);
        let start = Instant::now();
        assert!(limits.admit_at("acme", start).is_ok());
        assert!(limits.admit_at("acme", start).is_ok());
        assert_eq!(limits.admit_at("acme", start), Err(1));
        let slow = RateLimits::new(&[]);
        assert_eq!(slow.admit_at("acme", start), Ok(()));
    }
}
