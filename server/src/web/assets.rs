//! The front end's files under `/pkg`: precompressed copies when the browser takes them, cached
//! for a year when their name carries a hash of their content, revalidated otherwise.
//!
//! `cargo leptos build --release --precompress` writes `x.br` (brotli at its highest quality)
//! and `x.gz` next to every file. Compressing on the fly costs the server CPU per download and,
//! at a quality cheap enough for that, about a fifth more bytes than brotli -q 11. Files without
//! a precompressed copy (development builds) are still compressed on the fly by the middleware,
//! which leaves responses that already carry a `Content-Encoding` alone.
//!
//! With `LEPTOS_HASH_FILES=true` at build time, cargo-leptos renames the files to
//! `name.<hash>.ext` and writes the hashes to `hash.txt` next to the server binary (the README's
//! build copies it into the site, which is what gets deployed). The page then names the hashed
//! files, and [`SiteAssets::find`] checks that they are really there.

use std::path::{Path, PathBuf};

use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderValue, header};
use tower_http::services::ServeDir;

/// The front end's file names, as the page must write them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteAssets {
    /// The hash file to give Leptos (it names the JS and WASM files), when the build hashed them.
    pub hash_file: Option<PathBuf>,
    /// The stylesheet's URL.
    pub stylesheet: String,
}

impl SiteAssets {
    /// Reads the hash file (`hash.txt` in the site root, else next to the binary, where
    /// cargo-leptos writes it) if there is one and the site holds the files it names; otherwise
    /// the plain names.
    pub fn find(site_root: &Path) -> Self {
        let plain = Self { hash_file: None, stylesheet: "/pkg/triage.css".into() };
        let next_to_binary = std::env::current_exe().ok().and_then(|exe| Some(exe.parent()?.join("hash.txt")));
        let found = [Some(site_root.join("hash.txt")), next_to_binary]
            .into_iter()
            .flatten()
            .find_map(|f| Some((std::fs::read_to_string(&f).ok()?, f)));
        let Some((text, file)) = found else {
            return plain;
        };
        // Leptos joins the name to the binary's directory; an absolute path stays as it is.
        let file = std::path::absolute(&file).unwrap_or(file);
        let hash = |kind: &str| {
            text.lines().filter_map(|l| l.split_once(':')).find(|(k, _)| k.trim() == kind).map(|(_, h)| h.trim())
        };
        let (Some(js), Some(css)) = (hash("js"), hash("css")) else {
            tracing::warn!(file = %file.display(), "the hash file names no JS or CSS file; serving the plain names");
            return plain;
        };
        let pkg = site_root.join("pkg");
        if !pkg.join(format!("triage.{js}.js")).is_file() || !pkg.join(format!("triage.{css}.css")).is_file() {
            // A hash file left from an earlier build: naming files that are not there would break
            // every page.
            tracing::warn!(file = %file.display(), site = %site_root.display(), "the hash file does not match the site's files; serving the plain names");
            return plain;
        }
        Self { hash_file: Some(file), stylesheet: format!("/pkg/triage.{css}.css") }
    }
}

/// `/pkg/…` from `site_root/pkg`.
pub fn routes<S: Clone + Send + Sync + 'static>(site_root: &Path) -> Router<S> {
    let files = ServeDir::new(site_root.join("pkg")).precompressed_br().precompressed_gzip();
    Router::new().nest_service("/pkg", files).layer(axum::middleware::from_fn(cache_headers))
}

/// A year, unchangeable, for content-hashed names: a new build has new names. Everything else is
/// revalidated on each use (`Last-Modified` answers 304 when unchanged).
async fn cache_headers(req: Request, next: Next) -> Response {
    let immutable = req.uri().path().rsplit('/').next().is_some_and(content_hashed);
    let mut res = next.run(req).await;
    if res.status().is_success() || res.status() == http::StatusCode::NOT_MODIFIED {
        let policy = if immutable { "public, max-age=31536000, immutable" } else { "no-cache" };
        res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(policy));
        // The same URL answers brotli, gzip or plain by the request's Accept-Encoding.
        res.headers_mut().append(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    res
}

/// Whether a file name carries a hash of its content (cargo-leptos: 22 characters of URL-safe
/// base64 between dots).
///
/// cargo-leptos 0.3.10 hashes `triage.js` and `triage.wasm` before it writes the split loader's
/// name into them, so their bytes can change under the same name when only a lazy page changed:
/// those two are revalidated like unhashed files. The loader's placeholder name (all
/// underscores, left when hashing is off) is not a hash either.
pub fn content_hashed(name: &str) -> bool {
    let name = name.strip_suffix(".br").or_else(|| name.strip_suffix(".gz")).unwrap_or(name);
    let parts: Vec<&str> = name.split('.').collect();
    let [stem @ .., hash, ext] = parts.as_slice() else {
        return false;
    };
    let hashed = hash.len() == 22
        && hash.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && hash.bytes().any(|b| b != b'_');
    let main_module = stem == ["triage"] && matches!(*ext, "js" | "wasm");
    stem.iter().any(|s| !s.is_empty()) && hashed && !main_module
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_true_content_hashes_are_cached_for_good() {
        assert!(content_hashed("triage.Ab3_-Z9kLmNoPqRsTuVwXy.css"));
        assert!(content_hashed("chunk_12.Ab3_-Z9kLmNoPqRsTuVwXy.wasm"));
        assert!(content_hashed("__wasm_split.Ab3_-Z9kLmNoPqRsTuVwXy.js"));
        assert!(content_hashed("split___admin_route_view_6606497282327901475.Ab3_-Z9kLmNoPqRsTuVwXy.wasm.br"));
        // cargo-leptos patches these after naming them.
        assert!(!content_hashed("triage.Ab3_-Z9kLmNoPqRsTuVwXy.wasm"));
        assert!(!content_hashed("triage.Ab3_-Z9kLmNoPqRsTuVwXy.js"));
        // Unhashed names and the loader's placeholder.
        assert!(!content_hashed("triage.css"));
        assert!(!content_hashed("chunk_12.wasm"));
        assert!(!content_hashed("__wasm_split.______________________.js"));
        assert!(!content_hashed("a.b.css"));
        assert!(!content_hashed(".Ab3_-Z9kLmNoPqRsTuVwXy.css"));
    }
}
