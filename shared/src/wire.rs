//! Request and response bodies of the instance API (`/v1/registrations`, `/v1/validations`).

use crate::status::ValidationStatus;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `POST /v1/registrations`: bind a key to an instance.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Serialize, Deserialize)]
pub struct RegisterRequest {
    /// The registration key, in plaintext.
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^[ -~]*[!-~][ -~]*$", max_length = 256)
    )]
    pub registration_key: String,
    /// The instance URL (canonicalised by the server).
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = r"^https?://([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)*[a-z]([a-z0-9-]*[a-z0-9])?(:[1-9][0-9]{0,3})?(/[A-Za-z0-9._~-]*)*$",
            max_length = 2048
        )
    )]
    pub instance_url: String,
    /// The instance's GLPI Network UID, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[A-Za-z0-9_-]{1,128}$"))]
    pub instance_uid: Option<String>,
    /// A fresh value the server echoes in the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[ -~]{0,128}$"))]
    pub nonce: Option<String>,
}

/// `POST /v1/validations`: check a key for an instance.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Serialize, Deserialize)]
pub struct ValidateRequest {
    /// The registration key, in plaintext.
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^[ -~]*[!-~][ -~]*$", max_length = 256)
    )]
    pub registration_key: String,
    /// The instance URL.
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = r"^https?://([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)*[a-z]([a-z0-9-]*[a-z0-9])?(:[1-9][0-9]{0,3})?(/[A-Za-z0-9._~-]*)*$",
            max_length = 2048
        )
    )]
    pub instance_url: String,
    /// A fresh value the server echoes in the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[ -~]{0,128}$"))]
    pub nonce: Option<String>,
}

/// `DELETE /v1/registrations`: an instance releases its own binding.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Serialize, Deserialize)]
pub struct ReleaseRequest {
    /// The registration key, in plaintext.
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^[ -~]*[!-~][ -~]*$", max_length = 256)
    )]
    pub registration_key: String,
    /// The instance URL the key is bound to.
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = r"^https?://([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)*[a-z]([a-z0-9-]*[a-z0-9])?(:[1-9][0-9]{0,3})?(/[A-Za-z0-9._~-]*)*$",
            max_length = 2048
        )
    )]
    pub instance_url: String,
}

macro_rules! redacted_debug {
    ($($t:ident),*) => {$(
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($t))
                    .field("registration_key", &"<redacted>")
                    .field("instance_url", &self.instance_url)
                    .finish_non_exhaustive()
            }
        }
    )*};
}
redacted_debug!(RegisterRequest, ValidateRequest, ReleaseRequest);

/// A binding of a key to an instance.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// Registration id.
    pub id: String,
    /// The bound key's id.
    pub key_id: String,
    /// Display prefix of the bound key.
    pub key_prefix: String,
    /// Canonical instance URL, if bound by URL.
    pub instance_url: Option<String>,
    /// GLPI Network UID, if known.
    pub instance_uid: Option<String>,
    /// When the binding was made.
    pub bound_at: DateTime<Utc>,
    /// When the instance was last seen.
    pub last_seen_at: DateTime<Utc>,
    /// When the binding was released, if it was.
    pub released_at: Option<DateTime<Utc>>,
}

/// Answer to `POST /v1/registrations`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegisterResponse {
    /// The binding.
    pub registration: Registration,
    /// Whether the instance may run.
    pub valid: bool,
    /// The key's status for this instance.
    pub status: ValidationStatus,
    /// The signed validation token (EdDSA JWT).
    pub token: String,
}

/// Answer to `POST /v1/validations`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ValidationResponse {
    /// Whether the instance may run (`valid` or `subscription_ended`).
    pub valid: bool,
    /// The key's status for this instance.
    pub status: ValidationStatus,
    /// The signed validation token (EdDSA JWT).
    pub token: String,
}
