//! RFC 9110 method semantics and CORS in front of every route: `OPTIONS` answered and `405`
//! given with `Allow` from one table of what each path serves ([`served_methods`], which reads
//! [`crate::api::ROUTES`] for the API), `HEAD` wherever `GET` is, and `Access-Control-*`
//! headers for the origins `server.allowed_origins` lists, so the dashboard can be hosted on
//! another origin.

use std::future::Future;

use http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use warp::reply::Response;

use crate::api::{self, ApiError};

/// The request headers a cross-origin page may send (`Access-Control-Allow-Headers`).
pub const CORS_ALLOW_HEADERS: &str = "authorization, content-type, x-coda-tenant";
/// How long, in seconds, a browser may cache a preflight answer (`Access-Control-Max-Age`).
pub const CORS_MAX_AGE_S: u32 = 600;
/// The methods, in the order `Allow` lists them.
const ORDER: [Method; 7] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
];

/// The methods `path` serves, `HEAD` (wherever `GET` is) and `OPTIONS` included, in a fixed
/// order; `None` for a path no route serves (a 404, whatever the method).
pub fn served_methods(path: &str) -> Option<Vec<Method>> {
    let mut methods: Vec<Method> = if let Some(tail) = path.strip_prefix("/api/v1/") {
        let segments: Vec<&str> = tail.trim_end_matches('/').split('/').collect();
        api::methods_for(&segments)
            .into_iter()
            .filter_map(|m| m.parse().ok())
            .collect()
    } else {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match segments.as_slice() {
            [""] | ["healthz"] | ["readyz"] | ["metrics"] | ["ws"] | ["assets", _] => {
                vec![Method::GET]
            }
            _ => Vec::new(),
        }
    };
    if methods.is_empty() {
        return None;
    }
    if methods.contains(&Method::GET) {
        methods.push(Method::HEAD);
    }
    methods.push(Method::OPTIONS);
    Some(ORDER.into_iter().filter(|m| methods.contains(m)).collect())
}

/// `methods` as an `Allow` (or `Access-Control-Allow-Methods`) value: `GET, HEAD, OPTIONS`.
fn allow_value(methods: &[Method]) -> HeaderValue {
    let list: Vec<&str> = methods.iter().map(Method::as_str).collect();
    HeaderValue::from_str(&list.join(", ")).unwrap_or(HeaderValue::from_static("OPTIONS"))
}

/// The rules every request goes through before (and after) its route.
#[derive(Debug, Clone, Default)]
pub struct HttpRules {
    /// `server.allowed_origins`: the only origins that get CORS headers. Empty means no
    /// cross-origin page may call the API (while `/ws` then accepts any origin, as before).
    allowed_origins: Vec<String>,
}

impl HttpRules {
    /// Rules for these `server.allowed_origins`.
    pub fn new(allowed_origins: Vec<String>) -> Self {
        HttpRules { allowed_origins }
    }

    /// The request's `Origin`, when `server.allowed_origins` lists it.
    fn listed_origin(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let origin = headers.get(header::ORIGIN)?;
        let text = origin.to_str().ok()?;
        self.allowed_origins
            .iter()
            .any(|allowed| allowed == text)
            .then(|| origin.clone())
    }

    /// Answers `request`: `OPTIONS` and methods a path does not serve here, everything else
    /// by `route` (`HEAD` as `GET`; hyper then sends the headers without the body).
    pub async fn serve<B, F, Fut>(&self, mut request: Request<B>, route: F) -> Response
    where
        F: FnOnce(Request<B>) -> Fut,
        Fut: Future<Output = Response>,
    {
        let origin = self.listed_origin(request.headers());
        let methods = served_methods(request.uri().path());
        let method = request.method().clone();
        let mut response = match &methods {
            Some(methods) if method == Method::OPTIONS => options(methods, origin.as_ref()),
            Some(methods) if !methods.contains(&method) => {
                let listed: Vec<&str> = methods.iter().map(Method::as_str).collect();
                ApiError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method_not_allowed",
                    format!(
                        "{method} is not allowed on {}; it allows {}",
                        request.uri().path(),
                        listed.join(", ")
                    ),
                )
                .into_response()
            }
            _ => {
                if method == Method::HEAD {
                    *request.method_mut() = Method::GET;
                }
                route(request).await
            }
        };
        let refused = response.status() == StatusCode::METHOD_NOT_ALLOWED;
        let headers = response.headers_mut();
        if let Some(methods) = &methods {
            if (refused || method == Method::OPTIONS) && !headers.contains_key(header::ALLOW) {
                headers.insert(header::ALLOW, allow_value(methods));
            }
        }
        if let Some(origin) = origin {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        }
        if !self.allowed_origins.is_empty() {
            // The answer depends on Origin: caches must not hand one origin's to another.
            headers.append(header::VARY, HeaderValue::from_static("origin"));
        }
        response
    }
}

/// `204` with `Allow`; for a listed origin, the CORS preflight answer too.
fn options(methods: &[Method], origin: Option<&HeaderValue>) -> Response {
    let mut response = Response::new(Default::default());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    headers.insert(header::ALLOW, allow_value(methods));
    if origin.is_some() {
        headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, allow_value(methods));
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(CORS_ALLOW_HEADERS),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from(CORS_MAX_AGE_S),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(path: &str) -> Option<String> {
        served_methods(path).map(|m| allow_value(&m).to_str().unwrap_or("").to_owned())
    }

    #[test]
    fn allow_lists_what_each_path_serves() {
        assert_eq!(allow("/healthz").as_deref(), Some("GET, HEAD, OPTIONS"));
        assert_eq!(allow("/").as_deref(), Some("GET, HEAD, OPTIONS"));
        assert_eq!(
            allow("/api/v1/turns").as_deref(),
            Some("GET, HEAD, POST, DELETE, OPTIONS")
        );
        assert_eq!(allow("/api/v1/persist").as_deref(), Some("POST, OPTIONS"));
        // A concrete path beats a template, as in OpenAPI: `load` is no snapshot id.
        assert_eq!(
            allow("/api/v1/snapshots/load").as_deref(),
            Some("POST, OPTIONS")
        );
        assert_eq!(
            allow("/api/v1/snapshots/x1").as_deref(),
            Some("GET, HEAD, DELETE, OPTIONS")
        );
        assert_eq!(
            allow("/api/v1/users/alice/export").as_deref(),
            Some("GET, HEAD, OPTIONS")
        );
        assert_eq!(
            allow("/api/v1/export").as_deref(),
            Some("GET, HEAD, OPTIONS")
        );
        assert_eq!(allow("/api/v1/import").as_deref(), Some("POST, OPTIONS"));
        assert_eq!(allow("/api/v1/backup").as_deref(), Some("POST, OPTIONS"));
        assert_eq!(allow("/api/v1/nothing"), None);
        assert_eq!(allow("/nothing"), None);
    }
}
