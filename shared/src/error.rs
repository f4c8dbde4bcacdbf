//! The error envelope `{"error": {"code", "message"}}` and its stable codes.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A stable, machine-readable error code. Clients branch on it, never on the message.
///
/// Unknown codes sent by a newer server decode as [`ErrorCode::Unknown`] so old clients survive.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The request body, query or path could not be understood.
    InvalidRequest,
    /// The key has the generated shape but its checksum is wrong (a typo).
    InvalidKeyFormat,
    /// The instance URL is not an acceptable http(s) URL.
    InvalidUrl,
    /// Missing or wrong admin credentials.
    Unauthorized,
    /// No such resource.
    NotFound,
    /// The registration key is unknown.
    KeyNotFound,
    /// The registration key was revoked.
    KeyRevoked,
    /// The registration key is past its `expires_at`.
    KeyExpired,
    /// The key's subscription is suspended.
    SubscriptionSuspended,
    /// The key is bound to another URL or UID.
    KeyAlreadyBound,
    /// The URL is bound to another key.
    UrlAlreadyRegistered,
    /// The UID is bound to another key.
    UidAlreadyRegistered,
    /// The request conflicts with the resource's state (e.g. resuming a cancelled subscription).
    Conflict,
    /// An exclusive plugin needs a running subscription to one of its required offers.
    OfferRequired,
    /// A commercial plugin's archive needs a valid license of that plugin for this instance.
    LicenseRequired,
    /// The plugin license is past its `expires_at`.
    LicenseExpired,
    /// Every use of the enrollment key is taken.
    EnrollmentExhausted,
    /// Every use of the invitation is taken.
    InvitationExhausted,
    /// The email already has an account in another subscriber.
    EmailTaken,
    /// Too many failed attempts from this client.
    RateLimited,
    /// The request body is larger than the server accepts.
    PayloadTooLarge,
    /// The method is not allowed on this path.
    MethodNotAllowed,
    /// The server cannot reach its database for now (`503` with `Retry-After`): retry.
    Unavailable,
    /// Something failed inside the server; details are in its log.
    Internal,
    /// A code this version does not know.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The snake_case wire name of the code.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidKeyFormat => "invalid_key_format",
            ErrorCode::InvalidUrl => "invalid_url",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::NotFound => "not_found",
            ErrorCode::KeyNotFound => "key_not_found",
            ErrorCode::KeyRevoked => "key_revoked",
            ErrorCode::KeyExpired => "key_expired",
            ErrorCode::SubscriptionSuspended => "subscription_suspended",
            ErrorCode::KeyAlreadyBound => "key_already_bound",
            ErrorCode::UrlAlreadyRegistered => "url_already_registered",
            ErrorCode::UidAlreadyRegistered => "uid_already_registered",
            ErrorCode::Conflict => "conflict",
            ErrorCode::OfferRequired => "offer_required",
            ErrorCode::LicenseRequired => "license_required",
            ErrorCode::LicenseExpired => "license_expired",
            ErrorCode::EnrollmentExhausted => "enrollment_exhausted",
            ErrorCode::InvitationExhausted => "invitation_exhausted",
            ErrorCode::EmailTaken => "email_taken",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
            ErrorCode::Unknown => "unknown",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The inner object of the error envelope.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    /// Stable code.
    pub code: ErrorCode,
    /// Human text; may change between versions.
    pub message: String,
}

/// `{"error": {"code": ..., "message": ...}}`, the body of every error answer.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    /// The error.
    pub error: ApiErrorBody,
}

impl ErrorEnvelope {
    /// Builds an envelope from a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorEnvelope {
            error: ApiErrorBody {
                code,
                message: message.into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_codes_decode_to_the_fallback() {
        let env: ErrorEnvelope =
            serde_json::from_str(r#"{"error":{"code":"brand_new_code","message":"x"}}"#).unwrap();
        assert_eq!(env.error.code, ErrorCode::Unknown);
    }

    #[test]
    fn as_str_matches_the_serde_name() {
        for code in [
            ErrorCode::InvalidKeyFormat,
            ErrorCode::UrlAlreadyRegistered,
            ErrorCode::UidAlreadyRegistered,
            ErrorCode::SubscriptionSuspended,
            ErrorCode::Unavailable,
        ] {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
    }
}
