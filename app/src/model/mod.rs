//! Types shared by the server and the browser. Their serde formats are part of the API and are
//! pinned by tests.

mod auth;
mod catalog;
mod change;
mod guidance;
mod incident;
mod location;
mod maintenance;
mod notify;
mod overview;
mod postmortem;
mod probe;
mod service;
mod slo;
mod status_page;
mod system;

pub use auth::*;
pub use catalog::*;
pub use change::*;
pub use guidance::*;
pub use incident::*;
pub use location::*;
pub use maintenance::*;
pub use notify::*;
pub use overview::*;
pub use postmortem::*;
pub use probe::*;
pub use service::*;
pub use slo::*;
pub use status_page::*;
pub use system::*;
