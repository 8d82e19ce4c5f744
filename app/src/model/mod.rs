//! Types shared by the server and the browser. Their serde formats are part of the API and are
//! pinned by tests.

mod auth;
mod overview;
mod probe;
mod service;
mod system;

pub use auth::*;
pub use overview::*;
pub use probe::*;
pub use service::*;
pub use system::*;
