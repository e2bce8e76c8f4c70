//! Deterministic benchmark data: memories of many users with random unit vectors.

use coda::vector::normalize;
use coda::{Memory, MemoryRecord, Metadata, Scope};

pub const DIMS: usize = 384;

pub const SUBJECTS: &[&str] = &[
    "dog", "cat", "sister", "brother", "car", "bike", "garden", "kitchen", "office", "doctor",
    "dentist", "flight", "hotel", "concert", "recipe", "coffee", "tea", "book", "movie", "song",
];
const PLACES: &[&str] = &[
    "Paris", "Berlin", "Tokyo", "Lisbon", "Oslo", "Austin", "Lima", "Cairo", "Seoul", "Quebec",
];

/// xorshift64*: cheap, deterministic, good enough for benchmark data.
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        XorShift(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A unit vector of `DIMS` components, two from each draw.
    pub fn unit_vector(&mut self) -> Vec<f32> {
        let mut v = Vec::with_capacity(DIMS);
        while v.len() < DIMS {
            let bits = self.next();
            for half in [bits as u32, (bits >> 32) as u32] {
                v.push((half >> 8) as f32 / (1u32 << 23) as f32 - 1.0);
            }
        }
        normalize(&mut v);
        v
    }

    fn uuid(&mut self) -> uuid::Uuid {
        let bytes = ((u128::from(self.next()) << 64) | u128::from(self.next())).to_le_bytes();
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }
}

/// A varied memory text; consecutive `i` mention every subject.
pub fn text(i: usize) -> String {
    format!(
        "The user mentioned the {} in {} on day {} ({}).",
        SUBJECTS[i % SUBJECTS.len()],
        PLACES[(i / 7) % PLACES.len()],
        i % 365,
        i
    )
}

/// Memory `i` of `scope`, with a fresh id and a random unit vector.
pub fn record(rng: &mut XorShift, scope: &Scope, i: usize) -> MemoryRecord {
    let metadata = Metadata::new("fact", 0.5);
    MemoryRecord {
        memory: Memory::new(rng.uuid(), text(i), metadata).in_scope(scope),
        embedding: rng.unit_vector(),
    }
}

/// User `user-NNNNN` of tenant `default`.
pub fn user(i: usize) -> Scope {
    Scope::user(&format!("user-{i:05}")).expect("valid user id")
}
