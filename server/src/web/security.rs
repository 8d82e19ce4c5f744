//! Browser-facing security headers on every response, the Content-Security-Policy (pages add
//! their per-response nonce), and the endpoint browsers report violations to.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};

use crate::web::metrics::Metrics;

/// Where browsers send CSP violation reports.
pub const CSP_REPORT_PATH: &str = "/csp-report";

/// The policy: only this site's own scripts (and, on pages, inline scripts carrying the nonce
/// Leptos put on the theme, hydration and streamed-data scripts), WebAssembly compiled from
/// them, styles from our stylesheet, no framing, no plugins, forms only to ourselves. Images
/// are limited to ours and `data:`, so Markdown cannot load a tracking pixel.
pub fn content_security_policy(nonce: Option<&str>) -> String {
    let nonce = nonce.map(|n| format!(" 'nonce-{n}'")).unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self'{nonce} 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'; report-uri {CSP_REPORT_PATH}"
    )
}

/// This response's CSP nonce, made per request before the page renders: Leptos puts it on the
/// page's inline scripts (the router's context hands it over) and the response's policy names it.
#[derive(Clone, Debug)]
pub struct CspNonce(pub String);

fn new_nonce() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No randomness: a policy no inline script can pass (pages then do not hydrate) rather
        // than a guessable nonce.
        return String::new();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Gives each request a nonce and adds the headers every response gets: a page (HTML) gets the
/// policy naming its nonce, anything else the same policy without one.
pub async fn security_headers(mut req: Request, next: Next) -> Response {
    let nonce = new_nonce();
    req.extensions_mut().insert(CspNonce(nonce.clone()));
    let mut res = next.run(req).await;
    let is_page = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/html"));
    let policy = content_security_policy((is_page && !nonce.is_empty()).then_some(nonce.as_str()));
    let headers = res.headers_mut();
    if let Ok(policy) = HeaderValue::from_str(&policy) {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Incident pages name internal hosts and paths: links out must not carry them.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    // For browsers too old for frame-ancestors.
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    res
}

/// Seconds since the epoch of the last violation logged: at most one log line a second, so a
/// page that violates in a loop (or someone posting reports) cannot flood the log.
static LAST_LOGGED: AtomicU64 = AtomicU64::new(0);

/// `POST /csp-report`: counted (`triage_csp_violations_total`) and logged, never stored.
pub async fn csp_report(State(metrics): State<Arc<Metrics>>, body: bytes::Bytes) -> StatusCode {
    metrics.csp_violation();
    let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
    if LAST_LOGGED.swap(now, Ordering::Relaxed) != now {
        let report: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let field =
            |name: &str| report["csp-report"][name].as_str().unwrap_or("-").chars().take(200).collect::<String>();
        tracing::warn!(
            directive = %field("violated-directive"),
            blocked = %field("blocked-uri"),
            page = %field("document-uri"),
            "a browser reported a Content-Security-Policy violation"
        );
    }
    StatusCode::NO_CONTENT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_only_nonced_inline_scripts_and_no_framing() {
        let page = content_security_policy(Some("abc123"));
        assert!(page.contains("script-src 'self' 'nonce-abc123' 'wasm-unsafe-eval';"), "{page}");
        assert!(!page.contains("unsafe-inline"), "{page}");
        assert!(page.contains("frame-ancestors 'none'"));
        assert!(page.contains("object-src 'none'"));
        assert!(content_security_policy(None).contains("script-src 'self' 'wasm-unsafe-eval';"));
    }
}
