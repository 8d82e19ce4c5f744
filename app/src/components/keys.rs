//! What pages with keyboard shortcuts share.

/// Whether the key went to a text field or a select (its keys are the user's, not ours).
#[cfg(feature = "hydrate")]
pub fn typing(ev: &leptos::ev::KeyboardEvent) -> bool {
    use wasm_bindgen::JsCast;
    ev.target()
        .and_then(|t| t.dyn_into::<web_sys::HtmlElement>().ok())
        .is_some_and(|el| matches!(el.tag_name().as_str(), "INPUT" | "SELECT" | "TEXTAREA") || el.is_content_editable())
}

#[cfg(not(feature = "hydrate"))]
pub fn typing(_: &leptos::ev::KeyboardEvent) -> bool {
    false
}

/// Moves the keyboard focus to the element with this id (the field a shortcut stands for).
#[cfg(feature = "hydrate")]
pub fn focus(id: &str) {
    use wasm_bindgen::JsCast;
    let el = leptos::prelude::document().get_element_by_id(id).and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok());
    if let Some(el) = el {
        // Focus fails only on elements that cannot take it; the ids given here always can.
        let _ = el.focus();
    }
}

#[cfg(not(feature = "hydrate"))]
pub fn focus(_: &str) {}
