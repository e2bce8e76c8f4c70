//! The routes outside the MCP service: `/ws`, `/api/v1`, `/healthz`, `/readyz`, `/metrics`
//! and the dashboard, with JSON errors for whatever matches none.

use std::convert::Infallible;
use std::sync::Arc;

use coda::sink_websocket;
use http::{HeaderMap, StatusCode};
use serde_json::json;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Rejection};

use crate::api::{self, json_response, ApiError};
use crate::readiness::Readiness;
use crate::state::State;

/// Every route, for a server that is open; `readiness` turns `/readyz` 503 once shutdown begins.
pub fn routes(state: Arc<State>, readiness: Arc<Readiness>) -> BoxedFilter<(Response,)> {
    let with_state = {
        let state = Arc::clone(&state);
        warp::any().map(move || Arc::clone(&state))
    };
    let query = || warp::query::raw().or(warp::any().map(String::new)).unify();

    let health = warp::path("healthz")
        .and(warp::path::end())
        .and(with_state.clone())
        .map(|state: Arc<State>| {
            let bus = state.manager.bus();
            let mut health = json!({
                "status": "ok",
                "uptime_s": state.started.elapsed().as_secs_f64(),
                "epoch": bus.epoch(),
                "seq": bus.latest_seq(),
            });
            if let Some(node) = &state.cluster {
                health["cluster"] = json!(node.status());
            }
            json_response(StatusCode::OK, &health)
        });

    let ready = warp::path("readyz")
        .and(warp::path::end())
        .map(move || readiness.response());

    let metrics = warp::path("metrics")
        .and(warp::path::end())
        .and(warp::get())
        .and(with_state.clone())
        .and(warp::header::headers_cloned())
        .map(|state: Arc<State>, headers: HeaderMap| {
            let Some(principal) = state.authenticate(&headers, None) else {
                return ApiError::unauthorized().into_response();
            };
            // Metrics count every tenant's data: with tenants, only admins read them.
            if state.access.auth.has_tenants() && !State::is_admin(&principal) {
                return ApiError::not_found("route").into_response();
            }
            let mut response = Response::new(state.metrics.render().into());
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            response
        });

    let api = warp::path("api")
        .and(warp::path("v1"))
        .and(with_state.clone())
        .and(warp::method())
        .and(warp::path::tail())
        .and(query())
        .and(warp::header::headers_cloned())
        .and(warp::body::stream())
        .then(
            |state: Arc<State>, method, tail: warp::path::Tail, query: String, headers, body| {
                api::handle(
                    state,
                    method,
                    tail.as_str().to_owned(),
                    query,
                    headers,
                    body,
                )
            },
        );

    let dashboard = crate::dashboard::routes();

    let ws = match &state.hub {
        Some(hub) => sink_websocket::route(Arc::clone(hub), Arc::clone(&state.access)),
        None => warp::path("ws")
            .map(|| {
                sink_websocket::error_response(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    "no `websocket` sink is configured",
                )
            })
            .boxed(),
    };

    ws.or(api)
        .unify()
        .or(health)
        .unify()
        .or(ready)
        .unify()
        .or(metrics)
        .unify()
        .or(dashboard)
        .unify()
        .recover(|rejection: Rejection| async move {
            let error = if rejection.is_not_found() {
                ApiError::not_found("route")
            } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
                ApiError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method_not_allowed",
                    "this method is not allowed on this route",
                )
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    format!("{rejection:?}"),
                )
            };
            Ok::<_, Infallible>(error.into_response())
        })
        .unify()
        .boxed()
}
