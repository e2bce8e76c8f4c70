//! Snapshots: list, create, read, save, load, apply, delete, automatic snapshots.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use coda::manager::CURRENT;
use coda::retention::{parse_duration, PrunePolicy, SnapshotFilter};

use super::{blocking_global, created, no_content, ok, scoped, ApiError, Reply, Request, ScopeIds};

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
    let filter = SnapshotFilter {
        from: time(&r, "from")?,
        to: time(&r, "to")?,
        q: r.query
            .get("q")
            .filter(|q| !q.is_empty())
            .map(str::to_owned),
    };
    let scope = r.scope()?;
    let snapshots = scoped(r.state, None, scope, move |s| s.find_snapshots(&filter)).await?;
    ok(&json!({"snapshots": snapshots}))
}

/// `POST /snapshots`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Create {
    #[serde(default)]
    save: bool,
    /// Whose memories to capture (default `default`).
    #[serde(default)]
    user_id: Option<String>,
    /// Which of the user's sessions to capture (default `default`).
    #[serde(default)]
    session_id: Option<String>,
}

pub async fn create(r: Request<'_>) -> Reply {
    let body: Create = r.json_or_empty()?;
    if r.query.get("agent_id").is_some() {
        return Err(ApiError::invalid(
            "agent_id",
            "a snapshot captures a whole user and one session; it takes no agent",
        ));
    }
    let scope = r.scope_with(ScopeIds {
        user_id: body.user_id,
        agent_id: None,
        session_id: body.session_id,
    })?;
    let (meta, location) = scoped(r.state, Some("snapshot"), scope, move |s| {
        let meta = s.create_snapshot()?;
        let location = if body.save {
            Some(s.save_snapshot(&meta.snapshot_id)?)
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
    let scope = r.scope()?;
    let snapshot = scoped(r.state, None, scope, move |s| s.get_snapshot(&id)).await?;
    ok(&*snapshot)
}

pub async fn save(r: Request<'_>, id: &str) -> Reply {
    let id = snapshot_id(id)?;
    let scope = r.scope()?;
    let location = scoped(r.state, Some("snapshot"), scope, move |s| {
        s.save_snapshot(&id)
    })
    .await?;
    ok(&json!({"location": location}))
}

/// What a load names that the store does not list: a 404, like an unknown id.
const UNLISTED: &str = "snapshot location";

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
    let scope = r.scope()?;
    let id = scoped(r.state, Some("snapshot"), scope, move |s| {
        let m = s.manager();
        // Over HTTP, only what the store holds: a location it lists, or a snapshot id. Any other
        // path would let a token holder make the server read arbitrary files.
        let store = m.store_for(s.scope().tenant());
        let listed = store.list()?;
        let location = listed
            .iter()
            .find(|s| s.location == body.location || s.meta.snapshot_id == body.location)
            .map(|s| s.location.clone())
            .ok_or_else(|| {
                // An id this tenant's store does not hold is unknown, like any other id: the
                // answer must not depend on whether another tenant holds it.
                if coda::snapshot::is_snapshot_id(&body.location) {
                    return coda::Error::snapshot_not_found(&body.location);
                }
                // A location the store does not list names nothing there: unknown, like an id.
                coda::Error::NotFound {
                    what: UNLISTED,
                    id: format!(
                        "{} (give a location or id that GET /snapshots lists in store `{}`)",
                        body.location,
                        store.name()
                    ),
                }
            })?;
        s.load_snapshot(&location)
    })
    .await
    .map_err(|mut e| {
        // Still say which field named nothing, as the 422 this was before did.
        if e.message.starts_with(UNLISTED) {
            e.field = Some("location".into());
        }
        e
    })?;
    ok(&json!({"snapshot_id": id}))
}

pub async fn apply(r: Request<'_>, id: &str) -> Reply {
    let id = snapshot_id(id)?;
    let applied = id.clone();
    let scope = r.scope()?;
    scoped(r.state, Some("snapshot"), scope, move |s| {
        s.apply_snapshot(&id)
    })
    .await?;
    ok(&json!({"snapshot_id": applied, "applied": true}))
}

pub async fn delete(r: Request<'_>, id: &str) -> Reply {
    let id = snapshot_id(id)?;
    let scope = r.scope()?;
    scoped(r.state, None, scope, move |s| s.delete_snapshot(&id)).await?;
    no_content()
}

/// `GET /snapshots/{a}/diff/{b}`: either side may be `current`.
pub async fn diff(r: Request<'_>, a: &str, b: &str) -> Reply {
    let side = |id: &str| {
        if id == CURRENT {
            Ok(id.to_owned())
        } else {
            snapshot_id(id)
        }
    };
    let (a, b) = (side(a)?, side(b)?);
    let scope = r.scope()?;
    let diff = scoped(r.state, None, scope, move |s| s.diff_snapshots(&a, &b)).await?;
    ok(&diff)
}

/// The oldest age a prune needs to tell apart (about 31,700 years).
const MAX_AGE_S: u64 = 1_000_000_000_000;

/// An `older_than` string as openapi.json states it: 1 to 12 digits and an optional unit
/// `s`, `m`, `h`, `d` (the default) or `w`.
fn duration(text: &str) -> Result<std::time::Duration, ApiError> {
    let digits = text.trim_end_matches(['s', 'm', 'h', 'd', 'w']);
    let unit_len = text.len() - digits.len();
    if digits.is_empty()
        || digits.len() > 12
        || unit_len > 1
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(ApiError::invalid(
            "older_than",
            format!("`{text}` is not like 30d, 12h, 90m, 45s, 2w or a number of days"),
        ));
    }
    Ok(parse_duration(text)?)
}

/// `POST /snapshots/prune`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Prune {
    #[serde(default)]
    keep: Option<usize>,
    /// `30d`, `12h`, `90m`, `45s`, or a number of seconds.
    #[serde(default)]
    older_than: Option<serde_json::Value>,
}

pub async fn prune(r: Request<'_>) -> Reply {
    let body: Prune = r.json_or_empty()?;
    let older_than = match body.older_than {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Number(n)) => {
            Some(std::time::Duration::from_secs(n.as_u64().ok_or_else(
                || ApiError::invalid("older_than", "must be a whole number of seconds"),
            )?))
        }
        Some(serde_json::Value::String(text)) => Some(duration(&text)?),
        Some(_) => {
            return Err(ApiError::invalid(
                "older_than",
                "must be a duration like \"30d\" or a number of seconds",
            ))
        }
    };
    // No snapshot is older than this; a larger age means the same and must not overflow.
    let older_than = older_than.map(|age| age.min(std::time::Duration::from_secs(MAX_AGE_S)));
    let policy = PrunePolicy {
        keep: body.keep,
        older_than,
    };
    let scope = r.scope()?;
    let removed = scoped(r.state, Some("snapshot"), scope, move |s| {
        s.prune_snapshots(&policy)
    })
    .await?;
    ok(&json!({"removed": removed}))
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
    // Automatic snapshots are one setting for every tenant: only an admin may change it, and
    // anyone else gets the 404 of an unknown route.
    if !crate::state::State::is_admin(&r.principal) {
        return Err(ApiError::not_found("route /api/v1/auto-snapshot"));
    }
    let body: Auto = r.json()?;
    if body.interval == Some(0) {
        return Err(ApiError::invalid("interval", "must be at least 1"));
    }
    let (enabled, interval) = blocking_global(r.state, None, move |m| {
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
