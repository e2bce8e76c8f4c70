//! `GET /api/v1/openapi.json`: the embedded document, made true for this server's
//! configuration before it is served, so generated clients and validators agree with it.

use serde_json::Value;
use warp::reply::Response;

use crate::state::State;

/// The document as written, for the defaults.
const DOCUMENT: &str = include_str!("openapi.json");
/// Marks a string schema whose `maxLength` is `memory.max_content_bytes`.
const CONTENT_LIMIT: &str = "memory.max_content_bytes";

/// The document for a server with `max_content_bytes`, and tokens unless `open`: an open server
/// asks for no token and never answers 401, so the document says neither.
pub fn document(max_content_bytes: usize, open: bool) -> Value {
    let mut doc: Value = match serde_json::from_str(DOCUMENT) {
        Ok(doc) => doc,
        Err(e) => {
            tracing::error!(error = %e, "the embedded openapi.json is not JSON");
            return Value::Null;
        }
    };
    set_content_limits(&mut doc, max_content_bytes);
    if open {
        if let Some(doc) = doc.as_object_mut() {
            doc.remove("security");
        }
        for item in doc["paths"]
            .as_object_mut()
            .into_iter()
            .flat_map(|p| p.values_mut())
        {
            for op in item
                .as_object_mut()
                .into_iter()
                .flat_map(|i| i.values_mut())
            {
                if let Some(op) = op.as_object_mut() {
                    op.remove("security");
                    if let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut)
                    {
                        responses.remove("401");
                    }
                }
            }
        }
    }
    doc
}

/// Sets `maxLength` on every schema marked with `x-coda-limit: memory.max_content_bytes`.
fn set_content_limits(value: &mut Value, max: usize) {
    match value {
        Value::Object(map) => {
            if map.get("x-coda-limit").and_then(Value::as_str) == Some(CONTENT_LIMIT) {
                map.insert("maxLength".into(), max.into());
            }
            map.values_mut().for_each(|v| set_content_limits(v, max));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| set_content_limits(v, max)),
        _ => {}
    }
}

/// The response to `GET /api/v1/openapi.json` on this server.
pub fn response(state: &State) -> Response {
    let doc = document(
        state.config.memory.max_content_bytes,
        state.access.auth.is_open(),
    );
    super::json_response(http::StatusCode::OK, &doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(value: &Value, out: &mut Vec<u64>) {
        match value {
            Value::Object(map) => {
                if map.contains_key("x-coda-limit") {
                    out.push(map["maxLength"].as_u64().unwrap_or(0));
                }
                map.values().for_each(|v| limits(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| limits(v, out)),
            _ => {}
        }
    }

    #[test]
    fn content_limits_follow_the_configuration() {
        let mut found = Vec::new();
        limits(&document(100, false), &mut found);
        // content of turns (two routes), memories, patches; the query of both searches.
        assert_eq!(found, vec![100; 6], "{found:?}");
    }

    #[test]
    fn an_open_server_documents_no_token() {
        let open = document(10, true);
        let guarded = document(10, false);
        assert!(open.get("security").is_none());
        assert!(guarded["security"].is_array());
        let text = serde_json::to_string(&open).unwrap_or_default();
        assert!(!text.contains("\"401\""));
        assert!(serde_json::to_string(&guarded)
            .unwrap_or_default()
            .contains("\"401\""));
    }
}
