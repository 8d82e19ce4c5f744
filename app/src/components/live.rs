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
    use_live_stream(move || url.clone(), &["result", "state"], move |name, _| on_update(name))
}

/// Like [`use_live_events`] for the events named in `names`, passing each event's data (JSON).
pub fn use_live_stream(
    url: impl Fn() -> String + 'static,
    names: &'static [&'static str],
    on_event: impl Fn(&'static str, String) + Clone + 'static,
) -> ReadSignal<Link> {
    let (link, set_link) = signal(Link::Connecting);
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        use wasm_bindgen::JsCast;
        use wasm_bindgen::closure::Closure;
        let Ok(source) = web_sys::EventSource::new(&url()) else {
            set_link.set(Link::Reconnecting);
            return;
        };
        let after_drop = on_event.clone();
        let on_open = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            if link.get_untracked() == Link::Reconnecting {
                after_drop("reconnected", String::new());
            }
            set_link.set(Link::Live);
        });
        source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| set_link.set(Link::Reconnecting));
        source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        // The server ends the stream with `signed_out` when the session does (signed out
        // elsewhere, password changed, user disabled): reconnecting would be refused.
        let on_signed_out = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |_| to_sign_in());
        let _ = source.add_event_listener_with_callback("signed_out", on_signed_out.as_ref().unchecked_ref());
        let mut listeners = vec![on_signed_out];
        for name in names {
            let f = on_event.clone();
            let cb = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
                f(name, e.data().as_string().unwrap_or_default())
            });
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
    let _ = (url, names, on_event, set_link);
    link
}

/// Leaves for the sign-in page, coming back here afterwards.
#[cfg(feature = "hydrate")]
fn to_sign_in() {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let Some(location) = web_sys::window().map(|w| w.location()) else { return };
    // Percent-encoded by hand: `format!` here would cost the first-load bundle about 10 KB.
    let mut url = String::from("/login?next=");
    for part in [location.pathname(), location.search()] {
        for b in part.unwrap_or_default().bytes() {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                url.push(char::from(b));
            } else {
                url.push('%');
                url.push(char::from(HEX[usize::from(b >> 4)]));
                url.push(char::from(HEX[usize::from(b & 15)]));
            }
        }
    }
    let _ = location.set_href(&url);
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

/// Keeps a page fresh from the live stream at `url` while `follow` is true. A state change or a
/// reconnect bumps `tick` at once. Results are throttled with a leading edge: the first one after
/// a quiet spell refetches at once (so a new point shows within a round trip), later ones at most
/// once per `every_ms` (they come by the thousand on a busy system). Returns the link state for a
/// [`LiveBadge`].
pub fn use_live_refetch(url: String, tick: RwSignal<u64>, every_ms: u64, follow: Signal<bool>) -> ReadSignal<Link> {
    let throttle = StoredValue::new(Throttle::default());
    use_live_events(url, move |name| {
        if !follow.get_untracked() {
            // A fixed window does not move; nothing to refetch.
            return;
        }
        if name != "result" {
            tick.update(|n| *n += 1);
            return;
        }
        match throttle.try_update_value(|t| t.on_event(now_ms(), every_ms)).flatten() {
            Some(0) => tick.update(|n| *n += 1),
            Some(wait) => set_timeout(
                move || {
                    throttle.update_value(|t| t.fired(now_ms()));
                    tick.update(|n| *n += 1);
                },
                std::time::Duration::from_millis(wait),
            ),
            None => {}
        }
    })
}

/// Leading-edge throttle state: when the last refetch ran and whether one is queued.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Throttle {
    last_ms: Option<f64>,
    queued: bool,
}

impl Throttle {
    /// What to do for an event at `now`: refetch now (`Some(0)`), in `Some(ms)`, or nothing (one
    /// is already queued and will cover this event too).
    fn on_event(&mut self, now: f64, every_ms: u64) -> Option<u64> {
        if self.queued {
            return None;
        }
        let every = every_ms as f64;
        match self.last_ms {
            Some(last) if now - last < every => {
                self.queued = true;
                Some(((last + every - now).ceil() as u64).max(1))
            }
            _ => {
                self.last_ms = Some(now);
                Some(0)
            }
        }
    }

    fn fired(&mut self, now: f64) {
        self.queued = false;
        self.last_ms = Some(now);
    }
}

#[cfg(feature = "hydrate")]
fn now_ms() -> f64 {
    web_sys::window().and_then(|w| w.performance()).map_or(0.0, |p| p.now())
}

#[cfg(not(feature = "hydrate"))]
fn now_ms() -> f64 {
    0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_result_refetches_at_once_and_a_burst_costs_one_more() {
        let mut t = Throttle::default();
        assert_eq!(t.on_event(10_000.0, 1_000), Some(0), "after a quiet spell: at once");
        assert_eq!(t.on_event(10_200.0, 1_000), Some(800), "within the interval: queued for its end");
        assert_eq!(t.on_event(10_300.0, 1_000), None, "already queued");
        assert_eq!(t.on_event(10_900.0, 1_000), None);
        t.fired(11_000.0);
        assert_eq!(t.on_event(11_500.0, 1_000), Some(500));
        t.fired(12_000.0);
        assert_eq!(t.on_event(13_500.0, 1_000), Some(0), "quiet again");
    }
}
