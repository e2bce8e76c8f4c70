//! Snapshots: list, create, read, save, load, apply, delete, automatic snapshots.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::{blocking, created, no_content, ok, ApiError, Reply, Request};

/// Ids reach the store as file names: anything that is not a snapshot id cannot exist.
fn snapshot_id(id: &str) -> Result<String, ApiError> {
    if coda::snapshot::is_snapshot_id(id) {
        Ok(id.to_owned())
    } else {
        Err(ApiError::not_found(format!("snapshot `{id}`")))
    }
}

fn time(r: &Request<'_>, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    r.query
        .get(name)
        .map(|v| {
            coda::model::timestamp::parse(v)
                .ok_or_else(|| ApiError::invalid(name, format!("`{v}` is not an RFC 3339 time")))
        })
        .transpose()
}

pub async fn list(r: Request<'_>) -> Reply {
    let from = time(&r, "from")?;
    let to = time(&r, "to")?;
    let q = r.query.get("q").map(str::to_lowercase);
    let all = blocking(r.state, None, |m| m.list_snapshots()).await?;
    let snapshots: Vec<_> = all
        .into_iter()
        .filter(|s| from.is_none_or(|from| s.meta.timestamp >= from))
        .filter(|s| to.is_none_or(|to| s.meta.timestamp <= to))
        .filter(|s| {
            q.as_deref()
                .is_none_or(|q| s.meta.snapshot_id.to_lowercase().contains(q))
        })
        .collect();
    ok(&json!({"snapshots": snapshots}))
}

/// `POST /snapshots`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Create {
    #[serde(default)]
    save: bool,
}

pub async fn create(r: Request<'_>) -> Reply {
    let body: Create = r.json_or_empty()?;
    let (meta, location) = blocking(r.state, Some("snapshot"), move |m| {
        let meta = m.create_snapshot()?;
        let location = if body.save {
            Some(m.save_snapshot(&meta.snapshot_id)?)
        } else {
            None
        };
        Ok((meta, location))
    })
    .await?;
    let mut reply = json!({"snapshot_id": meta.snapshot_id, "metadata": meta});
    if let Some(location) = location {
        reply["location"] = location.into();
    }
    created(&reply)
}

pub async fn get(r: Request<'_>, id: &str) -> Reply {
    let id = snapshot_id(id)?;
    let snapshot = blocking(r.state, None, move |m| m.get_snapshot(&id)).await?;
    ok(&*snapshot)
}

pub async fn save(r: Request<'_>, id: &str) -> Reply {
    let id = snapshot_id(id)?;
    let location = blocking(r.state, Some("snapshot"), move |m| m.save_snapshot(&id)).await?;
    ok(&json!({"location": location}))
}

/// `POST /snapshots/load`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Load {
    location: String,
}

pub async fn load(r: Request<'_>) -> Reply {
    let body: Load = r.json()?;
    if body.location.trim().is_empty() {
        return Err(ApiError::invalid("location", "must not be empty"));
    }
    let id = blocking(r.state, Some("snapshot"), move |m| {
        m.load_snapshot(&body.location)
    })
    .await?;
    ok(&json!({"snapshot_id": id}))
}

pub async fn apply(r: Request<'_>, id: &str) -> Reply {
    let id = snapshot_id(id)?;
    let applied = id.clone();
    blocking(r.state, Some("snapshot"), move |m| m.apply_snapshot(&id)).await?;
    ok(&json!({"snapshot_id": applied, "applied": true}))
}

pub async fn delete(r: Request<'_>, id: &str) -> Reply {
    let id = snapshot_id(id)?;
    blocking(r.state, None, move |m| m.delete_snapshot(&id)).await?;
    no_content()
}

/// `PUT /auto-snapshot`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Auto {
    enabled: bool,
    #[serde(default)]
    interval: Option<u64>,
}

pub async fn auto(r: Request<'_>) -> Reply {
    let body: Auto = r.json()?;
    if body.interval == Some(0) {
        return Err(ApiError::invalid("interval", "must be at least 1"));
    }
    let (enabled, interval) = blocking(r.state, None, move |m| {
        if body.enabled {
            let interval = body.interval.unwrap_or(m.auto_snapshot_settings().1);
            m.enable_auto_snapshot(interval)?;
        } else {
            m.disable_auto_snapshot();
        }
        Ok(m.auto_snapshot_settings())
    })
    .await?;
    ok(&json!({"enabled": enabled, "interval": interval}))
}
