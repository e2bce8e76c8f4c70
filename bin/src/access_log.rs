//! One debug line per HTTP request (SPEC §13): method, route template, status, latency and
//! tenant. Never the raw path (it holds ids), the query (it may hold a token), headers or the
//! body: an access log must be safe to ship anywhere.

use std::time::Duration;

use http::{Method, StatusCode};

/// The `tracing` target of request lines, so `CODA_LOG=coda::http=debug` selects them alone.
pub const TARGET: &str = "coda::http";

/// The route `path` matches, as a template (`/api/v1/memories/{id}`), or `unmatched`.
pub fn route_template(path: &str) -> String {
    if let Some(tail) = path.strip_prefix("/api/v1/") {
        let segments: Vec<&str> = tail.trim_end_matches('/').split('/').collect();
        return match api_template(&segments) {
            Some(template) => format!("/api/v1{template}"),
            None => "unmatched".to_owned(),
        };
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let known = match segments.as_slice() {
        [""] => "/",
        ["healthz"] => "/healthz",
        ["readyz"] => "/readyz",
        ["metrics"] => "/metrics",
        ["ws"] => "/ws",
        ["assets", _] => "/assets/{file}",
        _ if crate::mcp::is_mcp(path) => "/mcp",
        _ => "unmatched",
    };
    known.to_owned()
}

/// The [`crate::api::ROUTES`] template `segments` matches; as in OpenAPI (and `Allow`), a
/// concrete path beats a template: `/memories/search` is not the memory `search`.
fn api_template(segments: &[&str]) -> Option<&'static str> {
    let mut best: Option<(usize, &'static str)> = None;
    for (_, template) in crate::api::ROUTES {
        let parts: Vec<&str> = template.trim_start_matches('/').split('/').collect();
        let matches = parts.len() == segments.len()
            && parts
                .iter()
                .zip(segments)
                .all(|(t, p)| t == p || (t.starts_with('{') && !p.is_empty()));
        if !matches {
            continue;
        }
        let holes = parts.iter().filter(|t| t.starts_with('{')).count();
        if best.is_none_or(|(b, _)| holes < b) {
            best = Some((holes, template));
        }
    }
    best.map(|(_, template)| template)
}

/// Logs one request at debug level. `tenant` is `None` when none was decided (no valid token,
/// or the server not ready).
pub fn log(
    method: &Method,
    path: &str,
    status: StatusCode,
    latency: Duration,
    tenant: Option<&str>,
) {
    if !tracing::enabled!(target: TARGET, tracing::Level::DEBUG) {
        return;
    }
    tracing::debug!(
        target: TARGET,
        method = %method,
        route = %route_template(path),
        status = status.as_u16(),
        latency_ms = latency.as_secs_f64() * 1000.0,
        tenant = tenant.unwrap_or("-"),
        "request"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_templates_never_ids() {
        assert_eq!(
            route_template("/api/v1/memories/7b0c-secret-id"),
            "/api/v1/memories/{id}"
        );
        assert_eq!(
            route_template("/api/v1/memories/search"),
            "/api/v1/memories/search"
        );
        assert_eq!(
            route_template("/api/v1/snapshots/a/diff/b"),
            "/api/v1/snapshots/{a}/diff/{b}"
        );
        assert_eq!(route_template("/api/v1/nothing/here"), "unmatched");
        assert_eq!(route_template("/assets/app.js"), "/assets/{file}");
        assert_eq!(route_template("/readyz"), "/readyz");
        assert_eq!(route_template("/a/private/path"), "unmatched");
    }
}
