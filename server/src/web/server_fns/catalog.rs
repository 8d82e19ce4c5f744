//! The configuration pages' server functions: services and probes written through the same
//! catalog as the REST API (validation, scheduling, the audit trail), with secrets masked on the
//! way out and restored from the stored probe on the way in.

use app::api::backend::{BoxFuture, CatalogBackend, RequestParts, ServerError};
use app::model::{
    AllowChange, AllowEntry, BulkAction, BulkOutcome, Catalog, DemoCommand, DemoStatus, ImportSummary,
    JsonPathAssertion, JsonPathTest, ProbeSpec, ProbeTrial, SavedProbe, Selection, Service, ServiceInput,
};
use uuid::Uuid;

use super::{PgBackend, shown};
use crate::error::Error;
use crate::monitor::catalog::{self, Mode};
use crate::monitor::import::write::{ApplyOptions, ImportOutcome};
use crate::monitor::import::{ImportPlan, blackbox, gatus, kuma};
use crate::monitor::{allowlist, probe_file, trial};
use crate::storage::catalog as store;
use crate::web::access::actor_of;
use crate::web::error::ApiError;

/// The largest sample body the JSONPath tester takes.
const MAX_SAMPLE: usize = 1024 * 1024;

impl CatalogBackend for PgBackend {
    fn slo(&self, service: Uuid) -> BoxFuture<'_, Result<Option<app::model::SloStatus>, ServerError>> {
        Box::pin(async move {
            match self.state.slos.status(service).await {
                Ok(s) => Ok(Some(s)),
                Err(Error::NotFound(_)) => Ok(None),
                Err(e) => Err(shown(e)),
            }
        })
    }

    fn save_slo(
        &self,
        req: RequestParts,
        service: Uuid,
        spec: Option<app::model::SloSpec>,
    ) -> BoxFuture<'_, Result<Option<app::model::SloStatus>, ServerError>> {
        Box::pin(async move {
            let actor = actor_of(&req);
            let saved = match spec {
                Some(spec) => self.state.slos.put(&actor, service, &spec).await.map(Some).map_err(shown),
                None => self.state.slos.delete(&actor, service).await.map(|()| None).map_err(shown),
            };
            self.state.forget(crate::storage::bus::Note::Overview);
            saved
        })
    }

    fn catalog(&self, scope: app::model::CatalogScope) -> BoxFuture<'_, Result<Catalog, ServerError>> {
        use app::model::CatalogScope;
        Box::pin(async move {
            let pool = &self.state.pool;
            let services = store::list_services(pool).await.map_err(shown)?;
            let probes = match scope {
                CatalogScope::All => store::list_probes(pool, None).await.map_err(shown)?,
                CatalogScope::Services => Vec::new(),
                CatalogScope::Probe(id) => store::get_probe(pool, id).await.map_err(shown)?.into_iter().collect(),
            };
            Ok(Catalog { services, probes: probes.into_iter().map(|p| p.masked()).collect() })
        })
    }

    fn save_service(
        &self,
        req: RequestParts,
        id: Option<Uuid>,
        input: ServiceInput,
    ) -> BoxFuture<'_, Result<Service, ServerError>> {
        Box::pin(async move {
            let pool = &self.state.pool;
            let (service, action) = match id {
                Some(id) => (catalog::update_service(pool, id, &input).await.map_err(shown)?, "service.update"),
                None => (catalog::create_service(pool, &input).await.map_err(shown)?, "service.create"),
            };
            let detail = serde_json::json!({ "name": service.name });
            actor_of(&req).audit(pool, action, service.id.to_string(), detail).await.map_err(shown)?;
            Ok(service)
        })
    }

    fn delete_service(&self, req: RequestParts, id: Uuid) -> BoxFuture<'_, Result<(), ServerError>> {
        Box::pin(async move {
            let pool = &self.state.pool;
            if store::list_probes(pool, Some(id)).await.map_err(shown)?.iter().any(|p| p.file_managed) {
                return Err(shown(Error::Conflict {
                    field: None,
                    message: "this service has probes managed by the configuration file; remove them there".into(),
                }));
            }
            catalog::delete_service(pool, &self.state.scheduler, id).await.map_err(shown)?;
            actor_of(&req).audit(pool, "service.delete", id.to_string(), serde_json::json!({})).await.map_err(shown)
        })
    }

    fn save_probe(
        &self,
        req: RequestParts,
        id: Option<Uuid>,
        from: Option<Uuid>,
        mut spec: ProbeSpec,
    ) -> BoxFuture<'_, Result<SavedProbe, ServerError>> {
        Box::pin(async move {
            let pool = &self.state.pool;
            // An edit keeps its own secrets (the catalog restores them); only a clone borrows
            // another probe's, and never into a different probe that exists.
            match (id, from) {
                (Some(id), Some(from)) if id != from => {
                    return Err(shown(ApiError::bad("from", "an edited probe keeps only its own hidden values")));
                }
                (None, Some(_)) => catalog::unmask(pool, &mut spec, from).await.map_err(shown)?,
                _ => {}
            }
            let (mode, action) = match id {
                Some(id) => (Mode::Replace(id), "probe.update"),
                None => {
                    spec.id = None;
                    (Mode::Create, "probe.create")
                }
            };
            let written = catalog::write_probe(pool, Some(&self.state.scheduler), &spec, mode).await.map_err(shown)?;
            let detail = serde_json::json!({ "name": spec.name });
            actor_of(&req).audit(pool, action, written.probe.id.to_string(), detail).await.map_err(shown)?;
            let refused = trial::refusal(&spec, self.state.scheduler.policy()).await;
            Ok(SavedProbe { probe: written.probe.masked(), push_token: written.push_token, refused })
        })
    }

    fn run_probe(&self, from: Option<Uuid>, mut spec: ProbeSpec) -> BoxFuture<'_, Result<ProbeTrial, ServerError>> {
        Box::pin(async move {
            catalog::unmask(&self.state.pool, &mut spec, from).await.map_err(shown)?;
            trial::run_once(&spec, self.state.scheduler.policy()).await.map_err(shown)
        })
    }

    fn test_json_path(
        &self,
        assertion: JsonPathAssertion,
        body: String,
    ) -> BoxFuture<'_, Result<JsonPathTest, ServerError>> {
        Box::pin(async move {
            if body.len() > MAX_SAMPLE {
                return Err(shown(ApiError::bad("sample", "at most 1 MiB")));
            }
            crate::monitor::check::assertions::try_json_path(&assertion, &body)
                .map_err(|e| shown(ApiError::bad("assert.json_path", e.0)))
        })
    }

    fn bulk(
        &self,
        req: RequestParts,
        selection: Selection,
        action: BulkAction,
    ) -> BoxFuture<'_, Result<BulkOutcome, ServerError>> {
        Box::pin(async move {
            let pool = &self.state.pool;
            let run = catalog::bulk(pool, &self.state.scheduler, &selection, action).await.map_err(shown)?;
            // Recorded even when it stopped part-way: the probes it did change stay changed.
            let detail = serde_json::json!({
                "selection": selection,
                "changed": run.changed_names,
                "skipped": run.outcome.skipped,
                "stopped_at": run.stopped.as_ref().map(|(name, e)| format!("{name}: {e}")),
            });
            let audited = actor_of(&req).audit(pool, &format!("probes.{}", action.as_str()), "bulk", detail).await;
            if let Some((_, e)) = run.stopped {
                return Err(shown(e));
            }
            audited.map_err(shown)?;
            Ok(run.outcome)
        })
    }

    fn export_file(&self) -> BoxFuture<'_, Result<String, ServerError>> {
        Box::pin(async move {
            let mut file = crate::respond::declared::export(&self.state.pool).await.map_err(shown)?;
            for p in &mut file.probes {
                *p = p.masked();
            }
            probe_file::to_toml(&file).map_err(|e| shown(Error::Internal(e.to_string())))
        })
    }

    fn demo(&self, req: RequestParts, command: DemoCommand) -> BoxFuture<'_, Result<DemoStatus, ServerError>> {
        Box::pin(async move {
            let (pool, scheduler, demo) = (&self.state.pool, &self.state.scheduler, &self.state.demo);
            let service = || store::demo_service(pool);
            let (status, action) = match &command {
                DemoCommand::Show => return Ok(demo.status(service().await.map_err(shown)?)),
                DemoCommand::Start => (demo.start(pool, scheduler).await.map_err(shown)?, "demo.start"),
                DemoCommand::Scenario(name) => {
                    let mut status = demo.set_scenario(name).map_err(shown)?;
                    status.service_id = service().await.map_err(shown)?;
                    (status, "demo.scenario")
                }
                DemoCommand::Remove => {
                    demo.remove(pool, scheduler).await.map_err(shown)?;
                    (demo.status(None), "demo.remove")
                }
            };
            let detail = serde_json::json!({ "scenario": status.scenario });
            actor_of(&req).audit(pool, action, crate::monitor::demo::SERVICE, detail).await.map_err(shown)?;
            Ok(status)
        })
    }

    fn allowlist(&self, req: RequestParts, change: AllowChange) -> BoxFuture<'_, Result<Vec<AllowEntry>, ServerError>> {
        Box::pin(async move {
            let (pool, policy) = (&self.state.pool, self.state.scheduler.policy());
            let actor = actor_of(&req);
            let changing = !matches!(change, AllowChange::List);
            match change {
                AllowChange::List => {}
                AllowChange::Add { cidr, note } => {
                    let by = actor.principal.actor();
                    let added = allowlist::add(pool, policy, &cidr, &note, &by).await.map_err(shown)?;
                    let detail = serde_json::json!({ "note": note });
                    actor.audit(pool, "network.allow", added, detail).await.map_err(shown)?;
                }
                AllowChange::Remove { cidr } => {
                    allowlist::remove(pool, policy, &cidr).await.map_err(shown)?;
                    actor.audit(pool, "network.disallow", cidr, serde_json::json!({})).await.map_err(shown)?;
                }
            }
            if changing {
                // The other replicas' probes obey the same list.
                self.state.bus.note(&crate::storage::bus::Note::Allowlist);
            }
            allowlist::list(pool, policy).await.map_err(shown)
        })
    }

    fn import(
        &self,
        req: RequestParts,
        source: String,
        files: Vec<String>,
        dry_run: bool,
    ) -> BoxFuture<'_, Result<ImportSummary, ServerError>> {
        Box::pin(async move {
            let pool = &self.state.pool;
            let file = |i: usize| files.get(i).map(String::as_str).unwrap_or_default();
            let refused = |e: crate::monitor::import::ImportError| shown(ApiError::bad("file", e.message));
            let plan: ImportPlan = match source.as_str() {
                "triage" => {
                    let parsed = probe_file::parse(file(0)).map_err(|e| shown(ApiError::bad("file", e.to_string())))?;
                    ImportPlan { services: parsed.services, probes: parsed.probes, unmapped: Vec::new() }
                }
                "kuma" => kuma::plan("backup.json", file(0)).map_err(refused)?,
                "gatus" => gatus::plan("config.yaml", file(0)).map_err(refused)?,
                "blackbox" => blackbox::plan("prometheus.yml", file(0), "blackbox.yml", file(1)).map_err(refused)?,
                _ => return Err(shown(ApiError::bad("source", "one of triage, kuma, gatus, blackbox"))),
            };
            if plan.probes.iter().any(ProbeSpec::holds_mask) {
                return Err(shown(ApiError::bad(
                    "file",
                    "the file holds masked secrets (an export): type the real values in before importing",
                )));
            }
            let opts = ApplyOptions { dry_run, paused: false };
            let report = crate::monitor::import::write::apply(pool, Some(&self.state.scheduler), plan, opts)
                .await
                .map_err(shown)?;
            let summary = ImportSummary {
                dry_run,
                services: report.services_created.clone(),
                probes: report
                    .probes
                    .iter()
                    .filter(|p| p.outcome != ImportOutcome::Exists)
                    .map(|p| p.name.clone())
                    .collect(),
                existing: report
                    .probes
                    .iter()
                    .filter(|p| p.outcome == ImportOutcome::Exists)
                    .map(|p| p.name.clone())
                    .collect(),
                unmapped: report.unmapped.iter().map(|u| format!("{}: {}", u.place, u.what)).collect(),
            };
            if !dry_run {
                let detail = serde_json::json!({ "services": summary.services, "probes": summary.probes });
                actor_of(&req).audit(pool, "probes.import", source, detail).await.map_err(shown)?;
            }
            Ok(summary)
        })
    }
}
