//! Live updates from `GET /api/v1/events` (Server-Sent Events), and the indicator that says
//! whether what the page shows is live.

use leptos::prelude::*;

/// The state of the live connection, shown on every page that follows live data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
// Only the browser build reaches the other states.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
pub enum Link {
    Connecting,
    Live,
    /// The stream dropped (server restart, network); the browser retries every 2 s.
    Reconnecting,
}

/// Opens the event stream at `url` while the calling component lives and calls `on_update` with
/// the event's name (`result`, `state`) for each update, and with `reconnected` when the stream
/// comes back after a drop: events sent meanwhile are lost, so the page refetches. Browser only:
/// on the server it stays `Connecting` and opens nothing.
pub fn use_live_events(url: String, on_update: impl Fn(&'static str) + Clone + 'static) -> ReadSignal<Link> {
    let (link, set_link) = signal(Link::Connecting);
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        use wasm_bindgen::JsCast;
        use wasm_bindgen::closure::Closure;
        let Ok(source) = web_sys::EventSource::new(&url) else {
            set_link.set(Link::Reconnecting);
            return;
        };
        let after_drop = on_update.clone();
        let on_open = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            if link.get_untracked() == Link::Reconnecting {
                after_drop("reconnected");
            }
            set_link.set(Link::Live);
        });
        source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| set_link.set(Link::Reconnecting));
        source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        let mut listeners = Vec::new();
        for name in ["result", "state"] {
            let f = on_update.clone();
            let cb = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |_| f(name));
            let _ = source.add_event_listener_with_callback(name, cb.as_ref().unchecked_ref());
            listeners.push(cb);
        }
        // The closures must live as long as the stream; both go when the component does.
        let held = send_wrapper::SendWrapper::new((source, on_open, on_error, listeners));
        on_cleanup(move || {
            held.0.close();
            drop(held);
        });
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = (url, on_update, set_link);
    link
}

/// "● live" or "◌ reconnecting…", with a class per state for colour.
#[component]
pub fn LiveBadge(link: ReadSignal<Link>) -> impl IntoView {
    let text = move || match link.get() {
        Link::Live => "● live",
        Link::Connecting => "◌ connecting…",
        Link::Reconnecting => "◌ reconnecting…",
    };
    let class = move || match link.get() {
        Link::Live => "live live-on",
        _ => "live live-off",
    };
    view! { <span class=class role="status" aria-live="polite">{text}</span> }
}

/// Keeps a page fresh from the live stream at `url` while `follow` is true: bumps `tick` at once
/// for a state change or a reconnect, and at most once per `coalesce_ms` for results (they come by
/// the thousand on a busy system). Returns the link state for a [`LiveBadge`].
pub fn use_live_refetch(url: String, tick: RwSignal<u64>, coalesce_ms: u64, follow: Signal<bool>) -> ReadSignal<Link> {
    let queued = StoredValue::new(false);
    use_live_events(url, move |name| {
        if !follow.get_untracked() {
            // A fixed window does not move; nothing to refetch.
        } else if name != "result" {
            tick.update(|n| *n += 1);
        } else if !queued.get_value() {
            queued.set_value(true);
            set_timeout(
                move || {
                    queued.set_value(false);
                    tick.update(|n| *n += 1);
                },
                std::time::Duration::from_millis(coalesce_ms),
            );
        }
    })
}
