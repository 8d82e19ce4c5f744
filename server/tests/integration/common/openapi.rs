//! Every JSON answer of the REST API that an integration test receives is checked against the
//! OpenAPI document the server publishes: a layer in front of the test app validates the body
//! against the operation's schema for that status, and answers 500 with the reason when it does
//! not conform (so the test that made the request fails there, naming the field).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

const DOC_URI: &str = "https://triage.invalid/openapi.json";

static DOC: LazyLock<Value> = LazyLock::new(|| server::web::api::openapi::document(&server::web::api::routes().docs()));

static REGISTRY: LazyLock<jsonschema::Registry<'static>> = LazyLock::new(|| {
    jsonschema::Registry::new().add(DOC_URI, DOC.clone()).expect("document URI").prepare().expect("registry")
});

static VALIDATORS: LazyLock<Mutex<HashMap<String, Arc<jsonschema::Validator>>>> = LazyLock::new(Default::default);

/// How many answers the layer has checked (all tests of this binary together).
pub static CHECKED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The document the server serves (built the same way).
pub fn document() -> &'static Value {
    &DOC
}

/// The path template of the document that `path` falls under; literal segments win over
/// parameters.
pub fn template_of(path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split('/').collect();
    let paths = DOC["paths"].as_object()?;
    paths
        .keys()
        .filter(|t| {
            let ts: Vec<&str> = t.split('/').collect();
            ts.len() == segments.len()
                && ts.iter().zip(&segments).all(|(t, s)| (t.starts_with('{') && !s.is_empty()) || t == s)
        })
        .min_by_key(|t| t.matches('{').count())
        .cloned()
}

/// Checks one JSON answer; `Err` says where it departs from the document.
pub fn check(method: &str, path: &str, status: u16, body: &[u8]) -> Result<(), String> {
    let Some(template) = template_of(path) else { return Ok(()) };
    let responses = &DOC["paths"][&template][method]["responses"];
    if responses.is_null() {
        // No such operation: the only right answer is the router's own 404 (no route).
        if status == 404 {
            return Ok(());
        }
        return Err(format!("{method} {template} is not in the OpenAPI document"));
    }
    let key = if responses.get(status.to_string()).is_some() { status.to_string() } else { "default".to_string() };
    let pointer = format!(
        "/paths/{}/{method}/responses/{key}/content/application~1json/schema",
        template.replace('~', "~0").replace('/', "~1")
    );
    if DOC.pointer(&pointer).is_none() {
        return Err(format!("{method} {template} {status}: the document names no JSON body for this answer"));
    }
    let validator = {
        let mut cache = VALIDATORS.lock().expect("validators");
        match cache.get(&pointer) {
            Some(v) => Arc::clone(v),
            None => {
                let v = jsonschema::options()
                    .with_registry(&REGISTRY)
                    .should_validate_formats(true)
                    .build(&serde_json::json!({
                        "$ref": format!("{DOC_URI}#{}", pointer.replace('{', "%7B").replace('}', "%7D"))
                    }))
                    .map_err(|e| format!("{method} {template} {status}: schema does not compile: {e}"))?;
                let v = Arc::new(v);
                cache.insert(pointer.clone(), Arc::clone(&v));
                v
            }
        }
    };
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("{method} {path}: not JSON: {e}"))?;
    let errors: Vec<String> =
        validator.iter_errors(&value).map(|e| format!("{e} (at {})", e.instance_path())).take(5).collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!("{method} {template} {status} does not match the OpenAPI document: {}", errors.join("; ")))
    }
}

/// The layer: JSON answers under `/api/v1/` must conform.
pub async fn conforms(req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_lowercase();
    let path = req.uri().path().to_string();
    let res = next.run(req).await;
    let json = res
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    if !path.starts_with("/api/v1/") || !json {
        return res;
    }
    let (parts, body) = res.into_parts();
    let bytes = axum::body::to_bytes(body, 64 << 20).await.expect("answer body");
    CHECKED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if let Err(why) = check(&method, &path, parts.status.as_u16(), &bytes) {
        eprintln!("OpenAPI: {why}");
        return (http::StatusCode::INTERNAL_SERVER_ERROR, format!("OpenAPI: {why}")).into_response();
    }
    Response::from_parts(parts, Body::from(bytes))
}
