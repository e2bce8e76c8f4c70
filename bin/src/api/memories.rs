//! Long-term memories: add, list, search, read, update, delete.

use coda::{Filter, MemoryId, MemoryPatch, NewMemory};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{blocking, created, ok, ApiError, Reply, Request};

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
}

pub async fn add(r: Request<'_>) -> Reply {
    let body: AddMemory = r.json()?;
    let mut new = NewMemory::new(
        body.content,
        body.memory_type.unwrap_or_else(|| "fact".into()),
    );
    if let Some(importance) = body.importance {
        new = new.importance(importance);
    }
    new.metadata = body.metadata.unwrap_or_default();
    let memory = blocking(r.state, Some("add"), move |m| m.add_memory(new)).await?;
    created(&memory)
}

pub async fn list(r: Request<'_>) -> Reply {
    let limit = r.query.number::<usize>("limit")?.unwrap_or(DEFAULT_PAGE);
    let offset = r.query.number::<usize>("offset")?.unwrap_or(0);
    let filter = r.query.get("type").map(Filter::source_type);
    let memories = blocking(r.state, None, move |m| {
        m.list_memories(offset, limit, filter.as_ref())
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
}

pub async fn search_body(r: Request<'_>) -> Reply {
    let body: Search = r.json()?;
    let filter = body.filter.as_ref().map(Filter::parse).transpose()?;
    search(r, body.query, body.limit, body.min_similarity, filter).await
}

pub async fn search_query(r: Request<'_>) -> Reply {
    let query = r
        .query
        .get("q")
        .ok_or_else(|| ApiError::invalid("q", "is required"))?
        .to_owned();
    let limit = r.query.number("limit")?;
    let min_similarity = r.query.number("min_similarity")?;
    let filter = r.query.get("type").map(Filter::source_type);
    search(r, query, limit, min_similarity, filter).await
}

async fn search(
    r: Request<'_>,
    query: String,
    limit: Option<usize>,
    min_similarity: Option<f32>,
    filter: Option<Filter>,
) -> Reply {
    let limit = limit.unwrap_or(DEFAULT_SEARCH_LIMIT);
    let min_similarity = min_similarity.unwrap_or(0.0);
    let results = blocking(r.state, Some("search"), move |m| {
        m.get_memories(&query, limit, min_similarity, filter.as_ref())
    })
    .await?;
    ok(&json!({"results": results}))
}

fn memory_id(id: &str) -> Result<MemoryId, ApiError> {
    MemoryId::parse_str(id).map_err(|_| ApiError::not_found(format!("memory `{id}`")))
}

pub async fn get(r: Request<'_>, id: &str) -> Reply {
    let id = memory_id(id)?;
    ok(&blocking(r.state, None, move |m| m.get_memory(id)).await?)
}

pub async fn update(r: Request<'_>, id: &str) -> Reply {
    let id = memory_id(id)?;
    let patch: MemoryPatch = r.json()?;
    ok(&blocking(r.state, Some("update"), move |m| m.update_memory(id, patch)).await?)
}

pub async fn delete(r: Request<'_>, id: &str) -> Reply {
    let id = memory_id(id)?;
    ok(&blocking(r.state, Some("delete"), move |m| m.delete_memory(id)).await?)
}
