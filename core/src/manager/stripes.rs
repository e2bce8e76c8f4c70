//! Striped locks: serialise work on one key (a session, an owner) without a lock per key.

use std::hash::{Hash, Hasher};

use parking_lot::{Mutex, MutexGuard};
use twox_hash::XxHash3_64;

/// How many locks a set holds; two keys share one with probability 1/64.
const STRIPES: usize = 64;

/// A fixed set of mutexes; a key always maps to the same one.
pub(super) struct Stripes {
    locks: Vec<Mutex<()>>,
}

impl Stripes {
    pub(super) fn new() -> Self {
        Stripes {
            locks: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    /// Locks the stripe of `key`.
    pub(super) fn lock<K: Hash + ?Sized>(&self, key: &K) -> MutexGuard<'_, ()> {
        let mut hasher = XxHash3_64::default();
        key.hash(&mut hasher);
        let stripe = (hasher.finish() % STRIPES as u64) as usize;
        self.locks[stripe].lock()
    }
}
