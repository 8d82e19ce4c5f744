//! The middleware every request passes through, outermost first: request id → tracing span →
//! metrics → compression → security headers → timeout → JSON 413 → body limit → panic catcher → the route.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnFailure, TraceLayer};
use tracing::Level;

use crate::web::error::ApiError;
use crate::web::metrics::{self, Metrics};

pub const REQUEST_ID: &str = "x-request-id";

/// The id of the current request: the client's own if it sent a sane one, otherwise a new one.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// The request body limit, for extractors that must say it when a streamed body exceeds it
/// (a body without a length is cut while being read, not refused up front).
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// Why a body could not be read: too long (413 with the limit) or broken (400).
pub fn unreadable_body(rejection: &axum::extract::rejection::BytesRejection, limit: Option<BodyLimit>) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::PayloadTooLarge { limit: limit.map_or(0, |l| l.0) };
    }
    ApiError::BadRequest { field: None, message: "could not read the request body".into() }
}

#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    pub request_timeout: Duration,
    pub body_limit: usize,
}

/// Compression on the fly at a quality that costs milliseconds, not seconds: brotli's default
/// (11) took 12.4 s of CPU for one 8.5 MB debug WASM chunk (and held up every page that loaded
/// it); quality 5 took 0.21 s for a result 17 % larger. Precompressed assets at the highest
/// quality are the better answer for the static files.
const COMPRESSION: tower_http::CompressionLevel = tower_http::CompressionLevel::Precise(5);

/// Wraps the routed application in Triage's middleware stack.
pub fn with_middleware(router: Router, metrics: Arc<Metrics>, limits: HttpLimits) -> Router {
    let body_limit = limits.body_limit;
    // Each `Router::layer` wraps the previous result, so the first call is the innermost layer.
    router
        .layer(CatchPanicLayer::custom(panic_to_500))
        .layer(RequestBodyLimitLayer::new(body_limit))
        .layer(middleware::map_request(move |mut req: Request| async move {
            req.extensions_mut().insert(BodyLimit(body_limit));
            req
        }))
        .layer(middleware::map_response(move |res: Response| async move { json_413(res, body_limit) }))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, limits.request_timeout))
        .layer(middleware::from_fn(crate::web::security::security_headers))
        .layer(CompressionLayer::new().quality(COMPRESSION))
        .layer(middleware::from_fn_with_state(metrics, metrics::track))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let id = req.extensions().get::<RequestId>().map(|r| r.0.as_str()).unwrap_or("-");
                    let route = metrics::route_label(req.extensions().get::<MatchedPath>(), req.uri().path());
                    tracing::info_span!("request", request_id = %id, method = %req.method(), route = %route)
                })
                .on_request(())
                .on_response(|res: &Response, latency: Duration, _span: &tracing::Span| {
                    tracing::info!(status = res.status().as_u16(), latency_ms = latency.as_millis() as u64, "served");
                })
                .on_failure(DefaultOnFailure::new().level(Level::ERROR)),
        )
        .layer(middleware::from_fn(request_id))
}

/// Accepts a client's id when it is short and plain (it ends up in logs), otherwise makes one.
fn accept_or_make_id(header: Option<&HeaderValue>) -> String {
    header
        .and_then(|v| v.to_str().ok())
        .filter(|s| {
            !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=".contains(&b))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string())
}

async fn request_id(mut req: Request, next: Next) -> Response {
    let id = accept_or_make_id(req.headers().get(REQUEST_ID));
    let value = HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("invalid"));
    req.headers_mut().insert(REQUEST_ID, value.clone());
    req.extensions_mut().insert(RequestId(id));
    let mut res = next.run(req).await;
    res.headers_mut().insert(REQUEST_ID, value);
    res
}

/// tower-http answers an oversized body with plain text; the API promises JSON errors.
fn json_413(res: Response, limit: usize) -> Response {
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if res.status() == StatusCode::PAYLOAD_TOO_LARGE && !is_json {
        return ApiError::PayloadTooLarge { limit }.into_response();
    }
    res
}

fn panic_to_500(panic: Box<dyn Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("non-string panic payload");
    ApiError::Internal(format!("handler panicked: {detail}")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_request_ids_are_kept_only_when_plain() {
        let ok = HeaderValue::from_static("req-123.abc");
        assert_eq!(accept_or_make_id(Some(&ok)), "req-123.abc");
        let hostile = HeaderValue::from_static("a b\"c");
        let generated = accept_or_make_id(Some(&hostile));
        assert_ne!(generated, "a b\"c");
        assert_eq!(generated.len(), 32);
        let long = HeaderValue::from_str(&"x".repeat(200)).expect("valid header");
        assert_eq!(accept_or_make_id(Some(&long)).len(), 32);
    }
}
