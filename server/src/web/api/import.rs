//! `POST /api/v1/import/{kuma|gatus|blackbox}`: another tool's configuration as the request body
//! (for blackbox a multipart form with the `prometheus` and `modules` files), applied as the
//! command-line import does. `?dry_run=true` only reports; `?paused=true` creates probes paused.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use serde::Deserialize;

use crate::access::actor::Actor;
use crate::monitor::import::write::{ApplyOptions, ImportReport, apply};
use crate::monitor::import::{ImportError, ImportPlan, blackbox, gatus, kuma};
use crate::web::error::ApiError;
use crate::web::state::AppState;

#[derive(Deserialize)]
pub struct ImportQuery {
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    paused: bool,
}

pub async fn import(
    State(state): State<AppState>,
    actor: Actor,
    Path(source): Path<String>,
    Query(q): Query<ImportQuery>,
    request: Request,
) -> Result<Json<ImportReport>, ApiError> {
    let plan = match source.as_str() {
        "kuma" => kuma::plan("backup.json", &text_body(request).await?).map_err(refused)?,
        "gatus" => gatus::plan("config.yaml", &text_body(request).await?).map_err(refused)?,
        "blackbox" => blackbox_plan(request).await?,
        _ => return Err(ApiError::bad("source", "one of kuma, gatus, blackbox")),
    };
    let report =
        apply(&state.pool, Some(&state.scheduler), plan, ApplyOptions { dry_run: q.dry_run, paused: q.paused }).await?;
    if !q.dry_run {
        let created =
            report.probes.iter().filter(|p| p.outcome == crate::monitor::import::write::ImportOutcome::Created);
        let names: Vec<&str> = created.map(|p| p.name.as_str()).collect();
        actor
            .audit(
                &state.pool,
                "probes.import",
                source.clone(),
                serde_json::json!({ "services": report.services_created, "probes": names, "paused": q.paused }),
            )
            .await?;
    }
    Ok(Json(report))
}

fn refused(e: ImportError) -> ApiError {
    ApiError::bad("file", e.message)
}

async fn text_body(request: Request) -> Result<String, ApiError> {
    // The size is bounded by the server's request body limit (`--body-limit`, 2 MiB by default).
    let bytes = Bytes::from_request(request, &())
        .await
        .map_err(|e| ApiError::bad("file", format!("could not read the body: {e}")))?;
    String::from_utf8(bytes.to_vec()).map_err(|_| ApiError::bad("file", "not UTF-8 text"))
}

/// The two files of a blackbox import, from a multipart form.
async fn blackbox_plan(request: Request) -> Result<ImportPlan, ApiError> {
    let mut form = Multipart::from_request(request, &())
        .await
        .map_err(|e| ApiError::bad("file", format!("a multipart form with `prometheus` and `modules` files: {e}")))?;
    let (mut prometheus, mut modules) = (None, None);
    while let Some(field) = form.next_field().await.map_err(|e| ApiError::bad("file", e.to_string()))? {
        let name = field.name().unwrap_or_default().to_string();
        let file = field.file_name().unwrap_or(&name).to_string();
        let text = field.text().await.map_err(|e| ApiError::bad(name_of(&name), e.to_string()))?;
        match name.as_str() {
            "prometheus" => prometheus = Some((file, text)),
            "modules" => modules = Some((file, text)),
            _ => return Err(ApiError::bad("file", format!("unexpected form field '{name}'"))),
        }
    }
    let (Some((pname, ptext)), Some((mname, mtext))) = (prometheus, modules) else {
        return Err(ApiError::bad("file", "both files are needed: `prometheus` and `modules`"));
    };
    blackbox::plan(&pname, &ptext, &mname, &mtext).map_err(refused)
}

fn name_of(field: &str) -> &'static str {
    match field {
        "prometheus" => "prometheus",
        "modules" => "modules",
        _ => "file",
    }
}
