//! Integration tests: the real server on a random port, on SQLite and on PostgreSQL.

#[path = "../common/mod.rs"]
mod common;

mod admin;
mod cache;
mod compat;
mod concurrency;
mod errors;
mod glpi;
mod helpers;
mod limits;
mod processes;
mod registrations;
mod tokens;
