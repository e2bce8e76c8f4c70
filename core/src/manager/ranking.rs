//! Importance and recency in the score (SPEC §10):
//! `score = relevance + importance_weight · importance + recency_weight · 0.5^(age_h / half_life)`,
//! age counted from the memory's last change. With both weights 0 (the default) the ranking is
//! the search mode's alone.

use chrono::{DateTime, Utc};

use crate::config::SearchConfig;
use crate::model::{Explain, ScoredMemory};

/// The weighted parts of `hit`'s score at `now`, its mode's score being the relevance.
pub(super) fn parts(hit: &ScoredMemory, search: &SearchConfig, now: DateTime<Utc>) -> Explain {
    let changed = hit.updated_at.unwrap_or(hit.metadata.timestamp);
    let age_h = (now - changed).num_milliseconds().max(0) as f64 / 3_600_000.0;
    let recency = 0.5f64.powf(age_h / search.recency_half_life_h);
    Explain {
        relevance: hit.score,
        importance: (search.importance_weight * hit.metadata.importance) as f32,
        recency: (search.recency_weight * recency) as f32,
    }
}

/// Adds the weighted parts to each score, re-ranks, keeps the best `limit`, and attaches the
/// parts when `explain` asks.
pub(super) fn weigh(
    mut hits: Vec<ScoredMemory>,
    search: &SearchConfig,
    explain: bool,
    limit: usize,
) -> Vec<ScoredMemory> {
    let weighted = search.importance_weight > 0.0 || search.recency_weight > 0.0;
    if !weighted && !explain {
        hits.truncate(limit);
        return hits;
    }
    let now = crate::model::timestamp::now();
    for hit in &mut hits {
        let parts = parts(hit, search, now);
        hit.score = parts.relevance + parts.importance + parts.recency;
        if explain {
            hit.explain = Some(parts);
        }
    }
    if weighted {
        hits.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then(b.similarity.total_cmp(&a.similarity))
        });
    }
    hits.truncate(limit);
    hits
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Memory, Metadata};

    fn hit(score: f32, importance: f64, age_h: i64) -> ScoredMemory {
        let metadata = Metadata {
            source_type: "fact".into(),
            importance,
            timestamp: crate::model::timestamp::now() - chrono::Duration::hours(age_h),
            topics: Vec::new(),
            extra: Default::default(),
        };
        let mut hit = ScoredMemory::new(Memory::new(uuid::Uuid::new_v4(), "x", metadata), score);
        hit.score = score;
        hit
    }

    #[test]
    fn weights_lift_important_and_recent_memories_and_explain_adds_up() {
        let search = SearchConfig {
            importance_weight: 0.5,
            recency_weight: 0.2,
            recency_half_life_h: 24.0,
            ..SearchConfig::default()
        };
        let old_trivial = hit(0.60, 0.1, 240);
        let new_important = hit(0.50, 0.9, 0);
        let ranked = weigh(vec![old_trivial, new_important], &search, true, 2);
        assert!((ranked[0].metadata.importance - 0.9).abs() < 1e-9);
        let parts = ranked[0].explain.expect("explain");
        assert!((parts.importance - 0.45).abs() < 1e-6);
        assert!((parts.recency - 0.2).abs() < 1e-3, "{parts:?}");
        assert!(
            (parts.relevance + parts.importance + parts.recency - ranked[0].score).abs() < 1e-6
        );
        // A day-old memory's recency part is half the weight.
        let day = parts_of(&search, 24);
        assert!((day - 0.1).abs() < 1e-3, "{day}");
    }

    fn parts_of(search: &SearchConfig, age_h: i64) -> f32 {
        parts(
            &hit(0.0, 0.0, age_h),
            search,
            crate::model::timestamp::now(),
        )
        .recency
    }

    #[test]
    fn without_weights_the_mode_score_stands() {
        let ranked = weigh(
            vec![hit(0.3, 1.0, 0), hit(0.2, 0.0, 0)],
            &SearchConfig::default(),
            true,
            5,
        );
        assert_eq!(ranked[0].score, 0.3);
        assert_eq!(ranked[0].explain.map(|e| e.importance), Some(0.0));
    }
}
