//! Server functions, grouped by resource. Their bodies run on the server only and reach storage
//! through [`backend::Backend`], which the `server` crate implements over PostgreSQL.

mod auth;
#[cfg(feature = "ssr")]
pub mod backend;
mod catalog;
mod error;
mod incidents;
mod notify;
mod overview;
mod postmortems;
mod public;
mod system;

pub use auth::*;
pub use catalog::*;
pub use error::ServerError;
pub use incidents::*;
pub use notify::*;
pub use overview::*;
pub use postmortems::*;
pub use public::*;
pub use system::*;
