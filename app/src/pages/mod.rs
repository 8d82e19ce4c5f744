//! One module per page. Pages other than the overview (the landing page) are lazy routes: with
//! `cargo leptos build --split` their code is loaded when first visited, not with the first page.

/// A lazy route rendering a page component: `$route` is what the router gets.
macro_rules! lazy_page {
    ($route:ident, $page:path) => {
        pub struct $route;

        #[leptos_router::lazy_route]
        impl leptos_router::LazyRoute for $route {
            fn data() -> Self {
                $route
            }

            fn view(_this: Self) -> leptos::tachys::view::any_view::AnyView {
                use leptos::prelude::*;
                leptos::tachys::view::any_view::IntoAny::into_any(view! { <$page/> })
            }
        }
    };
}

pub mod admin;
pub mod auth;
pub mod changes;
pub mod config;
pub mod incident;
pub mod incidents;
pub mod not_found;
pub mod notifications;
pub mod overview;
pub mod postmortem;
pub mod postmortems;
pub mod service;
pub mod slo;
pub mod status;
pub mod status_pages;

// Administration, notifications and status pages share one lazy route (one chunk for the
// admin's pages).
lazy_page!(AdminRoute, admin::AdminSection);
// One lazy route for every configuration page: each lazy route multiplies the chunks that
// `--split` makes for code shared between routes (and the requests a page load needs).
lazy_page!(ConfigRoute, config::ConfigSection);
lazy_page!(ServiceRoute, service::Service);
lazy_page!(StatusRoute, status::Status);
lazy_page!(LoginRoute, auth::Login);
lazy_page!(SetupRoute, auth::Setup);
lazy_page!(AccountRoute, auth::Account);
lazy_page!(IncidentsRoute, incidents::Incidents);
lazy_page!(IncidentRoute, incident::IncidentRoomPage);
lazy_page!(PostmortemsRoute, postmortems::Postmortems);
lazy_page!(PostmortemRoute, postmortem::PostmortemPage);
