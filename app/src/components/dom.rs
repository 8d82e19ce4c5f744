//! Small reads of the page the server rendered, for views that take state from its HTML rather
//! than from decoded data. On the server there is no page: each read answers "nothing there".

/// Whether the element with this id has child elements (it holds server-rendered content).
#[cfg(feature = "hydrate")]
pub fn has_children(id: &str) -> bool {
    leptos::prelude::document().get_element_by_id(id).is_some_and(|el| el.child_element_count() > 0)
}

#[cfg(not(feature = "hydrate"))]
pub fn has_children(_: &str) -> bool {
    false
}

/// Whether any element matches the CSS selector.
#[cfg(feature = "hydrate")]
pub fn exists(selector: &str) -> bool {
    leptos::prelude::document().query_selector(selector).ok().flatten().is_some()
}

#[cfg(not(feature = "hydrate"))]
pub fn exists(_: &str) -> bool {
    false
}

/// An attribute of the element with this id.
#[cfg(feature = "hydrate")]
pub fn attribute(id: &str, name: &str) -> Option<String> {
    leptos::prelude::document().get_element_by_id(id)?.get_attribute(name)
}

#[cfg(not(feature = "hydrate"))]
pub fn attribute(_: &str, _: &str) -> Option<String> {
    None
}
