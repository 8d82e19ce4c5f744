//! The state shared by routes, middleware and server functions: wiring only, no behaviour.

use std::sync::Arc;

use app::model::InstanceInfo;
use axum::extract::FromRef;
use leptos::prelude::LeptosOptions;
use sqlx::PgPool;

use crate::monitor::hub::EventHub;
use crate::monitor::schedule::Scheduler;
use crate::web::metrics::Metrics;
use crate::web::self_check::ReadinessChecker;

/// Shared by every request. axum and Leptos clone the state several times per request, so it is
/// one `Arc`: a clone is one counter increment instead of one per field.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

impl FromRef<AppState> for Arc<ReadinessChecker> {
    fn from_ref(state: &AppState) -> Self {
        state.readiness.clone()
    }
}

impl FromRef<AppState> for Arc<Metrics> {
    fn from_ref(state: &AppState) -> Self {
        state.metrics.clone()
    }
}

pub struct Shared {
    pub leptos_options: LeptosOptions,
    /// The front end's file names (hashed or not).
    pub assets: super::assets::SiteAssets,
    pub pool: PgPool,
    pub readiness: Arc<ReadinessChecker>,
    pub metrics: Arc<Metrics>,
    pub instance: Arc<InstanceInfo>,
    pub scheduler: Scheduler,
    pub hub: EventHub,
    /// Judges results of probes run from several locations.
    pub judge: crate::monitor::quorum::Judge,
    /// This process's membership of the replica set sharing the database.
    pub replicas: crate::monitor::replicas::Replicas,
    /// Messages to and from the other replicas.
    pub bus: crate::storage::bus::Bus,
    /// Where reads that tolerate a second of lag go (a read replica while it keeps up).
    pub reads: crate::storage::reads::Reads,
    pub overview: Arc<crate::monitor::overview::OverviewCache>,
    pub auth: Arc<crate::access::Auth>,
    pub incidents: crate::respond::incidents::Incidents,
    pub guide: crate::respond::guidance::Guide,
    pub postmortems: crate::respond::postmortems::Postmortems,
    pub notifier: crate::respond::notify::Notifier,
    pub maintenance: crate::monitor::maintenance::Maintenance,
    pub status_pages: crate::respond::status_pages::StatusPages,
    pub slos: crate::monitor::slo::Slos,
    /// The declarative probe file (`--config`), re-read on SIGHUP and `POST /api/v1/probes/apply`.
    pub config_file: Option<std::path::PathBuf>,
    /// The built-in demo, when an admin started it from the overview.
    pub demo: Arc<crate::monitor::demo::BuiltInDemo>,
    /// Set when shutdown begins: long-lived responses (live event streams) end on it.
    pub stopping: Arc<tokio::sync::watch::Sender<bool>>,
    /// How long raw results are kept: how late a pushed result may still arrive.
    pub raw_retention: std::time::Duration,
}
