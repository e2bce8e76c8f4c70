//! The dashboard: `GET /` and `GET /assets/<name>`, served from files embedded in the binary so
//! the page works offline and without a checkout beside the binary.

use http::header::{self, HeaderValue};
use http::StatusCode;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::Filter;

use crate::api::ApiError;

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

/// Every file the page loads. The unit tests and `state.js`'s package marker stay out.
const ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("../assets/index.html"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/app.js"),
    },
    Asset {
        name: "state.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/state.js"),
    },
    Asset {
        name: "scope.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/scope.js"),
    },
    Asset {
        name: "api.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/api.js"),
    },
    Asset {
        name: "picker.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/picker.js"),
    },
    Asset {
        name: "actions.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/actions.js"),
    },
    Asset {
        name: "dom.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/dom.js"),
    },
    Asset {
        name: "views.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/views.js"),
    },
    Asset {
        name: "diff-view.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/diff-view.js"),
    },
    Asset {
        name: "history-view.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/history-view.js"),
    },
    Asset {
        name: "metrics-view.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/metrics-view.js"),
    },
    Asset {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../assets/style.css"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../assets/favicon.svg"),
    },
];

/// Scripts and styles only from this server, no inline script or style attribute, connections
/// only back to this server (`'self'` covers its `ws:`), never framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

fn asset(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

fn respond(asset: &Asset) -> Response {
    let mut response = Response::new(asset.body.into());
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // The files change with the binary: revalidate rather than run a stale page.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `GET /` (the page) and `GET /assets/<name>` (404 with a JSON error for unknown names).
pub fn routes() -> BoxedFilter<(Response,)> {
    let read = || warp::get().or(warp::head()).unify();
    let index = warp::path::end()
        .and(read())
        .map(|| match asset("index.html") {
            Some(page) => respond(page),
            None => ApiError::not_found("dashboard page").into_response(),
        });
    let assets = warp::path("assets")
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .and(read())
        .map(|name: String| match asset(&name) {
            Some(file) => respond(file),
            None => ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no dashboard asset `{name}`"),
            )
            .into_response(),
        });
    index.or(assets).unify().boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_the_page_references_is_embedded() {
        let page = asset("index.html").map(|a| a.body).unwrap_or_default();
        let page = std::str::from_utf8(page).expect("index.html is UTF-8");
        for reference in page.split("/assets/").skip(1) {
            let name: String = reference
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
                .collect();
            assert!(asset(&name).is_some(), "index.html loads `{name}`");
        }
        // Every module a script imports is embedded too.
        let mut imported = Vec::new();
        for script in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            let text = std::str::from_utf8(script.body).expect("scripts are UTF-8");
            for import in text.split("from \"./").skip(1) {
                let name = import.split('"').next().unwrap_or_default();
                assert!(asset(name).is_some(), "{} imports `{name}`", script.name);
                imported.push(name);
            }
        }
        assert!(imported.contains(&"state.js") && imported.contains(&"scope.js"));
    }

    #[test]
    fn no_inline_script_or_style_attribute_in_the_page() {
        let page = asset("index.html").map(|a| a.body).unwrap_or_default();
        let page = std::str::from_utf8(page).expect("index.html is UTF-8");
        for tag in page.split("<script").skip(1) {
            let open = tag.split('>').next().unwrap_or_default();
            assert!(open.contains("src="), "inline <script{open}>");
        }
        assert!(
            !page.contains(" style="),
            "style attributes are refused by the CSP"
        );
        for (at, _) in page.match_indices(" on") {
            let rest = &page[at + 3..];
            let name: String = rest.chars().take_while(char::is_ascii_lowercase).collect();
            assert!(
                !rest[name.len()..].starts_with('='),
                "inline handler on{name}= is refused by the CSP"
            );
        }
    }
}
