//! `coda mcp --url`: each tool's call sent to a running server's `/api/v1` with the given
//! token and tenant. The server's `/mcp` is itself one `/api/v1` call per tool, so proxying the
//! API (rather than bridging MCP to MCP) gives the same answers with no MCP client in between,
//! and a refused token comes back as the API's plain 401, which is reworded to say which token.

use std::time::Duration;

use http::StatusCode;
use serde_json::json;

use super::dispatch::{Answer, ApiCall};
use crate::state::TENANT_HEADER;

/// How long one call may take, connecting included.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// A running Coda server, reached over HTTP.
pub(crate) struct Remote {
    /// The server's base URL, without a trailing `/`.
    base: String,
    /// The bearer token, if one was given.
    token: Option<String>,
    /// The tenant an admin token works on (`X-Coda-Tenant`).
    tenant: Option<String>,
    agent: ureq::Agent,
}

/// Escapes a path segment (`%XX` for anything outside the URL-safe set), which the server
/// decodes back.
fn escape_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// An answer Coda itself makes up, in the API's error shape.
fn error(status: StatusCode, code: &str, message: String, field: Option<&str>) -> Answer {
    let mut body = json!({"error": {"code": code, "message": message}});
    if let Some(field) = field {
        body["error"]["field"] = field.into();
    }
    Answer {
        status,
        body: bytes::Bytes::from(body.to_string()),
    }
}

impl Remote {
    /// A client for the server at `url` (its base, e.g. `http://127.0.0.1:7700`; a trailing
    /// `/mcp` or `/api/v1` is dropped). The URL must be `http://` or `https://`.
    pub(crate) fn new(
        url: &str,
        token: Option<String>,
        tenant: Option<String>,
    ) -> Result<Remote, String> {
        let mut base = url.trim().trim_end_matches('/');
        for suffix in ["/mcp", "/api/v1"] {
            base = base.strip_suffix(suffix).unwrap_or(base);
        }
        let valid = (base.starts_with("http://") || base.starts_with("https://"))
            && base.parse::<http::Uri>().is_ok_and(|u| u.host().is_some());
        if !valid {
            return Err(format!(
                "invalid `--url` {url:?}: give the server's base URL, like http://127.0.0.1:7700"
            ));
        }
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(CALL_TIMEOUT))
            // Every status is an answer to hand back: the API's errors name the field.
            .http_status_as_error(false)
            .user_agent(concat!("coda-mcp/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Remote {
            base: base.to_owned(),
            token: token.filter(|t| !t.is_empty()),
            tenant,
            agent,
        })
    }

    /// The server's base URL.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// Whether a token was given.
    pub(crate) fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// The URL `call` goes to.
    fn url(&self, call: &ApiCall) -> String {
        let mut url = format!("{}/api/v1", self.base);
        for segment in &call.path {
            url.push('/');
            url.push_str(&escape_segment(segment));
        }
        if !call.query.is_empty() {
            url.push('?');
            // Pairs of strings always encode.
            url.push_str(&serde_urlencoded::to_string(&call.query).unwrap_or_default());
        }
        url
    }

    /// Sends `call` and waits for the answer (blocking). A server that cannot be reached, or
    /// that refuses the token, is an answer too: an error naming what to fix.
    pub(crate) fn call(&self, call: &ApiCall) -> Answer {
        let url = self.url(call);
        let mut request = http::Request::builder()
            .method(call.method.clone())
            .uri(&url)
            .header(http::header::ACCEPT, "application/json");
        if let Some(token) = &self.token {
            request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some(tenant) = &self.tenant {
            request = request.header(TENANT_HEADER, tenant);
        }
        let sent = if call.body.is_empty() {
            request
                .body(())
                .map_err(|e| e.to_string())
                .and_then(|r| self.agent.run(r).map_err(|e| e.to_string()))
        } else {
            request
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(call.body.to_vec())
                .map_err(|e| e.to_string())
                .and_then(|r| self.agent.run(r).map_err(|e| e.to_string()))
        };
        let mut response = match sent {
            Ok(response) => response,
            Err(e) => {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    format!("cannot reach the Coda server at {} (--url): {e}", self.base),
                    Some("url"),
                )
            }
        };
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED {
            let message = if self.token.is_some() {
                format!(
                    "the Coda server at {} refused the token given with --token or CODA_TOKEN",
                    self.base
                )
            } else {
                format!(
                    "the Coda server at {} requires a token: pass --token TOKEN or set CODA_TOKEN",
                    self.base
                )
            };
            return error(status, "unauthorized", message, Some("token"));
        }
        match response.body_mut().read_to_vec() {
            Ok(body) => Answer {
                status,
                body: bytes::Bytes::from(body),
            },
            Err(e) => error(
                StatusCode::BAD_GATEWAY,
                "unavailable",
                format!("the Coda server at {} cut its answer short: {e}", self.base),
                None,
            ),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_base_url_drops_a_trailing_mcp_or_api_path() {
        for url in [
            "http://127.0.0.1:7700",
            "http://127.0.0.1:7700/",
            "http://127.0.0.1:7700/mcp",
            "http://127.0.0.1:7700/api/v1/",
        ] {
            let remote = Remote::new(url, None, None).unwrap();
            assert_eq!(remote.base(), "http://127.0.0.1:7700", "{url}");
        }
        let refused = Remote::new("127.0.0.1:7700", None, None).err().unwrap();
        assert!(refused.contains("--url"), "{refused}");
    }

    #[test]
    fn segments_and_queries_are_escaped() {
        let remote = Remote::new("http://h:1", Some(String::new()), None).unwrap();
        assert!(!remote.has_token(), "an empty token is no token");
        let call = ApiCall {
            method: http::Method::GET,
            path: vec!["sessions".into(), "a b/c".into(), "turns".into()],
            query: vec![("user_id".into(), "a&b".into())],
            body: bytes::Bytes::new(),
        };
        assert_eq!(
            remote.url(&call),
            "http://h:1/api/v1/sessions/a%20b%2Fc/turns?user_id=a%26b"
        );
    }

    #[test]
    fn an_unreachable_server_is_an_answer_naming_the_url() {
        // A loopback port that was just free: the connection is refused at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let remote = Remote::new(&format!("http://127.0.0.1:{port}"), None, None).unwrap();
        let call = ApiCall {
            method: http::Method::GET,
            path: vec!["memories".into()],
            query: Vec::new(),
            body: bytes::Bytes::new(),
        };
        let answer = remote.call(&call);
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
        let json: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
        assert_eq!(json["error"]["field"], "url", "{json}");
    }
}
