//! The validation statuses a server reports for a key.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The status of a key for one instance, as validations and tokens report it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ValidationStatus {
    /// Everything is in order.
    Valid,
    /// The key is good but its subscription is over (or cancelled): only the free
    /// `registered` entitlements remain.
    SubscriptionEnded,
    /// The subscription is suspended.
    SubscriptionSuspended,
    /// The key was revoked.
    KeyRevoked,
    /// The key is past its expiry.
    KeyExpired,
    /// The key is bound to another instance.
    KeyAlreadyBound,
    /// The key is known but bound to no instance.
    NotRegistered,
    /// The plugin license is past its `expires_at`.
    LicenseExpired,
    /// A status this version does not know.
    #[serde(other)]
    Unknown,
}

impl ValidationStatus {
    /// Whether a client may run with this status (`valid` keeps everything,
    /// `subscription_ended` keeps the free entitlements).
    pub fn is_valid(self) -> bool {
        matches!(
            self,
            ValidationStatus::Valid | ValidationStatus::SubscriptionEnded
        )
    }

    /// The snake_case wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ValidationStatus::Valid => "valid",
            ValidationStatus::SubscriptionEnded => "subscription_ended",
            ValidationStatus::SubscriptionSuspended => "subscription_suspended",
            ValidationStatus::KeyRevoked => "key_revoked",
            ValidationStatus::KeyExpired => "key_expired",
            ValidationStatus::KeyAlreadyBound => "key_already_bound",
            ValidationStatus::NotRegistered => "not_registered",
            ValidationStatus::LicenseExpired => "license_expired",
            ValidationStatus::Unknown => "unknown",
        }
    }
}

impl fmt::Display for ValidationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_valid_and_ended_are_usable() {
        assert!(ValidationStatus::Valid.is_valid());
        assert!(ValidationStatus::SubscriptionEnded.is_valid());
        assert!(!ValidationStatus::SubscriptionSuspended.is_valid());
        assert!(!ValidationStatus::KeyRevoked.is_valid());
        assert!(!ValidationStatus::NotRegistered.is_valid());
        assert_eq!(
            serde_json::to_value(ValidationStatus::KeyAlreadyBound).unwrap(),
            "key_already_bound"
        );
    }
}
