//! Long-term memories: add, list, search, read, update, delete.

use coda::{Filter, MemoryId, MemoryPatch, NewMemory, Query, SearchMode, Version, Visibility};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{created, ok, scoped, ApiError, Reply, Request, ScopeIds};

/// Results a search returns when the caller gives no `limit`.
const DEFAULT_SEARCH_LIMIT: usize = 5;
/// Memories a listing returns when the caller gives no `limit`.
const DEFAULT_PAGE: usize = 50;

/// `POST /memories`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddMemory {
    content: String,
    #[serde(default)]
    memory_type: Option<String>,
    #[serde(default)]
    importance: Option<f64>,
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
    /// The user it belongs to (default `default`).
    #[serde(default)]
    user_id: Option<String>,
    /// The agent it is for.
    #[serde(default)]
    agent_id: Option<String>,
    /// The session it came from.
    #[serde(default)]
    session_id: Option<String>,
    /// What it is about, for superseding (SPEC §10).
    #[serde(default)]
    slot: Option<String>,
    /// When it expires (RFC 3339).
    #[serde(default, with = "coda::model::timestamp::option")]
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Seconds until it expires.
    #[serde(default)]
    ttl_s: Option<u64>,
}

pub async fn add(r: Request<'_>) -> Reply {
    let body: AddMemory = r.json()?;
    let scope = r.scope_with(ScopeIds {
        user_id: body.user_id,
        agent_id: body.agent_id,
        session_id: body.session_id,
    })?;
    let mut new = NewMemory::new(
        body.content,
        body.memory_type.unwrap_or_else(|| "fact".into()),
    );
    if let Some(importance) = body.importance {
        new = new.importance(importance);
    }
    new.metadata = body.metadata.unwrap_or_default();
    new.slot = body.slot;
    new.expires_at = body.expires_at;
    new.ttl_s = body.ttl_s;
    let added = scoped(r.state, Some("add"), scope, move |s| s.remember(new)).await?;
    let mut reply = serde_json::to_value(&added.memory).map_err(|e| {
        ApiError::new(
            http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            e.to_string(),
        )
    })?;
    if added.deduplicated {
        // A restatement: nothing stored, the existing memory answers (SPEC §10).
        reply["deduplicated"] = Value::Bool(true);
        return ok(&reply);
    }
    if !added.superseded.is_empty() {
        reply["superseded"] = json!(added.superseded);
    }
    created(&reply)
}

/// `include_superseded` and `include_expired` query parameters.
fn visibility(r: &Request<'_>) -> Result<Visibility, ApiError> {
    Ok(Visibility {
        include_superseded: r.query.flag("include_superseded")?,
        include_expired: r.query.flag("include_expired")?,
    })
}

pub async fn list(r: Request<'_>) -> Reply {
    let limit = r.query.number::<usize>("limit")?.unwrap_or(DEFAULT_PAGE);
    let offset = r.query.number::<usize>("offset")?.unwrap_or(0);
    let filter = r.query.get("type").map(Filter::source_type);
    let visibility = visibility(&r)?;
    let scope = r.scope()?;
    let memories = scoped(r.state, None, scope, move |s| {
        s.list_visible(offset, limit, filter.as_ref(), visibility)
    })
    .await?;
    ok(&json!({"memories": memories, "offset": offset, "limit": limit}))
}

/// `POST /memories/search`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Search {
    query: String,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    min_similarity: Option<f32>,
    #[serde(default)]
    filter: Option<Value>,
    /// `vector`, `lexical` or `hybrid`; absent = `search.mode`.
    #[serde(default)]
    mode: Option<String>,
    /// Whose memories (default `default`).
    #[serde(default)]
    user_id: Option<String>,
    /// Only memories of this agent.
    #[serde(default)]
    agent_id: Option<String>,
    /// Only memories of this session.
    #[serde(default)]
    session_id: Option<String>,
    /// Superseded memories too.
    #[serde(default)]
    include_superseded: bool,
    /// Expired memories too.
    #[serde(default)]
    include_expired: bool,
    /// Each result says the parts of its score.
    #[serde(default)]
    explain: bool,
}

/// Parses a search `mode`; a bad value is a 422 naming `mode`.
fn mode(value: Option<&str>) -> Result<Option<SearchMode>, ApiError> {
    value.map(|v| v.parse().map_err(ApiError::from)).transpose()
}

pub async fn search_body(r: Request<'_>) -> Reply {
    let body: Search = r.json()?;
    let scope = r.scope_with(ScopeIds {
        user_id: body.user_id,
        agent_id: body.agent_id,
        session_id: body.session_id,
    })?;
    let filter = body.filter.as_ref().map(Filter::parse).transpose()?;
    let mode = mode(body.mode.as_deref())?;
    let options = SearchOptions {
        limit: body.limit,
        min_similarity: body.min_similarity,
        filter,
        mode,
        visibility: Visibility {
            include_superseded: body.include_superseded,
            include_expired: body.include_expired,
        },
        explain: body.explain,
    };
    search(r, scope, body.query, options).await
}

pub async fn search_query(r: Request<'_>) -> Reply {
    let query = r
        .query
        .get("q")
        .ok_or_else(|| ApiError::invalid("q", "is required"))?
        .to_owned();
    let options = SearchOptions {
        limit: r.query.number("limit")?,
        min_similarity: r.query.number("min_similarity")?,
        filter: r.query.get("type").map(Filter::source_type),
        mode: mode(r.query.get("mode"))?,
        visibility: visibility(&r)?,
        explain: r.query.flag("explain")?,
    };
    let scope = r.scope()?;
    search(r, scope, query, options).await
}

/// What both search forms may give besides the query.
struct SearchOptions {
    limit: Option<usize>,
    min_similarity: Option<f32>,
    filter: Option<Filter>,
    mode: Option<SearchMode>,
    visibility: Visibility,
    explain: bool,
}

async fn search(
    r: Request<'_>,
    scope: coda::Scope,
    query: String,
    options: SearchOptions,
) -> Reply {
    let limit = options.limit.unwrap_or(DEFAULT_SEARCH_LIMIT);
    let min_similarity = options.min_similarity.unwrap_or(0.0);
    let filter = options.filter;
    let results = scoped(r.state, Some("search"), scope, move |s| {
        s.search(&Query {
            limit,
            min_similarity,
            filter: filter.as_ref(),
            mode: options.mode,
            visibility: options.visibility,
            explain: options.explain,
            ..Query::new(&query)
        })
    })
    .await?;
    ok(&json!({"results": results}))
}

fn memory_id(id: &str) -> Result<MemoryId, ApiError> {
    MemoryId::parse_str(id).map_err(|_| ApiError::not_found(format!("memory `{id}`")))
}

pub async fn get(r: Request<'_>, id: &str) -> Reply {
    let id = memory_id(id)?;
    let scope = r.scope()?;
    ok(&scoped(r.state, None, scope, move |s| s.get_memory(id)).await?)
}

/// `PATCH /memories/{id}`: `user_id`, `agent_id` and `session_id` are not patchable (an
/// unknown field, 422); as query parameters they name the scope the memory is found in.
pub async fn update(r: Request<'_>, id: &str) -> Reply {
    let id = memory_id(id)?;
    let patch: MemoryPatch = r.json()?;
    let scope = r.scope()?;
    ok(&scoped(r.state, Some("update"), scope, move |s| {
        s.update_memory(id, patch)
    })
    .await?)
}

pub async fn delete(r: Request<'_>, id: &str) -> Reply {
    let id = memory_id(id)?;
    let scope = r.scope()?;
    ok(&scoped(r.state, Some("delete"), scope, move |s| s.delete_memory(id)).await?)
}

/// One version as `GET /memories/{id}/history` gives it (SPEC §10).
fn version_json(v: &Version) -> Value {
    let mut out = json!({
        "version": v.version,
        "action": v.action,
        "at": coda::model::timestamp::format(&v.at),
        "content": v.memory.content,
        "metadata": v.memory.metadata,
        "by": v.by,
    });
    if !v.memory.source_turns.is_empty() {
        out["source_turns"] = json!(v.memory.source_turns);
    }
    if let Some(by) = v.memory.superseded_by {
        out["superseded_by"] = json!(by);
    }
    if let Some(slot) = &v.memory.slot {
        out["slot"] = json!(slot);
    }
    if let Some(at) = &v.memory.expires_at {
        out["expires_at"] = json!(coda::model::timestamp::format(at));
    }
    out
}

pub async fn history(r: Request<'_>, id: &str) -> Reply {
    let id = memory_id(id)?;
    let scope = r.scope()?;
    let versions = scoped(r.state, None, scope, move |s| s.memory_history(id)).await?;
    let history: Vec<Value> = versions.iter().map(version_json).collect();
    ok(&json!({ "history": history }))
}
