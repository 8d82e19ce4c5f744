//! A plain `fetch` of text, for HTML the server renders (the overview's body): no JSON decoder
//! and no server-function client in the first-load bundle.

/// The body of a GET to this same-origin URL (the session cookie goes with it), or why not.
#[cfg(feature = "hydrate")]
pub async fn text(url: &str) -> Result<String, String> {
    use wasm_bindgen::JsCast;
    use wasm_bindgen_futures::JsFuture;
    let failed = |_| "the server did not answer".to_string();
    let response = JsFuture::from(leptos::prelude::window().fetch_with_str(url)).await.map_err(failed)?;
    let response: web_sys::Response = response.dyn_into().map_err(|_| "not a response".to_string())?;
    if !response.ok() {
        return Err(format!("HTTP {}", response.status()));
    }
    let body = JsFuture::from(response.text().map_err(failed)?).await.map_err(failed)?;
    body.as_string().ok_or_else(|| "the answer was not text".into())
}

#[cfg(not(feature = "hydrate"))]
pub async fn text(_url: &str) -> Result<String, String> {
    Err("fetched only in the browser".into())
}
