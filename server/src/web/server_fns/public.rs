//! Status pages and public updates for the browser: the same operations as the REST API.

use app::api::backend::{BoxFuture, PublicBackend, RequestParts, ServerError};
use app::model::{PublicUpdate, PublicUpdateInput, StatusPage, StatusPageSpec};
use uuid::Uuid;

use super::{PgBackend, shown};
use crate::web::access::actor_of;

impl PublicBackend for PgBackend {
    fn status_pages(&self) -> BoxFuture<'_, Result<Vec<StatusPage>, ServerError>> {
        Box::pin(async move { self.state.status_pages.list().await.map_err(shown) })
    }

    fn save_status_page(
        &self,
        req: RequestParts,
        id: Option<Uuid>,
        spec: StatusPageSpec,
    ) -> BoxFuture<'_, Result<StatusPage, ServerError>> {
        Box::pin(async move { self.state.status_pages.save(&actor_of(&req), id, &spec).await.map_err(shown) })
    }

    fn delete_status_page(&self, req: RequestParts, id: Uuid) -> BoxFuture<'_, Result<(), ServerError>> {
        Box::pin(async move { self.state.status_pages.delete(&actor_of(&req), id).await.map_err(shown) })
    }

    fn public_updates(&self, incident: Uuid) -> BoxFuture<'_, Result<Vec<PublicUpdate>, ServerError>> {
        Box::pin(async move { self.state.status_pages.updates(incident).await.map_err(shown) })
    }

    fn post_public_update(
        &self,
        req: RequestParts,
        incident: Uuid,
        input: PublicUpdateInput,
    ) -> BoxFuture<'_, Result<PublicUpdate, ServerError>> {
        Box::pin(
            async move { self.state.status_pages.post_update(&actor_of(&req), incident, &input).await.map_err(shown) },
        )
    }
}
