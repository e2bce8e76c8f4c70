//! Tenants' `max_memories` (SPEC §9): a write that would take a tenant over its quota is refused
//! whole, before anything is written. Writes of one tenant with a quota are serialised around
//! the count and the write, so concurrent requests cannot overshoot it together; tenants
//! without a quota take no lock, and each quota has its own, so tenants never wait on each other.

use std::collections::HashMap;

use parking_lot::Mutex;

use crate::backend::MemoryBackend;
use crate::tenant::TenantConfig;
use crate::{Error, Result};

/// The quota and write lock of every tenant with `max_memories > 0`.
pub(super) struct Quotas {
    limits: HashMap<String, (u64, Mutex<()>)>,
}

impl Quotas {
    pub(super) fn new(tenants: &[TenantConfig]) -> Quotas {
        let limits = tenants
            .iter()
            .filter(|t| t.max_memories > 0)
            .map(|t| (t.id.clone(), (t.max_memories, Mutex::new(()))))
            .collect();
        Quotas { limits }
    }

    /// Runs `write`, which adds at most `adding` memories to `tenant`, if the tenant then stays
    /// within its quota; otherwise [`Error::QuotaExceeded`] and nothing runs.
    pub(super) fn within<T>(
        &self,
        backend: &dyn MemoryBackend,
        tenant: &str,
        adding: usize,
        write: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let Some((max, lock)) = self.limits.get(tenant) else {
            return write();
        };
        if adding == 0 {
            return write();
        }
        let _serialised = lock.lock();
        let held: usize = backend.owners(tenant)?.into_iter().map(|(_, n)| n).sum();
        if (held + adding) as u64 > *max {
            return Err(Error::QuotaExceeded { max: *max });
        }
        write()
    }
}
