//! The dashboard's files as the server serves them: embedded, with content types and a
//! Content-Security-Policy that allows no inline script.

#![allow(clippy::unwrap_used)]

mod common;

use common::{http, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_and_assets_are_served_with_types_and_a_strict_policy() {
    let server = Server::start("", "").await;
    let addr = server.addr();
    for (path, content_type, needle) in [
        ("/", "text/html", "/assets/app.js"),
        ("/assets/index.html", "text/html", "<title>"),
        ("/assets/app.js", "text/javascript", "from \"./state.js\""),
        (
            "/assets/state.js",
            "text/javascript",
            "export class StreamTracker",
        ),
        ("/assets/style.css", "text/css", ".topbar"),
        ("/assets/favicon.svg", "image/svg+xml", "<svg"),
    ] {
        let r = http(&addr, "GET", path, &[], None).await;
        assert_eq!(r.status, 200, "{path}");
        let ct = r.headers["content-type"].to_str().unwrap();
        assert!(ct.starts_with(content_type), "{path}: {ct}");
        assert!(r.text.contains(needle), "{path} is the real file");
        let csp = r.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(r.headers["x-content-type-options"], "nosniff");
    }
    let page = http(&addr, "GET", "/", &[], None).await;
    assert!(!page.text.contains("<script>"), "no inline script");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_assets_are_json_404s_and_need_no_token() {
    let server = Server::start("", "[server]\ntokens = [\"t\"]").await;
    let addr = server.addr();
    for path in ["/assets/nope.js", "/assets/tests", "/assets/package.json"] {
        let r = http(&addr, "GET", path, &[], None).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.json["error"]["code"], "not_found", "{path}");
    }
    // The page itself is public (it asks for the token); the API behind it is not.
    assert_eq!(http(&addr, "GET", "/", &[], None).await.status, 200);
    assert_eq!(
        http(&addr, "GET", "/api/v1/stats", &[], None).await.status,
        401
    );
}
