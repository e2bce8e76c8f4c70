//! Recently embedded texts, so a repeated query costs a hash lookup instead of a forward pass.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use twox_hash::XxHash3_64;

/// How the cache has done since the embedder was built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that had to run the encoder.
    pub misses: u64,
    /// Vectors held now.
    pub entries: usize,
}

struct Entry {
    /// Kept to tell apart two texts whose hashes collide.
    text: Box<str>,
    vector: Vec<f32>,
}

/// Two generations approximate least-recently-used eviction in O(1): new entries go into `hot`;
/// when `hot` is full it becomes `cold` (dropping the old `cold`), and a hit in `cold` moves the
/// entry back to `hot`. Anything used within the last generation survives.
#[derive(Default)]
struct Generations {
    hot: HashMap<u64, Entry>,
    cold: HashMap<u64, Entry>,
}

/// A bounded map from text (by its xxh3 hash) to its vector; safe to share between threads.
pub(crate) struct VectorCache {
    generation: usize,
    inner: Mutex<Generations>,
    hits: AtomicU64,
    misses: AtomicU64,
}

fn key(text: &str) -> u64 {
    XxHash3_64::oneshot(text.as_bytes())
}

impl VectorCache {
    /// A cache holding at most `entries` vectors (rounded up to even); 0 disables it.
    pub(crate) fn new(entries: usize) -> Self {
        VectorCache {
            generation: entries.div_ceil(2),
            inner: Mutex::new(Generations::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The cached vector of `text`, counting the hit or miss.
    pub(crate) fn get(&self, text: &str) -> Option<Vec<f32>> {
        let found = self.lookup(text);
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    fn lookup(&self, text: &str) -> Option<Vec<f32>> {
        if self.generation == 0 {
            return None;
        }
        let k = key(text);
        let mut g = self.inner.lock();
        if let Some(entry) = g.hot.get(&k) {
            return (*entry.text == *text).then(|| entry.vector.clone());
        }
        let entry = g.cold.remove(&k)?;
        if *entry.text != *text {
            g.cold.insert(k, entry);
            return None;
        }
        let vector = entry.vector.clone();
        self.insert_locked(&mut g, k, entry);
        Some(vector)
    }

    /// Remembers the vector of `text`.
    pub(crate) fn insert(&self, text: &str, vector: &[f32]) {
        if self.generation == 0 {
            return;
        }
        let entry = Entry {
            text: text.into(),
            vector: vector.to_vec(),
        };
        let mut g = self.inner.lock();
        self.insert_locked(&mut g, key(text), entry);
    }

    fn insert_locked(&self, g: &mut Generations, k: u64, entry: Entry) {
        if g.hot.len() >= self.generation && !g.hot.contains_key(&k) {
            g.cold = std::mem::take(&mut g.hot);
        }
        g.cold.remove(&k);
        g.hot.insert(k, entry);
    }

    pub(crate) fn stats(&self) -> CacheStats {
        let g = self.inner.lock();
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: g.hot.len() + g.cold.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_text_is_a_hit() {
        let cache = VectorCache::new(4);
        assert_eq!(cache.get("a"), None);
        cache.insert("a", &[1.0, 2.0]);
        assert_eq!(cache.get("a"), Some(vec![1.0, 2.0]));
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses, stats.entries), (1, 1, 1));
    }

    #[test]
    fn size_is_bounded_and_recent_entries_survive() {
        let cache = VectorCache::new(4);
        for i in 0..100 {
            cache.insert(&format!("t{i}"), &[i as f32]);
            // Keep touching t0 so it stays in the recent generation.
            assert_eq!(cache.get("t0"), Some(vec![0.0]), "after inserting t{i}");
            assert!(cache.stats().entries <= 4);
        }
        assert_eq!(cache.get("t99"), Some(vec![99.0]));
        assert_eq!(cache.get("t50"), None, "old, untouched entries are evicted");
    }

    #[test]
    fn zero_entries_disables_the_cache() {
        let cache = VectorCache::new(0);
        cache.insert("a", &[1.0]);
        assert_eq!(cache.get("a"), None);
        assert_eq!(cache.stats().entries, 0);
    }
}
