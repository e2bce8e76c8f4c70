//! The API's errors: `{"error":{"code":"snake_case","message":"human sentence"}}` (SPEC §6).

use http::StatusCode;
use serde_json::json;
use warp::reply::Response;

/// An error response: status, stable code, sentence, and the offending field for 422s.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable snake_case code.
    pub code: &'static str,
    /// A sentence for people.
    pub message: String,
    /// The field a validation failure concerns.
    pub field: Option<String>,
}

impl ApiError {
    /// An error without a field.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    /// A 422 naming `field`.
    pub fn invalid(field: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        let field = field.into();
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "invalid_field",
            message: format!("invalid `{field}`: {reason}"),
            field: Some(field),
        }
    }

    /// 404 for an unknown route or id.
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// 401.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid bearer token is required (Authorization: Bearer TOKEN)",
        )
    }

    /// 501 for routes another part of Coda will provide.
    pub fn not_implemented(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_IMPLEMENTED,
            "not_implemented",
            format!("{what} is not implemented yet"),
        )
    }

    /// 429 with `Retry-After`: the tenant's `rate_per_s` bucket is empty for `wait` seconds.
    pub fn rate_limited(wait: u64) -> Response {
        let mut response = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("over this tenant's rate_per_s; retry in {wait} s"),
        )
        .into_response();
        response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, http::HeaderValue::from(wait));
        response
    }

    /// The response.
    pub fn into_response(self) -> Response {
        let mut body = json!({"error": {"code": self.code, "message": self.message}});
        if let Some(field) = self.field {
            body["error"]["field"] = field.into();
        }
        let mut response = crate::api::json_response(self.status, &body);
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

impl From<coda::Error> for ApiError {
    fn from(error: coda::Error) -> Self {
        use coda::Error;
        let status = match &error {
            Error::Invalid { field, reason } => return ApiError::invalid(field.clone(), reason),
            Error::NotFound { .. } => StatusCode::NOT_FOUND,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::QuotaExceeded { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::InvalidConfig { .. }
            | Error::UnknownPlugin { .. }
            | Error::DuplicatePlugin { .. }
            | Error::Corrupt { .. }
            | Error::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!(error = %error, "request failed");
        }
        ApiError::new(status, error.code(), error.to_string())
    }
}

/// Maps a JSON body error: syntax is 400, a wrong or missing field 422 naming it.
pub fn from_json(error: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = error.path().to_string();
    let inner = error.into_inner();
    if !inner.is_data() {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_json",
            format!("the body is not valid JSON: {inner}"),
        );
    }
    let message = inner.to_string();
    // serde reports missing and unknown fields at the parent's path; name the field itself.
    let quoted = message
        .split('`')
        .nth(1)
        .filter(|_| message.starts_with("missing field") || message.starts_with("unknown field"));
    let field = match (path.as_str(), quoted) {
        (".", Some(name)) => name.to_owned(),
        // Some unknown-field errors already end their path with the field itself.
        (parent, Some(name)) if parent == name || parent.ends_with(&format!(".{name}")) => {
            parent.to_owned()
        }
        (parent, Some(name)) => format!("{parent}.{name}"),
        (parent, None) => parent.to_owned(),
    };
    let reason = message
        .split(" at line ")
        .next()
        .unwrap_or(&message)
        .to_owned();
    ApiError::invalid(field, reason)
}
