//! Online backup (SPEC §13): `POST /backup {"dir": NAME}`, for admin tokens only, writes a
//! consistent copy of the backend and the snapshot store into `server.backup_dir/NAME`.

use std::sync::Arc;

use http::StatusCode;
use serde::Deserialize;

use super::{created, ApiError, Reply, Request};
use crate::state::State;

/// The body of `POST /backup`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BackupRequest {
    /// A plain directory name under `server.backup_dir`.
    dir: String,
}

/// Longest backup directory name, in bytes (what common file systems allow).
const MAX_NAME_BYTES: usize = 255;

/// Checks that `name` is one plain directory name: 1 to 255 bytes of `[A-Za-z0-9._-]`, not
/// starting with `.` (so never `.` or `..`), as the OpenAPI document's pattern says.
fn check_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(ApiError::invalid(
            "dir",
            "must be a directory name of 1 to 255 bytes",
        ));
    }
    if name.starts_with('.') {
        return Err(ApiError::invalid(
            "dir",
            "must not start with `.` (no `.`, `..` or hidden directories)",
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(ApiError::invalid(
            "dir",
            format!(
                "must be a plain directory name under server.backup_dir (A-Z a-z 0-9 . _ -); \
                 found {bad:?}"
            ),
        ));
    }
    Ok(())
}

/// `POST /backup`: 201 with the manifest and where the backup is. Anyone but an admin gets the
/// 404 an unknown route gets, as on `GET /tenants`.
pub async fn create(r: Request<'_>) -> Reply {
    if !State::is_admin(&r.principal) {
        return Err(ApiError::not_found("route /api/v1/backup"));
    }
    let body: BackupRequest = r.json()?;
    check_name(&body.dir)?;
    let root = r.state.config.server.backup_dir.clone();
    let target = root.join(&body.dir);
    let manager = Arc::clone(&r.state.manager);
    // Not through `blocking_global`: that holds the write gate the backup must take alone.
    let joined = tokio::task::spawn_blocking(move || -> coda::Result<serde_json::Value> {
        std::fs::create_dir_all(&root).map_err(|e| coda::Error::io("create", &root, e))?;
        match std::fs::create_dir(&target) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(coda::Error::invalid(
                    "dir",
                    format!("{} already exists; name a new directory", target.display()),
                ))
            }
            Err(e) => return Err(coda::Error::io("create", &target, e)),
        }
        match manager.backup(&target) {
            Ok(manifest) => {
                let mut out = serde_json::to_value(&manifest)
                    .map_err(|e| coda::Error::invalid("manifest", e.to_string()))?;
                out["path"] = serde_json::Value::String(target.display().to_string());
                Ok(out)
            }
            Err(e) => {
                // Leave no half-made backup that could pass for one.
                if let Err(cleanup) = std::fs::remove_dir_all(&target) {
                    tracing::warn!(error = %cleanup, dir = %target.display(), "removing a failed backup");
                }
                Err(e)
            }
        }
    })
    .await;
    match joined {
        Ok(Ok(manifest)) => created(&manifest),
        Ok(Err(e)) => Err(ApiError::from(e)),
        Err(e) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("the backup did not complete: {e}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_are_accepted() {
        for good in ["nightly", "2026-12-02", "a.b_c"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "/abs",
            "a\\b",
            ".hidden",
            "a\0b",
            "é",
            &"x".repeat(256),
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
