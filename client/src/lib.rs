//! Client for the GLPI Network licensing server.
//!
//! TODO doc example.

mod builder;
mod cache;
mod client;
mod clock;
mod error;
mod http;
mod status;
mod verify;

pub use builder::{
    ClientBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_ROLLBACK_TOLERANCE, DEFAULT_TIMEOUT,
    default_cache_path,
};
pub use client::{Client, Ping};
pub use clock::{Clock, SystemClock};
pub use error::Error;
pub use glpi_network_shared as shared;
pub use glpi_network_shared::{Claims, ErrorCode, RegistrationKey, ValidationStatus};
pub use http::MAX_RESPONSE_BYTES;
pub use status::{Reason, State, Status};
