//! Registration keys and the one rule that says whether a key may be used.

use chrono::NaiveDateTime;
use glpi_network_shared::{ErrorCode, ValidationStatus};
use serde::{Deserialize, Serialize};

/// A key's stored status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    Active,
    Revoked,
}

impl KeyStatus {
    /// The stored (and serialised) name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Revoked => "revoked",
        }
    }

    /// The status named `s`, if any.
    pub fn parse(s: &str) -> Option<KeyStatus> {
        match s {
            "active" => Some(KeyStatus::Active),
            "revoked" => Some(KeyStatus::Revoked),
            _ => None,
        }
    }
}

/// A registration key (never its plaintext: the hash and the display prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub id: String,
    pub subscription_id: String,
    pub key_hash: String,
    pub key_prefix: String,
    pub status: KeyStatus,
    pub expires_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
    pub replaced_by: Option<String>,
    /// Bumped by every change of the key, its subscription or its binding (tokens carry it).
    pub ver: i64,
}

/// Why a key may not be used, in the order the checks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyRefusal {
    #[error("this registration key was revoked")]
    Revoked,
    #[error("this registration key has expired")]
    Expired,
}

impl KeyRefusal {
    /// The stable error code.
    pub fn code(self) -> ErrorCode {
        match self {
            KeyRefusal::Revoked => ErrorCode::KeyRevoked,
            KeyRefusal::Expired => ErrorCode::KeyExpired,
        }
    }

    /// The validation status it gives.
    pub fn status(self) -> ValidationStatus {
        match self {
            KeyRefusal::Revoked => ValidationStatus::KeyRevoked,
            KeyRefusal::Expired => ValidationStatus::KeyExpired,
        }
    }
}

impl Key {
    /// Whether the key is past its `expires_at`.
    pub fn expired(&self, now: NaiveDateTime) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }

    /// The one usability rule: a key may be used unless it is revoked, then unless it expired.
    pub fn usable(&self, now: NaiveDateTime) -> Result<(), KeyRefusal> {
        if self.status == KeyStatus::Revoked {
            return Err(KeyRefusal::Revoked);
        }
        if self.expired(now) {
            return Err(KeyRefusal::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn key(status: KeyStatus, expires: Option<&str>) -> Key {
        Key {
            id: "k".into(),
            subscription_id: "s".into(),
            key_hash: "h".into(),
            key_prefix: "GLPI-AAAA".into(),
            status,
            expires_at: expires.map(|e| e.parse().unwrap()),
            created_at: "2026-01-01T00:00:00".parse().unwrap(),
            revoked_at: None,
            replaced_by: None,
            ver: 1,
        }
    }

    #[test]
    fn revoked_beats_expired_and_expiry_is_inclusive() {
        let now = "2026-06-01T12:00:00".parse().unwrap();
        let both = key(KeyStatus::Revoked, Some("2026-01-01T00:00:00"));
        assert_eq!(both.usable(now), Err(KeyRefusal::Revoked));
        let at_now = key(KeyStatus::Active, Some("2026-06-01T12:00:00"));
        assert_eq!(at_now.usable(now), Err(KeyRefusal::Expired));
        let later = key(KeyStatus::Active, Some("2026-06-01T12:00:01"));
        assert_eq!(later.usable(now), Ok(()));
        assert_eq!(KeyStatus::parse("revoked"), Some(KeyStatus::Revoked));
        assert_eq!(KeyStatus::parse("Revoked"), None);
        assert_eq!(
            serde_json::to_string(&KeyStatus::Active).unwrap(),
            "\"active\""
        );
    }
}
