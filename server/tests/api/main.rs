//! Integration tests: the real server on a random port, on SQLite and on PostgreSQL.

mod admin;
mod cache;
mod concurrency;
mod errors;
mod glpi;
mod helpers;
mod limits;
mod processes;
mod registrations;
mod tokens;
