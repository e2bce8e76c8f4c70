//! The seed's `memory_stats` object, and the running summary of long-term memory behind it.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{timestamp, Metadata};

/// `memory_stats`, exactly as the seed's snapshot shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryStats {
    /// The conversation window.
    pub short_term: ShortTermStats,
    /// Long-term memory.
    pub long_term: LongTermStats,
    /// Topics of the most recently added memories, newest last.
    pub recent_topics: Vec<String>,
    /// The name of the last tool whose output was added as a turn.
    pub last_tool_used: Option<String>,
}

/// `memory_stats.short_term`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShortTermStats {
    /// Turns in the session so far.
    pub turn_count: u64,
    /// Seconds since the session started.
    pub session_duration: f64,
}

/// `memory_stats.long_term`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LongTermStats {
    /// Stored memories.
    pub total_memories: u64,
    /// Memories by `source_type`.
    pub source_types: BTreeMap<String, u64>,
    /// Mean importance (0 when empty).
    pub average_importance: f64,
    /// Timestamp of the oldest memory.
    #[serde(with = "timestamp::option")]
    pub oldest_memory: Option<DateTime<Utc>>,
    /// Timestamp of the newest memory.
    #[serde(with = "timestamp::option")]
    pub newest_memory: Option<DateTime<Utc>>,
    /// Number of distinct topics.
    pub topics: usize,
    /// Keys of what the assistant knows about the user (`name`, `location`, ...).
    pub user_summary_keys: Vec<String>,
}

/// How many recent topics `memory_stats.recent_topics` keeps.
pub const RECENT_TOPICS: usize = 10;

/// Aggregates over long-term memory kept up to date on every change, so stats never scan.
#[derive(Debug, Clone, Default)]
pub struct LongTermSummary {
    count: u64,
    importance_sum: f64,
    source_types: BTreeMap<String, u64>,
    timestamps: BTreeMap<DateTime<Utc>, u64>,
    topics: BTreeMap<String, u64>,
    recent_topics: VecDeque<String>,
}

fn decrement<K: Ord>(map: &mut BTreeMap<K, u64>, key: &K) {
    if let Some(n) = map.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            map.remove(key);
        }
    }
}

impl LongTermSummary {
    /// A summary of `memories`, in insertion order.
    pub fn of<'a>(memories: impl IntoIterator<Item = &'a Metadata>) -> Self {
        let mut summary = LongTermSummary::default();
        for metadata in memories {
            summary.add(metadata);
        }
        summary
    }

    /// Counts a memory in.
    pub fn add(&mut self, metadata: &Metadata) {
        self.count += 1;
        self.importance_sum += metadata.importance;
        *self
            .source_types
            .entry(metadata.source_type.clone())
            .or_insert(0) += 1;
        *self.timestamps.entry(metadata.timestamp).or_insert(0) += 1;
        for topic in &metadata.topics {
            *self.topics.entry(topic.clone()).or_insert(0) += 1;
            self.recent_topics.retain(|t| t != topic);
            self.recent_topics.push_back(topic.clone());
            if self.recent_topics.len() > RECENT_TOPICS {
                self.recent_topics.pop_front();
            }
        }
    }

    /// Counts a memory out.
    pub fn remove(&mut self, metadata: &Metadata) {
        self.count = self.count.saturating_sub(1);
        self.importance_sum -= metadata.importance;
        decrement(&mut self.source_types, &metadata.source_type);
        decrement(&mut self.timestamps, &metadata.timestamp);
        for topic in &metadata.topics {
            decrement(&mut self.topics, topic);
        }
    }

    /// Every distinct topic, sorted.
    pub fn topics(&self) -> Vec<String> {
        self.topics.keys().cloned().collect()
    }

    /// Topics of the latest memories, newest last.
    pub fn recent_topics(&self) -> Vec<String> {
        self.recent_topics.iter().cloned().collect()
    }

    /// The `long_term` part of `memory_stats`.
    pub fn stats(&self, user_summary_keys: Vec<String>) -> LongTermStats {
        LongTermStats {
            total_memories: self.count,
            source_types: self.source_types.clone(),
            average_importance: if self.count == 0 {
                0.0
            } else {
                // Rounded so repeated adds and removes do not show float drift.
                (self.importance_sum / self.count as f64 * 1e9).round() / 1e9
            },
            oldest_memory: self.timestamps.keys().next().copied(),
            newest_memory: self.timestamps.keys().next_back().copied(),
            topics: self.topics.len(),
            user_summary_keys,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(source_type: &str, importance: f64, secs: i64, topics: &[&str]) -> Metadata {
        Metadata {
            source_type: source_type.into(),
            importance,
            timestamp: DateTime::from_timestamp(secs, 0).expect("valid time"),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            extra: Default::default(),
        }
    }

    #[test]
    fn summary_tracks_adds_and_removes() {
        let a = meta("fact", 0.8, 100, &["user", "name"]);
        let b = meta("preference", 0.7, 200, &["user", "preference"]);
        let mut summary = LongTermSummary::of([&a, &b]);
        let stats = summary.stats(vec![]);
        assert_eq!(stats.total_memories, 2);
        assert_eq!(stats.source_types.get("fact"), Some(&1));
        assert!((stats.average_importance - 0.75).abs() < 1e-9);
        assert_eq!(stats.topics, 3);
        assert_eq!(stats.oldest_memory, Some(a.timestamp));
        assert_eq!(stats.newest_memory, Some(b.timestamp));
        summary.remove(&a);
        let stats = summary.stats(vec![]);
        assert_eq!(stats.total_memories, 1);
        assert_eq!(stats.oldest_memory, Some(b.timestamp));
        assert_eq!(summary.topics(), vec!["preference", "user"]);
        assert_eq!(summary.recent_topics(), vec!["name", "user", "preference"]);
    }
}
