//! The overview's body as HTML (counts by state and tag, one page of tiles, the pager): rendered
//! into the page the server serves, and as `GET /api/v1/overview.html` for the open page's
//! refreshes. The browser swaps it in without decoding anything.

use std::collections::HashMap;

use app::model::{OverviewBody, OverviewQuery};
use axum::extract::{Query, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{Method, header};

use crate::web::error::ApiError;
use crate::web::state::AppState;

/// The body for a view state.
async fn body(state: &AppState, query: &OverviewQuery) -> Result<OverviewBody, ApiError> {
    let overview = state.overview.get(state.reads.pool()).await?;
    Ok(OverviewBody { html: app::overview_body(&overview, query, state.demo.status(None).running) })
}

/// `GET /api/v1/overview.html?q=…&state=…&tag=…&sort=…&page=…`: what the page's filters name;
/// anything unknown falls back to the default view.
pub async fn fragment(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = OverviewQuery::from_query(|k| params.get(k).cloned());
    let body = body(&state, &query).await?;
    Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], body.html)
        .into_response())
}

/// Renders the body before the overview page (`GET /`) is rendered, which cannot wait for the
/// database itself: the page finds it in the request. If it fails, the page comes without it
/// and the browser fetches it (and says so if that fails too).
pub async fn prefetch(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if req.method() == Method::GET && req.uri().path() == "/" {
        let params: HashMap<String, String> = req
            .uri()
            .query()
            .map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let query = OverviewQuery::from_query(|k| params.get(k).cloned());
        match body(&state, &query).await {
            Ok(body) => {
                req.extensions_mut().insert(body);
            }
            Err(e) => tracing::warn!(error = %e, "the overview's body could not be rendered for the page"),
        }
    }
    next.run(req).await
}
