//! Triage's UI: the Leptos app (rendered on the server, hydrated in the browser), the types
//! shared with the server, server functions and chart drawing.

#![recursion_limit = "256"]

pub mod api;
pub mod charts;
mod components;
/// Markdown from people to sanitised HTML; rendered on the server only (the browser receives HTML).
#[cfg(feature = "ssr")]
pub mod markdown;
mod markup;
pub mod model;
mod pages;

/// The overview's body as HTML, which the server renders into the page and for its refreshes.
#[cfg(feature = "ssr")]
pub use components::tiles::overview_body;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Title, provide_meta_context};
use leptos_router::components::{A, Route, Router, Routes};
use leptos_router::{Lazy, ParamSegment, SsrMode, StaticSegment};

use components::theme::ThemeToggle;
use model::Role;

/// Applies the stored theme before first paint, so a dark-theme user never sees a white flash.
const THEME_BOOT: &str = "try{var t=localStorage.getItem('triage-theme');if(t==='dark'||t==='light')document.documentElement.dataset.theme=t}catch(e){}";

/// The name of the meta tag carrying the signed-in user to the browser.
const USER_META: &str = "triage-user";

/// Who the page is for: from the server's context while rendering, from the meta tag in the browser.
fn current_user() -> Option<model::Me> {
    #[cfg(feature = "ssr")]
    {
        use_context::<model::CurrentUser>().and_then(|c| c.0)
    }
    #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
    {
        // Attributes rather than JSON: decoding JSON here would keep serde_json's decoder in the
        // first-load bundle for this alone.
        let meta = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.query_selector(&format!("meta[name=\"{USER_META}\"]")).ok().flatten())?;
        Some(model::Me {
            id: meta.get_attribute("content")?.parse().ok()?,
            email: meta.get_attribute("data-email")?,
            display_name: meta.get_attribute("data-name").unwrap_or_default(),
            role: model::Role::parse(&meta.get_attribute("data-role")?)?,
        })
    }
    #[cfg(not(any(feature = "ssr", feature = "hydrate")))]
    {
        None
    }
}

/// The name of the meta tag carrying `--trace-url` to the browser.
const TRACE_META: &str = "triage-trace-url";

/// The trace link template: from the server's context while rendering, from the meta tag in the
/// browser.
fn trace_url() -> model::TraceUrl {
    #[cfg(feature = "ssr")]
    {
        use_context::<model::TraceUrl>().unwrap_or_default()
    }
    #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
    {
        let content = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.query_selector(&format!("meta[name=\"{TRACE_META}\"]")).ok().flatten())
            .and_then(|m| m.get_attribute("content"));
        model::TraceUrl(content.filter(|c| !c.is_empty()))
    }
    #[cfg(not(any(feature = "ssr", feature = "hydrate")))]
    {
        model::TraceUrl(None)
    }
}

pub fn shell(options: LeptosOptions) -> impl IntoView {
    let user = current_user();
    let (user_id, email, name, role) = match &user {
        Some(me) => (me.id.to_string(), me.email.clone(), me.display_name.clone(), me.role.as_str()),
        None => Default::default(),
    };
    let trace = trace_url().0.unwrap_or_default();
    // The server names the stylesheet (its name carries a hash in hashed builds).
    let stylesheet = use_context::<model::StylesheetHref>().map_or_else(|| "/pkg/triage.css".to_string(), |s| s.0);
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <link id="leptos" rel="stylesheet" href=stylesheet/>
                <link rel="icon" href="/favicon.ico"/>
                <meta name=USER_META content=user_id data-email=email data-name=name data-role=role/>
                <meta name=TRACE_META content=trace/>
                <script nonce=leptos::nonce::use_nonce()>{THEME_BOOT}</script>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // Who is signed in, known before the first render on both sides; pages use it to hide what
    // the role may not do. The server checks anyway.
    let me = current_user();
    provide_context(model::CurrentUser(me.clone()));
    provide_context(trace_url());
    let is_admin = me.as_ref().is_some_and(|m| m.may(Role::Admin));
    view! {
        <Title formatter=|page: String| if page.is_empty() { "Triage".to_string() } else { format!("{page} · Triage") }/>
        <Router>
            <header class="topbar">
                <A href="/" attr:class="brand">"Triage"</A>
                <nav aria-label="Main">
                    <A href="/" exact=true>"Overview"</A>
                    <A href="/incidents">"Incidents"</A>
                    <A href="/postmortems">"Postmortems"</A>
                    <A href="/status">"Status"</A>
                    // Links are built inside the Router (they resolve against it).
                    {is_admin.then(|| view! { <A href="/config">"Configure"</A> <A href="/notifications">"Notify"</A> <A href="/status-pages">"Status pages"</A> <A href="/admin">"Admin"</A> })}
                </nav>
                {me.map(|m| view! {
                    <span class="who" title=m.role.meaning()>
                        <A href="/account">{m.email.clone()}</A>
                        " " <span class="role-badge" data-role=m.role.as_str()>{m.role.as_str()}</span>
                    </span>
                    <form method="post" action="/api/v1/auth/logout" class="inline">
                        <button class="btn" type="submit">"Sign out"</button>
                    </form>
                })}
                <ThemeToggle/>
            </header>
            <main id="main">
                <Routes fallback=pages::not_found::NotFound>
                    <Route path=StaticSegment("") view=pages::overview::Overview ssr=SsrMode::Async/>
                    <Route path=StaticSegment("status") view={Lazy::<pages::StatusRoute>::new()}/>
                    <Route path=(StaticSegment("services"), ParamSegment("id")) view={Lazy::<pages::ServiceRoute>::new()}/>
                    <Route path=StaticSegment("incidents") view={Lazy::<pages::IncidentsRoute>::new()}/>
                    <Route path=(StaticSegment("incidents"), ParamSegment("id")) view={Lazy::<pages::IncidentRoute>::new()}/>
                    <Route path=StaticSegment("postmortems") view={Lazy::<pages::PostmortemsRoute>::new()}/>
                    <Route path=(StaticSegment("postmortems"), ParamSegment("id")) view={Lazy::<pages::PostmortemRoute>::new()}/>
                    <Route path=StaticSegment("login") view={Lazy::<pages::LoginRoute>::new()}/>
                    <Route path=StaticSegment("setup") view={Lazy::<pages::SetupRoute>::new()}/>
                    <Route path=StaticSegment("account") view={Lazy::<pages::AccountRoute>::new()}/>
                    <Route path=StaticSegment("admin") view={Lazy::<pages::AdminRoute>::new()}/>
                    <Route path=StaticSegment("notifications") view={Lazy::<pages::AdminRoute>::new()}/>
                    <Route path=StaticSegment("status-pages") view={Lazy::<pages::AdminRoute>::new()}/>
                    <Route path=StaticSegment("config") view={Lazy::<pages::ConfigRoute>::new()}/>
                    <Route path=(StaticSegment("config"), StaticSegment("import")) view={Lazy::<pages::ConfigRoute>::new()}/>
                    <Route path=(StaticSegment("config"), StaticSegment("services"), ParamSegment("id")) view={Lazy::<pages::ConfigRoute>::new()}/>
                    <Route path=(StaticSegment("config"), StaticSegment("probes"), ParamSegment("id")) view={Lazy::<pages::ConfigRoute>::new()}/>
                </Routes>
            </main>
        </Router>
    }
}

/// The WASM entry point: attaches the app to the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    // Panic messages in the console in development builds; release builds leave out the
    // formatting machinery (a panic there still stops the app and shows in the console).
    #[cfg(debug_assertions)]
    console_error_panic_hook::set_once();
    // What `leptos::mount::hydrate_lazy` does, plus the marker once it is done: a lazy route
    // loaded directly fetches its code before hydrating, and only then is the page interactive.
    let _ = any_spawner::Executor::init_wasm_bindgen();
    let Some(body) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.body()) else { return };
    leptos::task::spawn_local(async move {
        leptos::mount::hydrate_from_async(body.clone(), App).await.forget();
        // A marker for tests and for humans in devtools: the page is interactive from here on.
        let _ = body.set_attribute("data-hydrated", "true");
    });
}
