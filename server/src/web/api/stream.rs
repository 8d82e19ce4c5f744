//! `GET /api/v1/events`: results and state changes pushed to browsers as Server-Sent Events,
//! optionally filtered to one service (`service_id`) or probe (`probe_id`).
//!
//! Each client reads the hub through its own bounded receiver. A client that falls more than the
//! hub's capacity behind is disconnected rather than allowed to hold anything up; browsers
//! reconnect by themselves (after the `retry` delay sent first) and refetch what they missed.
//! Streams end when the server begins shutting down, so open pages never delay a restart, and
//! when the session or token that opened them stops being valid (checked every
//! `live_recheck`): the browser's reconnect is then refused and the page sends its user to sign in.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use app::model::LiveEvent;
use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use crate::access::Principal;
use crate::access::actor::Actor;
use crate::monitor::hub::ProbeEvent;
use crate::storage::auth as store;
use crate::web::error::ApiError;
use crate::web::state::AppState;

/// How long a browser waits before reconnecting.
const RETRY: Duration = Duration::from_secs(2);

#[derive(Deserialize)]
pub struct LiveQuery {
    service_id: Option<String>,
    probe_id: Option<String>,
}

#[derive(Clone, Copy, Default)]
struct Filter {
    service: Option<Uuid>,
    probe: Option<Uuid>,
}

impl Filter {
    fn to_live(self, event: &ProbeEvent) -> Option<LiveEvent> {
        let (service, probe) = match event {
            ProbeEvent::Result(r) => (r.service_id, r.probe_id),
            ProbeEvent::StateChanged(c) => (c.service_id, c.probe_id),
        };
        if self.service.is_some_and(|s| s != service) || self.probe.is_some_and(|p| p != probe) {
            return None;
        }
        Some(match event {
            ProbeEvent::Result(r) => LiveEvent::Result((**r).clone()),
            ProbeEvent::StateChanged(c) => LiveEvent::State((**c).clone()),
        })
    }
}

fn sse(event: &LiveEvent) -> Event {
    let data = serde_json::to_string(event).unwrap_or_default();
    Event::default().event(event.name()).data(data)
}

/// What an open stream re-checks: a stream must not outlive the session or token that opened it
/// (signed out, password changed, user disabled, token revoked).
#[derive(Clone)]
enum Credential {
    Session(Vec<u8>),
    Token(Uuid),
}

impl Credential {
    fn of(p: &Principal) -> Option<Self> {
        match p {
            Principal::User { session, .. } => Some(Self::Session(session.clone())),
            Principal::Token { id, .. } => Some(Self::Token(*id)),
            _ => None,
        }
    }

    /// A database error keeps the stream: an outage must not disconnect every browser.
    async fn still_valid(&self, pool: &sqlx::PgPool) -> bool {
        match self {
            Self::Session(hash) => store::session(pool, hash).await.map(|s| s.is_some()).unwrap_or(true),
            Self::Token(id) => store::token_active(pool, *id).await.unwrap_or(true),
        }
    }
}

pub async fn events(
    State(state): State<AppState>,
    actor: Actor,
    Query(q): Query<LiveQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let id = |field: &'static str, v: &Option<String>| {
        v.as_deref().map(|s| s.parse::<Uuid>().map_err(|_| ApiError::bad(field, "not a valid id"))).transpose()
    };
    let filter = Arc::new(Filter { service: id("service_id", &q.service_id)?, probe: id("probe_id", &q.probe_id)? });
    Ok(guarded(&state, &actor.principal, state.hub.subscribe(), (), Vec::new(), move |event| {
        filter.to_live(event).map(|live| sse(&live))
    }))
}

/// A live stream: `ready` first (with the reconnect delay), then the `first` events (a snapshot
/// read after subscribing), then what `pick` makes of each hub message. It ends when shutdown
/// begins, when the session or token that opened it ends (after saying `signed_out`, re-checked
/// every `live_recheck`), or when the client falls behind the hub (it reconnects and refetches).
/// `keep` lives exactly as long as the stream.
pub(super) fn guarded<T, K, F>(
    state: &AppState,
    principal: &Principal,
    rx: tokio::sync::broadcast::Receiver<T>,
    keep: K,
    first: Vec<Event>,
    pick: F,
) -> Sse<impl Stream<Item = Result<Event, Infallible>> + use<T, K, F>>
where
    T: Clone + Send + 'static,
    K: Send + 'static,
    F: Fn(&T) -> Option<Event> + Send + 'static,
{
    let stopping = state.stopping.subscribe();
    let hello = Event::default().event("ready").retry(RETRY).data("{}");
    let every = state.auth.settings.live_recheck;
    let recheck = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    // (what to re-check, the pool, when, and whether the stream is over)
    let checked = (Credential::of(principal), state.pool.clone(), recheck, false);
    let updates = futures::stream::unfold(
        (rx, stopping, pick, checked, keep),
        |(mut rx, mut stopping, pick, mut checked, keep)| async move {
            loop {
                if *stopping.borrow() || checked.3 {
                    return None;
                }
                tokio::select! {
                    _ = stopping.changed() => return None,
                    _ = checked.2.tick() => {
                        if let Some(credential) = &checked.0
                            && !credential.still_valid(&checked.1).await
                        {
                            // Said before closing, so the page can send its user to sign in.
                            checked.3 = true;
                            let bye = Event::default().event("signed_out").data("{}");
                            return Some((Ok(bye), (rx, stopping, pick, checked, keep)));
                        }
                    }
                    got = rx.recv() => match got {
                        Ok(message) => {
                            if let Some(event) = pick(&message) {
                                return Some((Ok(event), (rx, stopping, pick, checked, keep)));
                            }
                        }
                        Err(RecvError::Lagged(missed)) => {
                            tracing::info!(missed, "a live client fell behind; disconnecting it (it will reconnect)");
                            return None;
                        }
                        Err(RecvError::Closed) => return None,
                    },
                }
            }
        },
    );
    let opening = std::iter::once(hello).chain(first).map(Ok);
    let stream = futures::StreamExt::chain(futures::stream::iter(opening), updates);
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
