//! Application state shared by routes, middleware and server functions.

use std::sync::Arc;

use app::api::backend::{Backend, BackendError, BoxFuture};
use app::model::{InstanceInfo, Overview, ServiceView, SystemStatus, Window};
use axum::extract::FromRef;
use leptos::prelude::LeptosOptions;
use sqlx::PgPool;

use crate::events::EventHub;
use crate::metrics::Metrics;
use crate::readiness::ReadinessChecker;
use crate::scheduler::Scheduler;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub pool: PgPool,
    pub readiness: Arc<ReadinessChecker>,
    pub metrics: Arc<Metrics>,
    pub instance: Arc<InstanceInfo>,
    pub scheduler: Scheduler,
    pub hub: EventHub,
    pub overview: Arc<crate::overview::OverviewCache>,
    /// Set when shutdown begins: long-lived responses (live event streams) end on it.
    pub stopping: Arc<tokio::sync::watch::Sender<bool>>,
}

/// What server functions reach through [`app::api::backend::Backend`].
pub struct PgBackend {
    state: AppState,
}

impl PgBackend {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

impl Backend for PgBackend {
    fn system_status(&self) -> BoxFuture<'_, Result<SystemStatus, BackendError>> {
        Box::pin(async move {
            let readiness = self.state.readiness.check().await;
            Ok(SystemStatus {
                instance: (*self.state.instance).clone(),
                readiness,
                recent_checks: self.state.readiness.history(),
            })
        })
    }

    fn service_view(&self, id: uuid::Uuid, window: Window) -> BoxFuture<'_, Result<Option<ServiceView>, BackendError>> {
        Box::pin(async move {
            crate::overview::service_view(&self.state.pool, id, &window).await.map_err(|e| {
                tracing::error!(error = %e, "service view query failed");
                BackendError("the service could not be loaded; see the server log".into())
            })
        })
    }

    fn overview(&self) -> BoxFuture<'_, Result<Overview, BackendError>> {
        Box::pin(async move {
            let o = self.state.overview.get(&self.state.pool).await.map_err(|e| {
                // The cause may name hosts or queries: logged, not shown.
                tracing::error!(error = %e, "overview query failed");
                BackendError("the overview could not be loaded; see the server log".into())
            })?;
            Ok((*o).clone())
        })
    }
}
