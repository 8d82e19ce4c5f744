//! The notifications page's server functions: the same operations as the REST API (validation,
//! masking, the audit trail), reached through the shared state.

use app::api::backend::{BoxFuture, NotifyBackend, RequestParts, ServerError};
use app::model::{Channel, ChannelSpec, Delivery, MaintenanceSpec, MaintenanceWindow, Rule, RuleSpec};
use uuid::Uuid;

use super::{PgBackend, shown};
use crate::web::access::actor_of;

impl NotifyBackend for PgBackend {
    fn channels(&self) -> BoxFuture<'_, Result<Vec<Channel>, ServerError>> {
        Box::pin(async move { self.state.notifier.channels().await.map_err(shown) })
    }

    fn save_channel(
        &self,
        req: RequestParts,
        id: Option<Uuid>,
        spec: ChannelSpec,
    ) -> BoxFuture<'_, Result<Channel, ServerError>> {
        Box::pin(async move {
            let actor = actor_of(&req);
            let n = &self.state.notifier;
            match id {
                Some(id) => n.update_channel(&actor, id, spec).await,
                None => n.create_channel(&actor, spec).await,
            }
            .map_err(shown)
        })
    }

    fn delete_channel(&self, req: RequestParts, id: Uuid) -> BoxFuture<'_, Result<(), ServerError>> {
        Box::pin(async move { self.state.notifier.delete_channel(&actor_of(&req), id).await.map_err(shown) })
    }

    fn test_channel(&self, req: RequestParts, id: Uuid) -> BoxFuture<'_, Result<Delivery, ServerError>> {
        Box::pin(async move { self.state.notifier.test_channel(&actor_of(&req), id).await.map_err(shown) })
    }

    fn deliveries(&self, id: Uuid) -> BoxFuture<'_, Result<Vec<Delivery>, ServerError>> {
        Box::pin(async move { self.state.notifier.deliveries(id, 100).await.map_err(shown) })
    }

    fn rules(&self) -> BoxFuture<'_, Result<Vec<Rule>, ServerError>> {
        Box::pin(async move { self.state.notifier.rules().await.map_err(shown) })
    }

    fn save_rule(
        &self,
        req: RequestParts,
        id: Option<Uuid>,
        spec: RuleSpec,
    ) -> BoxFuture<'_, Result<Rule, ServerError>> {
        Box::pin(async move {
            let actor = actor_of(&req);
            let n = &self.state.notifier;
            match id {
                Some(id) => n.update_rule(&actor, id, spec).await,
                None => n.create_rule(&actor, spec).await,
            }
            .map_err(shown)
        })
    }

    fn delete_rule(&self, req: RequestParts, id: Uuid) -> BoxFuture<'_, Result<(), ServerError>> {
        Box::pin(async move { self.state.notifier.delete_rule(&actor_of(&req), id).await.map_err(shown) })
    }

    fn maintenance(&self) -> BoxFuture<'_, Result<Vec<MaintenanceWindow>, ServerError>> {
        Box::pin(async move { self.state.maintenance.list().await.map_err(shown) })
    }

    fn save_maintenance(
        &self,
        req: RequestParts,
        id: Option<Uuid>,
        spec: MaintenanceSpec,
    ) -> BoxFuture<'_, Result<MaintenanceWindow, ServerError>> {
        Box::pin(async move {
            let actor = actor_of(&req);
            let m = &self.state.maintenance;
            match id {
                Some(id) => m.update(&actor, id, spec).await,
                None => m.create(&actor, spec).await,
            }
            .map_err(shown)
        })
    }

    fn end_maintenance(&self, req: RequestParts, id: Uuid) -> BoxFuture<'_, Result<MaintenanceWindow, ServerError>> {
        Box::pin(async move { self.state.maintenance.end(&actor_of(&req), id).await.map_err(shown) })
    }

    fn delete_maintenance(&self, req: RequestParts, id: Uuid) -> BoxFuture<'_, Result<(), ServerError>> {
        Box::pin(async move { self.state.maintenance.delete(&actor_of(&req), id).await.map_err(shown) })
    }
}
