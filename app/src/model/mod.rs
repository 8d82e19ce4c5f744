//! Types shared by the server and the browser. Their serde formats are part of the API and are
//! pinned by tests.

mod system;

pub use system::*;
