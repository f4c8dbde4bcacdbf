//! Wire types, error codes, key and URL rules shared by the GLPI Network server and client.
//!
//! This crate knows neither actix nor diesel: it holds the contract both sides agree on.

pub mod error;
pub mod key;
pub mod status;
pub mod token;
pub mod url;
pub mod wire;

pub use error::{ApiErrorBody, ErrorCode, ErrorEnvelope};
pub use key::{KeyFormatError, KeyKind, PlainKey, RegistrationKey};
pub use status::ValidationStatus;
pub use token::{Claims, TokenError, Verifier};
pub use url::{InstanceUrl, UrlError};
