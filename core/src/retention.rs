//! Which saved snapshots to show and which to remove: listing filters and prune policies, shared
//! by the manager, the HTTP API and the `coda snapshot` command.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::snapshot::{Snapshot, SnapshotMeta, SnapshotStore, StoredSnapshot};
use crate::{Error, Result};

/// Narrows a snapshot listing: by time range and by a text query over snapshot content.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SnapshotFilter {
    /// Only snapshots taken at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Only snapshots taken at or before this time.
    pub to: Option<DateTime<Utc>>,
    /// Only snapshots whose id or content (memories, turns, topics) contains this text,
    /// case-insensitively.
    pub q: Option<String>,
}

impl SnapshotFilter {
    /// Whether the metadata is inside the time range.
    pub fn in_range(&self, meta: &SnapshotMeta) -> bool {
        self.from.is_none_or(|from| meta.timestamp >= from)
            && self.to.is_none_or(|to| meta.timestamp <= to)
    }

    /// Whether the snapshot's content matches `q` (always true without `q`).
    pub fn matches_content(&self, snapshot: &Snapshot) -> bool {
        let Some(q) = self.q.as_deref().map(str::to_lowercase) else {
            return true;
        };
        let hit = |text: &str| text.to_lowercase().contains(&q);
        snapshot
            .long_term
            .memories
            .values()
            .any(|m| hit(&m.content))
            || snapshot.short_term.turns.iter().any(|t| hit(&t.content))
            || snapshot.long_term.topics.iter().any(|t| hit(t))
    }
}

/// Lists a store's snapshots that pass `filter`, newest first. Content queries read each
/// snapshot in the time range; a snapshot that cannot be read is skipped with a warning.
pub fn list_store(
    store: &dyn SnapshotStore,
    filter: &SnapshotFilter,
) -> Result<Vec<StoredSnapshot>> {
    let mut out = Vec::new();
    for stored in store.list()? {
        if !filter.in_range(&stored.meta) {
            continue;
        }
        let id_matches = filter.q.as_deref().is_some_and(|q| {
            stored
                .meta
                .snapshot_id
                .to_lowercase()
                .contains(&q.to_lowercase())
        });
        if filter.q.is_some() && !id_matches {
            match store.load(&stored.location) {
                Ok(snapshot) if filter.matches_content(&snapshot) => {}
                Ok(_) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "skipping unreadable snapshot in search");
                    continue;
                }
            }
        }
        out.push(stored);
    }
    Ok(out)
}

/// Which snapshots a prune removes: those outside the newest `keep` *and* older than
/// `older_than` (each condition applies only when given; at least one must be).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrunePolicy {
    /// Always keep this many of the newest snapshots.
    pub keep: Option<usize>,
    /// Only remove snapshots older than this.
    pub older_than: Option<Duration>,
}

impl PrunePolicy {
    /// The snapshots of `newest_first` this policy removes, as of `now`.
    pub fn select<'a>(
        &self,
        newest_first: &'a [StoredSnapshot],
        now: DateTime<Utc>,
    ) -> Result<Vec<&'a StoredSnapshot>> {
        if self.keep.is_none() && self.older_than.is_none() {
            return Err(Error::invalid(
                "keep",
                "give keep, older_than or both; a prune with neither would remove everything",
            ));
        }
        let cutoff = match self.older_than {
            Some(age) => Some(
                chrono::Duration::from_std(age)
                    .ok()
                    .and_then(|age| now.checked_sub_signed(age))
                    .ok_or_else(|| Error::invalid("older_than", "is too large"))?,
            ),
            None => None,
        };
        Ok(newest_first
            .iter()
            .enumerate()
            .filter(|(i, _)| self.keep.is_none_or(|keep| *i >= keep))
            .filter(|(_, s)| cutoff.is_none_or(|cutoff| s.meta.timestamp < cutoff))
            .map(|(_, s)| s)
            .collect())
    }
}

/// Removes what `policy` selects among the snapshots of `store` that `within` accepts (one
/// user's, or all); returns the removed ids, newest first.
pub fn prune_store(
    store: &dyn SnapshotStore,
    policy: &PrunePolicy,
    within: &dyn Fn(&SnapshotMeta) -> bool,
) -> Result<Vec<String>> {
    let mut listed = store.list()?;
    listed.retain(|stored| within(&stored.meta));
    let mut removed = Vec::new();
    for stored in policy.select(&listed, crate::model::timestamp::now())? {
        if store.delete(&stored.meta.snapshot_id)? {
            removed.push(stored.meta.snapshot_id.clone());
        }
    }
    Ok(removed)
}

/// Parses a human duration such as `30d`, `12h`, `90m`, `45s` or `2w`.
pub fn parse_duration(text: &str) -> Result<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| {
        Error::invalid(
            "older_than",
            format!("`{text}` is not like 30d, 12h or 90m"),
        )
    })?;
    let secs = match unit.trim() {
        "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hour" | "hours" => 3600,
        "" | "d" | "day" | "days" => 86_400,
        "w" | "week" | "weeks" => 604_800,
        other => {
            return Err(Error::invalid(
                "older_than",
                format!("unknown unit `{other}`; use s, m, h, d or w"),
            ))
        }
    };
    n.checked_mul(secs)
        .map(Duration::from_secs)
        .ok_or_else(|| Error::invalid("older_than", "is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(minutes_ago: i64, now: DateTime<Utc>) -> StoredSnapshot {
        let at = now - chrono::Duration::minutes(minutes_ago);
        StoredSnapshot {
            meta: SnapshotMeta {
                snapshot_id: format!("s{minutes_ago}"),
                timestamp: at,
                short_term_turns: 0,
                long_term_memories: 0,
                topics: 0,
                scope: Default::default(),
            },
            location: String::new(),
        }
    }

    #[test]
    fn prune_keeps_the_newest_and_removes_only_old_ones() {
        let now = Utc::now();
        let listed: Vec<_> = [1, 10, 100, 1000].iter().map(|m| stored(*m, now)).collect();
        let ids = |p: PrunePolicy| -> Vec<String> {
            p.select(&listed, now)
                .expect("policy")
                .iter()
                .map(|s| s.meta.snapshot_id.clone())
                .collect()
        };
        let keep = |n| PrunePolicy {
            keep: Some(n),
            older_than: None,
        };
        assert_eq!(ids(keep(2)), ["s100", "s1000"]);
        assert_eq!(ids(keep(10)), Vec::<String>::new());
        let old = PrunePolicy {
            keep: None,
            older_than: Some(Duration::from_secs(30 * 60)),
        };
        assert_eq!(ids(old), ["s100", "s1000"]);
        let both = PrunePolicy {
            keep: Some(3),
            older_than: Some(Duration::from_secs(30 * 60)),
        };
        assert_eq!(ids(both), ["s1000"]);
        assert!(PrunePolicy::default().select(&listed, now).is_err());
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(
            parse_duration("30d").expect("d"),
            Duration::from_secs(30 * 86_400)
        );
        assert_eq!(
            parse_duration("12h").expect("h"),
            Duration::from_secs(12 * 3600)
        );
        assert_eq!(
            parse_duration("90m").expect("m"),
            Duration::from_secs(90 * 60)
        );
        assert_eq!(
            parse_duration("2 weeks").expect("w"),
            Duration::from_secs(14 * 86_400)
        );
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5y").is_err());
    }
}
