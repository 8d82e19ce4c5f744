pub mod admin;
pub mod auth;
pub mod not_found;
pub mod overview;
pub mod service;
pub mod status;
