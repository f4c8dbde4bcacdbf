//! GLPI Network licensing server: registration keys bound to one instance, enforced tiers and
//! expiry, on SQLite or PostgreSQL. See `docs/ARCHITECTURE.md` for the layers and the request
//! flow.

pub mod app;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod http;
pub mod signing;
pub mod testmode;

pub use app::{AppState, Application};
pub use config::Settings;
pub use testmode::server::TestServer;
