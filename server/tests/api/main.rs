//! Integration tests: the real server on a random port, on SQLite and on PostgreSQL.

#[path = "../common/mod.rs"]
mod common;

mod admin;
mod cache;
mod compat;
mod concurrency;
mod enrollments;
mod errors;
mod glpi;
mod hardening;
mod helpers;
mod invitations;
mod last_seen;
mod licenses;
mod limits;
mod processes;
mod registrations;
mod shared_state;
mod tokens;
mod worker_reads;
