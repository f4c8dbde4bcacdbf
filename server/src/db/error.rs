//! `db::Error`: what storage answers when it cannot answer with data. It names no HTTP status:
//! `http::error` maps it (and the domain refusals it carries) to one.

use crate::domain::Invalid;
use crate::domain::binding::BindRefusal;
use crate::domain::key::KeyRefusal;
use crate::domain::kind::UseRefusal;
use crate::domain::subscription::Cancelled;

/// A storage failure or a refusal found while reading or writing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No row with this id (the message names it).
    #[error("{0}")]
    NotFound(String),
    /// No key with this plaintext.
    #[error("unknown registration key")]
    UnknownKey,
    /// The change conflicts with what is stored (a unique value, a state that forbids it).
    #[error("{0}")]
    Conflict(String),
    /// A value a rule refuses.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The key may not be used.
    #[error(transparent)]
    Key(#[from] KeyRefusal),
    /// No key of this kind with this plaintext (DESIGN §11).
    #[error("unknown {}", .0.noun())]
    UnknownKeyOf(glpi_network_shared::KeyKind),
    /// A key of another kind may not be used (DESIGN §11).
    #[error(transparent)]
    Use(#[from] UseRefusal),
    /// The bind is refused.
    #[error(transparent)]
    Bind(#[from] BindRefusal),
    /// The subscription is cancelled.
    #[error(transparent)]
    Cancelled(#[from] Cancelled),
    /// The error of one entry of a batch (`what` names the entry).
    #[error("{what}: {source}")]
    In {
        what: String,
        #[source]
        source: Box<Error>,
    },
    /// The database failed.
    #[error("database error: {0}")]
    Diesel(#[from] diesel::result::Error),
    /// No connection could be had.
    #[error("connection pool: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    /// Anything else that failed inside the server.
    #[error("{0:#}")]
    Other(#[from] anyhow::Error),
}

/// A result of storage.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A value refused by a rule.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::Invalid(Invalid(message.into()))
    }

    /// Names the entry of a batch this error belongs to.
    pub fn within(self, what: impl Into<String>) -> Self {
        Error::In {
            what: what.into(),
            source: Box::new(self),
        }
    }

    /// The refusal this error carries, if it is one, as the audit trail's outcome.
    pub fn refusal_code(&self) -> Option<glpi_network_shared::ErrorCode> {
        match self {
            Error::UnknownKey => Some(glpi_network_shared::ErrorCode::KeyNotFound),
            Error::Key(r) => Some(r.code()),
            Error::UnknownKeyOf(_) => Some(glpi_network_shared::ErrorCode::KeyNotFound),
            Error::Use(r) => Some(r.code()),
            Error::Bind(r) => Some(r.code()),
            Error::In { source, .. } => source.refusal_code(),
            _ => None,
        }
    }
}
