//! Pure domain rules: keys, subscriptions, bindings, statuses, tokens, the catalogue, the clock.
//! No web framework, no database library, no I/O and no other layer of the server: every other
//! layer asks these.

pub mod account;
pub mod archive;
pub mod binding;
pub mod catalogue;
pub mod clock;
pub mod compat;
pub mod enrollment;
pub mod glpi;
pub mod invitation;
pub mod key;
pub mod kind;
pub mod license;
pub mod offer;
pub mod subscription;
pub mod token;
pub mod views;
pub mod webhook;

/// A value a rule refuses (answered as `400 invalid_request` with this message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl Invalid {
    pub fn new(message: impl Into<String>) -> Self {
        Invalid(message.into())
    }
}
