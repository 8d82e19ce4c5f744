//! Link settings for the browser build.

fn main() {
    // wasm-ld merges read-only data into one segment when optimising, and wasm-split (used by
    // `cargo leptos build --split`) then cannot tell which page's strings and tables belong to
    // which lazy module: it leaves all of them in the main module, so the first load carried
    // every page's data. Separate segments let it move each page's data out with its code.
    if std::env::var("CARGO_CFG_TARGET_ARCH").is_ok_and(|a| a.starts_with("wasm")) {
        println!("cargo:rustc-link-arg-cdylib=--no-merge-data-segments");
    }
}
