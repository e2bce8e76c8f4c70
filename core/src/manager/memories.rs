//! Long-term memories: add, search, read, update, delete, list.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};

use std::collections::HashMap;

use super::fusion::{fuse, Signals};
use super::Scoped;
use crate::bus::Dedup;
use crate::config::{SearchFusion, SearchMode};
use crate::event::{EventBody, EventScope};
use crate::filter::Filter;
use crate::model::{Memory, MemoryId, MemoryRecord, Metadata, NewMemory, ScoredMemory};
use crate::vector::dot;
use crate::{Error, Result};

/// Largest `limit` a search or listing accepts.
pub const MAX_LIMIT: usize = 1000;

/// Metadata keys the manager owns; callers set them through their own fields. The scope keys
/// are here so caller metadata can never pose as another user's (SPEC §8).
const RESERVED_KEYS: [&str; 6] = [
    "source_type",
    "importance",
    "timestamp",
    "user_id",
    "agent_id",
    "session_id",
];

/// Checks a listing or search `limit`.
pub(super) fn check_limit(limit: usize) -> Result<()> {
    if limit > MAX_LIMIT {
        return Err(Error::invalid(
            "limit",
            format!("must be at most {MAX_LIMIT}"),
        ));
    }
    Ok(())
}

/// A change to a memory: every field is optional; `metadata` keys are merged (null removes).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryPatch {
    /// New text (re-embedded).
    pub content: Option<String>,
    /// New source type.
    pub memory_type: Option<String>,
    /// New importance.
    pub importance: Option<f64>,
    /// Keys to set (`topics` replaces the topics); a null value removes the key.
    pub metadata: Option<Map<String, Value>>,
    /// A new expiry time; `null` removes the expiry.
    #[serde(default, deserialize_with = "some_time")]
    pub expires_at: Option<Option<DateTime<Utc>>>,
    /// Expire this many seconds from now; exclusive with `expires_at`.
    pub ttl_s: Option<u64>,
}

/// A present `expires_at`, null or a time, as `Some`.
fn some_time<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Option<DateTime<Utc>>>, D::Error> {
    crate::model::timestamp::option::deserialize(d).map(Some)
}

/// Who may see superseded and expired memories (SPEC §10); both hidden by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Visibility {
    /// Superseded memories are included.
    pub include_superseded: bool,
    /// Expired (not yet swept) memories are included.
    pub include_expired: bool,
}

impl Visibility {
    /// `filter` narrowed to what this visibility shows.
    fn apply(self, filter: Option<&Filter>) -> Option<Filter> {
        if self.include_superseded && self.include_expired {
            return filter.cloned();
        }
        Some(Filter::both(
            filter,
            Filter::Visible {
                at: crate::model::timestamp::now(),
                superseded: self.include_superseded,
                expired: self.include_expired,
            },
        ))
    }
}

/// A search: what [`Scoped::search`] takes.
#[derive(Debug, Clone)]
pub struct Query<'a> {
    /// The text to match.
    pub text: &'a str,
    /// At most this many results, in `1..=1000`.
    pub limit: usize,
    /// Results have at least this cosine similarity.
    pub min_similarity: f32,
    /// A metadata filter.
    pub filter: Option<&'a Filter>,
    /// The ranking; the configured one when `None`.
    pub mode: Option<SearchMode>,
    /// Superseded and expired memories shown or not.
    pub visibility: Visibility,
    /// Results carry the parts of their score.
    pub explain: bool,
}

impl<'a> Query<'a> {
    /// A query for `text` with the defaults: 5 results, any similarity, no filter.
    pub fn new(text: &'a str) -> Self {
        Query {
            text,
            limit: 5,
            min_similarity: -1.0,
            filter: None,
            mode: None,
            visibility: Visibility::default(),
            explain: false,
        }
    }
}

/// The expiry `expires_at` or `ttl_s` ask for, if any. A time already past stores the memory
/// expired (hidden, deleted by the next sweep), as an import of old memories needs.
fn expiry(
    expires_at: Option<DateTime<Utc>>,
    ttl_s: Option<u64>,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>> {
    match (expires_at, ttl_s) {
        (Some(_), Some(_)) => Err(Error::invalid(
            "ttl_s",
            "give either `expires_at` or `ttl_s`, not both",
        )),
        (Some(at), None) => Ok(Some(at)),
        (None, Some(0)) => Err(Error::invalid("ttl_s", "must be at least 1")),
        (None, Some(ttl)) if ttl > MAX_TTL_S => Err(Error::invalid(
            "ttl_s",
            format!("must be at most {MAX_TTL_S} (about 292 years)"),
        )),
        (None, Some(ttl)) => {
            let ttl = i64::try_from(ttl)
                .ok()
                .and_then(chrono::Duration::try_seconds)
                .and_then(|d| now.checked_add_signed(d))
                .ok_or_else(|| Error::invalid("ttl_s", "is too large"))?;
            Ok(Some(ttl))
        }
        (None, None) => Ok(None),
    }
}

/// Longest `ttl_s`: about 292 years, as the OpenAPI document states.
const MAX_TTL_S: u64 = 9_223_372_036;

/// Checks a caller's slot: like a scope id, 1 to 128 bytes of `[A-Za-z0-9._:@-]`.
fn check_slot(slot: &str) -> Result<()> {
    crate::scope::check_id("slot", slot)
}

fn check_importance(importance: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&importance) {
        return Err(Error::invalid(
            "importance",
            format!("{importance} is outside [0, 1]"),
        ));
    }
    Ok(())
}

fn check_type(memory_type: &str) -> Result<()> {
    if memory_type.trim().is_empty() {
        return Err(Error::invalid("memory_type", "must not be empty"));
    }
    Ok(())
}

/// Caller metadata split into its topics (if given) and the remaining keys.
type SplitMetadata = (Option<Vec<String>>, Map<String, Value>);

/// Splits caller metadata into topics and the remaining keys, rejecting reserved keys.
fn split_metadata(mut metadata: Map<String, Value>) -> Result<SplitMetadata> {
    for key in RESERVED_KEYS {
        if metadata.contains_key(key) {
            return Err(Error::invalid(
                format!("metadata.{key}"),
                "is set by Coda; use the top-level field instead",
            ));
        }
    }
    let topics = match metadata.remove("topics") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(
            items
                .into_iter()
                .map(|item| match item {
                    Value::String(s) if !s.trim().is_empty() => Ok(s),
                    _ => Err(Error::invalid(
                        "metadata.topics",
                        "must be an array of non-empty strings",
                    )),
                })
                .collect::<Result<Vec<_>>>()?,
        ),
        Some(_) => {
            return Err(Error::invalid(
                "metadata.topics",
                "must be an array of non-empty strings",
            ))
        }
    };
    Ok((topics, metadata))
}

impl Scoped<'_> {
    /// Adds a long-term memory to the scope's user (tagged with its agent and session when the
    /// scope names them) after validating it. A restatement of a memory the user has returns
    /// that memory and stores nothing; see [`remember`](Self::remember) to tell the two apart.
    pub fn add_memory(&self, new: NewMemory) -> Result<Memory> {
        self.remember(new).map(|r| r.memory)
    }

    /// Validates `new` and embeds it as a memory of this scope, without storing it.
    pub(super) fn prepare_memory(&self, new: NewMemory) -> Result<MemoryRecord> {
        let m = self.manager;
        m.check_content("content", &new.content)?;
        check_importance(new.importance)?;
        check_type(&new.memory_type)?;
        let (topics, extra) = split_metadata(new.metadata)?;
        if let Some(slot) = &new.slot {
            check_slot(slot)?;
        }
        let now = crate::model::timestamp::now();
        let expires_at = expiry(new.expires_at, new.ttl_s, now)?;
        let metadata = Metadata {
            source_type: new.memory_type,
            importance: new.importance,
            timestamp: now,
            topics: topics.unwrap_or_default(),
            extra,
        };
        let mut memory =
            Memory::new(crate::stamp::new_id(), new.content, metadata).in_scope(&self.scope);
        memory.slot = new.slot;
        memory.expires_at = expires_at;
        memory.source_turns = new.source_turns;
        let embedding = m.embedder.embed(&memory.content)?;
        Ok(MemoryRecord { memory, embedding })
    }

    /// Indexes and announces a memory the backend has just stored.
    pub(super) fn stored(&self, memory: &Memory) {
        self.stored_with(memory, None);
    }

    /// [`stored`](Self::stored) with the memory's restatement hashes when they are at hand.
    pub(super) fn stored_with(&self, memory: &Memory, hashes: Option<[u64; 2]>) {
        let m = self.manager;
        m.indexes.added(memory, hashes);
        m.expiries.lock().schedule(memory);
        m.bus.emit_in(
            &EventScope::of_memory(memory),
            &EventBody::MemoryStore {
                memory_id: memory.id,
                content: memory.content.clone(),
                metadata: memory.metadata.clone(),
            },
            Dedup::Check,
        );
    }

    /// The `limit` memories that best match `query`, ranked by the configured search mode,
    /// with similarity at least `min_similarity` and matching `filter`; publishes
    /// `memory_retrieve`.
    pub fn get_memories(
        &self,
        query: &str,
        limit: usize,
        min_similarity: f32,
        filter: Option<&Filter>,
    ) -> Result<Vec<ScoredMemory>> {
        self.search_memories(query, limit, min_similarity, filter, None)
    }

    /// As [`get_memories`](Self::get_memories), ranking by `mode` (the configured default when
    /// `None`).
    pub fn search_memories(
        &self,
        query: &str,
        limit: usize,
        min_similarity: f32,
        filter: Option<&Filter>,
        mode: Option<SearchMode>,
    ) -> Result<Vec<ScoredMemory>> {
        self.search(&Query {
            limit,
            min_similarity,
            filter,
            mode,
            ..Query::new(query)
        })
    }

    /// Runs `q`: the best matches by its ranking, with importance and recency weighted in as
    /// `[search]` says, superseded and expired memories hidden unless it asks for them;
    /// publishes `memory_retrieve`.
    pub fn search(&self, q: &Query<'_>) -> Result<Vec<ScoredMemory>> {
        let (query, limit, min_similarity, mode) = (q.text, q.limit, q.min_similarity, q.mode);
        let m = self.manager;
        m.check_content("query", query)?;
        if limit == 0 || limit > MAX_LIMIT {
            return Err(Error::invalid(
                "limit",
                format!("must be in 1..={MAX_LIMIT}"),
            ));
        }
        if !(-1.0..=1.0).contains(&min_similarity) {
            return Err(Error::invalid("min_similarity", "must be in [-1, 1]"));
        }
        let embedding = m.embedder.embed(query)?;
        let search = &m.config.search;
        let filter = q.visibility.apply(q.filter);
        let filter = filter.as_ref();
        let weighted = search.importance_weight > 0.0 || search.recency_weight > 0.0;
        // Weights can lift a memory from below the top `limit`: rank a wider pool.
        let wanted = limit;
        let limit = if weighted {
            limit.saturating_mul(4).max(50)
        } else {
            limit
        };
        let results = match mode.unwrap_or(search.mode) {
            SearchMode::Vector => {
                m.backend
                    .search(&self.scope, &embedding, limit, min_similarity, filter)?
            }
            SearchMode::Lexical => {
                self.ranked(query, &embedding, limit, min_similarity, filter, None)?
            }
            SearchMode::Hybrid => self.ranked(
                query,
                &embedding,
                limit,
                min_similarity,
                filter,
                Some(search.fusion),
            )?,
        };
        let results = super::ranking::weigh(results, search, q.explain, wanted);
        // A repeated search is a distinct retrieval, never a duplicate.
        self.emit(
            &EventBody::MemoryRetrieve {
                query: query.to_owned(),
                results: results.clone(),
            },
            Dedup::Skip,
        );
        Ok(results)
    }

    /// Lexical ranking (`fusion` is `None`: candidates from BM25, scored by BM25 over the BM25 of
    /// a typical full match) or hybrid ranking (candidates from vector search and BM25, scored
    /// by [`fuse`]).
    fn ranked(
        &self,
        query: &str,
        embedding: &[f32],
        limit: usize,
        min_similarity: f32,
        filter: Option<&Filter>,
        fusion: Option<SearchFusion>,
    ) -> Result<Vec<ScoredMemory>> {
        // Enough candidates that a memory strong on one signal but not the other can still win.
        let m = self.manager;
        let pool = limit.saturating_mul(5).max(50);
        let (lexical, ceiling) = m.indexes.lexical(self.scope.owner(), query, pool);
        let normalised = |bm25: f32| {
            if ceiling > 0.0 {
                (bm25 / ceiling).min(1.0)
            } else {
                0.0
            }
        };
        let mut candidates: HashMap<MemoryId, ScoredMemory> = HashMap::new();
        if fusion.is_some() {
            for hit in m
                .backend
                .search(&self.scope, embedding, pool, min_similarity, filter)?
            {
                candidates.insert(hit.id, hit);
            }
        }
        let bm25: HashMap<MemoryId, f32> = lexical.iter().copied().collect();
        for (id, _) in &lexical {
            if candidates.contains_key(id) {
                continue;
            }
            let Some(record) = m.backend.get(&self.scope, *id)? else {
                continue;
            };
            let similarity = dot(embedding, &record.embedding);
            if similarity < min_similarity || filter.is_some_and(|f| !f.matches(&record.memory)) {
                continue;
            }
            candidates.insert(*id, ScoredMemory::new(record.memory, similarity));
        }
        let mut ranked: Vec<ScoredMemory> = candidates.into_values().collect();
        let signals: Vec<Signals> = ranked
            .iter()
            .map(|hit| Signals {
                cosine: hit.similarity,
                lexical: normalised(bm25.get(&hit.id).copied().unwrap_or(0.0)),
            })
            .collect();
        match fusion {
            Some(fusion) => {
                let search = &m.config.search;
                let scores = fuse(
                    fusion,
                    search.vector_weight as f32,
                    search.lexical_weight as f32,
                    &signals,
                );
                for (hit, score) in ranked.iter_mut().zip(scores) {
                    hit.score = score;
                }
            }
            None => {
                for (hit, s) in ranked.iter_mut().zip(&signals) {
                    hit.score = s.lexical;
                }
                ranked.retain(|hit| hit.score > 0.0);
            }
        }
        ranked.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then(b.similarity.total_cmp(&a.similarity))
        });
        ranked.truncate(limit);
        Ok(ranked)
    }

    /// The memory with `id`, if it lies in the scope (another user's id is not found).
    pub fn get_memory(&self, id: MemoryId) -> Result<Memory> {
        self.manager
            .backend
            .get(&self.scope, id)?
            .map(|record| record.memory)
            .ok_or_else(|| Error::memory_not_found(id))
    }

    /// A page of the scope's memories, newest first, optionally filtered; superseded and
    /// expired memories are left out.
    pub fn list_memories(
        &self,
        offset: usize,
        limit: usize,
        filter: Option<&Filter>,
    ) -> Result<Vec<Memory>> {
        self.list_visible(offset, limit, filter, Visibility::default())
    }

    /// As [`list_memories`](Self::list_memories), showing what `visibility` asks for.
    pub fn list_visible(
        &self,
        offset: usize,
        limit: usize,
        filter: Option<&Filter>,
        visibility: Visibility,
    ) -> Result<Vec<Memory>> {
        check_limit(limit)?;
        let filter = visibility.apply(filter);
        self.manager
            .backend
            .list(&self.scope, offset, limit, filter.as_ref())
    }

    /// Every version of memory `id` in the scope, oldest first (SPEC §10); answered after a
    /// delete, not after the user is erased.
    pub fn memory_history(&self, id: MemoryId) -> Result<Vec<crate::history::Version>> {
        self.manager
            .backend
            .history(&self.scope, id)?
            .ok_or_else(|| Error::memory_not_found(id))
    }

    /// How many long-term memories the scope's user has.
    pub fn memory_count(&self) -> Result<usize> {
        self.manager.backend.count(&self.scope)
    }

    /// Applies `patch` to the memory with `id` in the scope; publishes `memory_update`. The
    /// memory's user, agent and session cannot change.
    pub fn update_memory(&self, id: MemoryId, patch: MemoryPatch) -> Result<Memory> {
        let m = self.manager;
        if let Some(content) = &patch.content {
            m.check_content("content", content)?;
        }
        if let Some(importance) = patch.importance {
            check_importance(importance)?;
        }
        if let Some(memory_type) = &patch.memory_type {
            check_type(memory_type)?;
        }
        let (topics, keys) = split_metadata(patch.metadata.unwrap_or_default())?;
        let now = crate::model::timestamp::now();
        let expires_at = match (patch.expires_at, patch.ttl_s) {
            (Some(None), None) => Some(None),
            (Some(Some(at)), ttl) => Some(expiry(Some(at), ttl, now)?),
            (None, Some(ttl)) => Some(expiry(None, Some(ttl), now)?),
            (Some(None), Some(_)) => {
                return Err(Error::invalid(
                    "ttl_s",
                    "give either `expires_at` or `ttl_s`, not both",
                ))
            }
            (None, None) => None,
        };
        // Held across read-modify-write so concurrent updates keep the summary exact.
        let _owner = m.owner_locks.lock(self.scope.owner());
        let old = m
            .backend
            .get(&self.scope, id)?
            .ok_or_else(|| Error::memory_not_found(id))?;
        let mut memory = old.memory.clone();
        let embedding = match patch.content {
            Some(content) if content != memory.content => {
                memory.content = content;
                m.embedder.embed(&memory.content)?
            }
            _ => old.embedding.clone(),
        };
        if let Some(memory_type) = patch.memory_type {
            memory.metadata.source_type = memory_type;
        }
        if let Some(importance) = patch.importance {
            memory.metadata.importance = importance;
        }
        if let Some(topics) = topics {
            memory.metadata.topics = topics;
        }
        for (key, value) in keys {
            if value.is_null() {
                memory.metadata.extra.remove(&key);
            } else {
                memory.metadata.extra.insert(key, value);
            }
        }
        if let Some(expires_at) = expires_at {
            memory.expires_at = expires_at;
        }
        memory.updated_at = Some(now);
        memory.changed_by = crate::model::By::Api;
        m.backend.update(
            &self.scope,
            MemoryRecord {
                memory: memory.clone(),
                embedding,
            },
        )?;
        m.indexes.updated(&old.memory, &memory);
        self.updated(&old.memory, &memory);
        Ok(memory)
    }

    /// Removes the memory with `id` from the scope; publishes `memory_delete`.
    pub fn delete_memory(&self, id: MemoryId) -> Result<Memory> {
        let m = self.manager;
        let _owner = m.owner_locks.lock(self.scope.owner());
        let old = m
            .backend
            .get(&self.scope, id)?
            .ok_or_else(|| Error::memory_not_found(id))?;
        if !m.backend.delete(&self.scope, id, crate::model::By::Api)? {
            return Err(Error::memory_not_found(id));
        }
        m.indexes.removed(&old.memory);
        m.expiries.lock().unschedule(&old.memory);
        m.bus.emit_in(
            &EventScope::of_memory(&old.memory),
            &EventBody::MemoryDelete {
                memory_id: id,
                reason: None,
            },
            Dedup::Check,
        );
        Ok(old.memory)
    }
}
