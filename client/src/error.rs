//! The client's error type: what failed, with the HTTP status and the server's `code` when the
//! server answered.

use glpi_network_shared::{ErrorCode, TokenError};
use std::path::PathBuf;

/// Why a client call failed.
///
/// Branch on [`Error::status`], [`Error::code`] and [`Error::is_unavailable`] rather than on the
/// message, which may change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server could not be reached: connection refused, DNS, TLS, or a timeout.
    #[error("cannot reach the server: {0}")]
    Unreachable(String),
    /// The server answered with an error status.
    #[error("the server answered {status}{}: {message}", code.map(|c| format!(" {c}")).unwrap_or_default())]
    Server {
        /// The HTTP status.
        status: u16,
        /// The error code from the server's envelope, when it sent one.
        code: Option<ErrorCode>,
        /// The server's message (human text, not for branching).
        message: String,
    },
    /// The answer could not be used: not JSON, truncated, of the wrong shape, or too large.
    #[error("the server's answer is not usable: {0}")]
    InvalidResponse(String),
    /// The token in the answer failed verification (signature, `alg`, `kid`, `iss`, `aud`,
    /// time, instance or nonce).
    #[error("the server's token failed verification: {0}")]
    Token(#[from] TokenError),
    /// The token's `ver` is lower than one already seen for this key: a rollback or a replay.
    #[error("the server's token has version {got}, lower than version {seen} already seen")]
    StaleVersion {
        /// The highest `ver` seen so far.
        seen: i64,
        /// The `ver` of the refused token.
        got: i64,
    },
    /// The client is missing a setting or was given an invalid one (server URL, instance
    /// URL, key).
    #[error("{0}")]
    Config(String),
    /// Nothing usable is cached for this instance (status is offline and needs a cache).
    #[error("nothing is cached for this instance: register it first")]
    NotRegistered,
    /// The cache could not be written.
    #[error("cannot write the cache {}: {source}", path.display())]
    Cache {
        /// The file that could not be written.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl Error {
    /// The HTTP status of a server error answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Server { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The server's error code, when it sent the error envelope.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Server { code, .. } => *code,
            _ => None,
        }
    }

    /// Whether the service is unavailable rather than answering: unreachable, timed out, a
    /// `5xx`, `408` or `429`, or an unusable body (a captive portal, a truncated answer).
    /// [`Client::validate`](crate::Client::validate) falls back to the cache on these.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Unreachable(_) | Error::InvalidResponse(_) => true,
            Error::Server { status, .. } => *status >= 500 || *status == 408 || *status == 429,
            _ => false,
        }
    }
}
