//! Who did something, for the audit trail: the caller's principal, address and request id. The
//! domain records writes with it; the web layer builds it from a request (`web::access`).

use sqlx::PgPool;

use super::Principal;
use crate::storage::auth as store;

/// Who made a request and from where, for the audit trail.
#[derive(Debug, Clone)]
pub struct Actor {
    pub principal: Principal,
    pub remote_addr: Option<String>,
    pub request_id: Option<String>,
}

impl Actor {
    /// Records a write in the audit trail, on the pool or inside the write's own transaction.
    pub async fn audit<'e>(
        &self,
        ex: impl sqlx::PgExecutor<'e>,
        action: &str,
        target: impl Into<String>,
        detail: serde_json::Value,
    ) -> Result<(), sqlx::Error> {
        store::insert_audit(
            ex,
            &store::AuditEntry {
                actor: self.principal.actor(),
                action: action.into(),
                target: target.into(),
                detail,
                remote_addr: self.remote_addr.clone(),
                request_id: self.request_id.clone(),
            },
        )
        .await
    }
}

impl Actor {
    /// For records of refused attempts: their failure must not change the answer, only be logged.
    pub async fn audit_or_warn(&self, pool: &PgPool, action: &str, target: &str) {
        if let Err(e) = self.audit(pool, action, target, serde_json::json!({})).await {
            tracing::warn!(error = %e, action, "could not record in the audit trail");
        }
    }
}
