//! Light / dark / system theme switch, remembered in localStorage.

use leptos::prelude::*;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Theme {
    System,
    Light,
    Dark,
}

impl Theme {
    fn next(self) -> Self {
        match self {
            Self::System => Self::Dark,
            Self::Dark => Self::Light,
            Self::Light => Self::System,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::System => "System",
            Self::Light => "Light",
            Self::Dark => "Dark",
        }
    }

    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    fn stored(self) -> Option<&'static str> {
        match self {
            Self::System => None,
            Self::Light => Some("light"),
            Self::Dark => Some("dark"),
        }
    }
}

#[cfg(feature = "hydrate")]
fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

#[cfg(feature = "hydrate")]
fn apply(theme: Theme) {
    let Some(root) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.document_element()) else {
        return;
    };
    let storage = storage();
    match theme.stored() {
        Some(value) => {
            let _ = root.set_attribute("data-theme", value);
            if let Some(s) = storage {
                let _ = s.set_item("triage-theme", value);
            }
        }
        None => {
            let _ = root.remove_attribute("data-theme");
            if let Some(s) = storage {
                let _ = s.remove_item("triage-theme");
            }
        }
    }
}

#[component]
pub fn ThemeToggle() -> impl IntoView {
    let theme = RwSignal::new(Theme::System);
    // After hydration, pick up what the boot script applied from localStorage.
    #[cfg(feature = "hydrate")]
    Effect::new(move |first: Option<()>| {
        if first.is_none() {
            let stored = storage().and_then(|s| s.get_item("triage-theme").ok().flatten());
            theme.set(match stored.as_deref() {
                Some("dark") => Theme::Dark,
                Some("light") => Theme::Light,
                _ => Theme::System,
            });
        }
    });
    let cycle = move |_| {
        let next = theme.get_untracked().next();
        theme.set(next);
        #[cfg(feature = "hydrate")]
        apply(next);
    };
    view! {
        <button
            class="theme-toggle"
            type="button"
            on:click=cycle
            title="Switch theme (system → dark → light)"
            aria-label=move || format!("Theme: {}", theme.get().label())
        >
            {move || format!("Theme: {}", theme.get().label())}
        </button>
    }
}
