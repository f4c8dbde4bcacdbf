//! GLPI Network licensing server: registration keys bound to one instance, enforced tiers and
//! expiry, on SQLite or PostgreSQL. See `docs/ARCHITECTURE.md` for the request flow.

pub mod app;
pub mod auth;
pub mod catalogue;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod fixtures;
pub mod keycache;
pub mod observe;
pub mod openapi;
pub mod ratelimit;
pub mod routes;
pub mod signing;
pub mod testing;
pub mod testmode;
pub mod views;

pub use app::{AppState, Application};
pub use config::Settings;
