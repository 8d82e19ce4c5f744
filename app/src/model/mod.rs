//! Types shared by the server and the browser. Their serde formats are part of the API and are
//! pinned by tests.

mod probe;
mod system;

pub use probe::*;
pub use system::*;
