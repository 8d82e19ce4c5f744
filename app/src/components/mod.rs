pub mod bulk;
pub mod dom;
pub mod fetch;
pub mod first_run;
pub mod guidance;
pub mod keys;
pub mod live;
pub mod public_updates;
pub mod state;
pub mod theme;
// Tiles are rendered on the server only: the browser receives them as HTML.
#[cfg(not(feature = "hydrate"))]
pub mod tiles;
