//! The built-in demo: one click on a fresh instance runs the demo target inside Triage, adds the
//! service "demo-shop" with an HTTP, a readiness and a metrics probe, and lets the scenarios be
//! switched from the page, so a newcomer sees charts, an incident and the guidance without
//! setting anything up. Its sockets are allowed by the network policy exactly (nothing else on
//! loopback opens). Removing it removes the service, its probes, results and incidents.

use std::net::SocketAddr;
use std::sync::Mutex;

use app::model::{DemoStatus, IncidentPolicy, ProbeKind, ProbeSpec, ServiceInput};
use sqlx::PgPool;

use crate::demo::{DemoTarget, Scenario};
use crate::error::Error;
use crate::monitor::catalog::{self, Mode};
use crate::monitor::schedule::Scheduler;
use crate::storage::catalog as store;

/// The demo's service; its probes are named after it.
pub const SERVICE: &str = "demo-shop";

/// The demo target while it runs inside this process.
#[derive(Default)]
pub struct BuiltInDemo {
    running: Mutex<Option<DemoTarget>>,
    /// Start and removal one at a time: two clicks must not leave probes pointing at a target
    /// that was dropped (and whose socket the policy no longer allows).
    changing: tokio::sync::Mutex<()>,
}

fn probes(base: &str) -> Vec<ProbeSpec> {
    // Short intervals and confirmations: the first incident opens within seconds of a failure.
    let quick = |name: &str, kind, path: &str| ProbeSpec {
        interval_secs: 5,
        timeout_ms: 2_000,
        failures_to_down: 2,
        successes_to_up: 2,
        incidents: IncidentPolicy { healthy_for_secs: 30, ..IncidentPolicy::default() },
        ..ProbeSpec::new(&format!("{SERVICE}-{name}"), SERVICE, kind, Some(&format!("{base}{path}")))
    };
    vec![
        quick("api", ProbeKind::Http, "/api/products"),
        quick("ready", ProbeKind::Readiness, "/readyz"),
        quick("pool", ProbeKind::Metrics, "/metrics"),
    ]
}

impl BuiltInDemo {
    pub fn status(&self, service_id: Option<uuid::Uuid>) -> DemoStatus {
        let scenario = self.running.lock().ok().and_then(|r| r.as_ref().map(|t| t.scenario().name().to_string()));
        DemoStatus {
            running: scenario.is_some(),
            service_id,
            scenario: scenario.unwrap_or_default(),
            scenarios: Scenario::ALL.iter().map(|s| s.name().to_string()).collect(),
        }
    }

    fn sockets(&self) -> Vec<SocketAddr> {
        self.running.lock().ok().and_then(|r| r.as_ref().map(|t| vec![t.addr])).unwrap_or_default()
    }

    /// Starts the target (if it is not running) and writes its service and probes, pointing at
    /// where it listens now (at start-up this moves existing demo probes to the new port).
    pub async fn start(&self, pool: &PgPool, scheduler: &Scheduler) -> Result<DemoStatus, Error> {
        let _one_at_a_time = self.changing.lock().await;
        if self.sockets().is_empty() {
            let any = SocketAddr::from(([127, 0, 0, 1], 0));
            let target = DemoTarget::start(any, any)
                .await
                .map_err(|e| Error::Internal(format!("the demo target cannot listen on loopback: {e}")))?;
            scheduler.policy().host(&[target.addr]);
            if let Ok(mut running) = self.running.lock() {
                *running = Some(target);
            }
        }
        let Some(addr) = self.sockets().first().copied() else {
            return Err(Error::Internal("the demo target stopped while starting".into()));
        };
        let service = ServiceInput {
            name: SERVICE.into(),
            description: "The built-in demo: a small shop whose scenarios can be switched from the overview.".into(),
            tags: vec!["demo".into()],
            criticality: app::model::Criticality::High,
        };
        // Known by id, not by name: a user's own service called like the demo is left alone.
        let id = match store::demo_service(pool).await? {
            Some(id) => catalog::update_service(pool, id, &service).await?.id,
            None => {
                if store::list_services(pool).await?.iter().any(|s| s.name == SERVICE) {
                    return Err(taken(format!("a service named {SERVICE} exists and is not the demo's")));
                }
                let id = catalog::create_service(pool, &service).await?.id;
                store::set_demo_service(pool, Some(id)).await?;
                id
            }
        };
        for spec in probes(&format!("http://{addr}")) {
            if let Some(p) = store::get_probe_by_name(pool, &spec.name).await?
                && p.service_id != id
            {
                return Err(taken(format!("a probe named {} exists and is not the demo's", spec.name)));
            }
            catalog::write_probe(pool, Some(scheduler), &spec, Mode::Named).await?;
        }
        Ok(self.status(Some(id)))
    }

    /// At start-up: a demo left running before a restart runs again (on a new port).
    pub async fn resume(&self, pool: &PgPool, scheduler: &Scheduler) -> Result<(), Error> {
        if store::demo_service(pool).await?.is_some() {
            self.start(pool, scheduler).await?;
            tracing::info!("the built-in demo runs again");
        }
        Ok(())
    }

    pub fn set_scenario(&self, name: &str) -> Result<DemoStatus, Error> {
        let scenario: Scenario =
            name.parse().map_err(|e: crate::demo::UnknownScenario| Error::invalid("scenario", e.to_string()))?;
        let guard = self.running.lock().map_err(|_| Error::Internal("demo state poisoned".into()))?;
        let target = guard.as_ref().ok_or(Error::NotFound("running demo"))?;
        target.set_scenario(scenario);
        drop(guard);
        Ok(self.status(None))
    }

    /// Removes all of the demo: its incidents, service, probes and results, and the target.
    pub async fn remove(&self, pool: &PgPool, scheduler: &Scheduler) -> Result<(), Error> {
        let _one_at_a_time = self.changing.lock().await;
        if let Some(id) = store::demo_service(pool).await? {
            // Its probes stop first, so no incident opens between deleting the incidents and the
            // service (it would lose its service and stay behind).
            for p in store::list_probes(pool, Some(id)).await? {
                scheduler.remove(p.id);
            }
            store::delete_incidents_only_of(pool, id).await?;
            catalog::delete_service(pool, scheduler, id).await?;
            store::set_demo_service(pool, None).await?;
        }
        let stopped = self.running.lock().map(|mut r| r.take()).unwrap_or(None);
        if let Some(target) = stopped {
            scheduler.policy().unhost(&[target.addr]);
        }
        Ok(())
    }
}

/// The demo cannot take a name a user's own service or probe already has.
fn taken(what: String) -> Error {
    Error::Conflict { field: None, message: format!("{what}: rename it to try the demo") }
}
