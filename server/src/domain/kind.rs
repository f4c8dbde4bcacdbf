//! What the other kinds of keys share (DESIGN §11): the refusals of a use, in one enum that
//! `http::error` maps to statuses, and the rule that picks the first one that applies.

use super::key::KeyStatus;
use chrono::NaiveDateTime;
use glpi_network_shared::{ErrorCode, KeyKind, ValidationStatus};

/// Why a key of another kind may not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UseRefusal {
    #[error("this {} was revoked", .0.noun())]
    Revoked(KeyKind),
    #[error("this {} has expired", .0.noun())]
    Expired(KeyKind),
    #[error("this license has expired")]
    LicenseExpired,
    #[error("this license is activated for another instance")]
    BoundElsewhere,
    #[error("every use of this enrollment key is taken")]
    EnrollmentExhausted,
    #[error("every use of this invitation is taken")]
    InvitationExhausted,
    #[error("this email already has an account in another organisation")]
    EmailTaken,
}

impl UseRefusal {
    /// The stable error code.
    pub fn code(self) -> ErrorCode {
        match self {
            UseRefusal::Revoked(_) => ErrorCode::KeyRevoked,
            UseRefusal::Expired(_) => ErrorCode::KeyExpired,
            UseRefusal::LicenseExpired => ErrorCode::LicenseExpired,
            UseRefusal::BoundElsewhere => ErrorCode::KeyAlreadyBound,
            UseRefusal::EnrollmentExhausted => ErrorCode::EnrollmentExhausted,
            UseRefusal::InvitationExhausted => ErrorCode::InvitationExhausted,
            UseRefusal::EmailTaken => ErrorCode::EmailTaken,
        }
    }

    /// Whether it is a refusal of the key itself (`403`) rather than a conflict (`409`).
    pub fn is_forbidden(self) -> bool {
        matches!(
            self,
            UseRefusal::Revoked(_) | UseRefusal::Expired(_) | UseRefusal::LicenseExpired
        )
    }

    /// The validation status it gives.
    pub fn status(self) -> ValidationStatus {
        match self {
            UseRefusal::Revoked(_) => ValidationStatus::KeyRevoked,
            UseRefusal::Expired(_) => ValidationStatus::KeyExpired,
            UseRefusal::LicenseExpired => ValidationStatus::LicenseExpired,
            UseRefusal::BoundElsewhere => ValidationStatus::KeyAlreadyBound,
            _ => ValidationStatus::Unknown,
        }
    }
}

/// The usability rule every kind shares: revoked first, then expired.
pub fn usable(
    kind: KeyKind,
    status: KeyStatus,
    expires_at: Option<NaiveDateTime>,
    now: NaiveDateTime,
) -> Result<(), UseRefusal> {
    if status == KeyStatus::Revoked {
        return Err(UseRefusal::Revoked(kind));
    }
    if expires_at.is_some_and(|e| e <= now) {
        return Err(if kind == KeyKind::License {
            UseRefusal::LicenseExpired
        } else {
            UseRefusal::Expired(kind)
        });
    }
    Ok(())
}

/// Whether a use may be taken from `max_uses` (0 = unlimited) of which `uses` are taken (the
/// database decides races with the same rule in a conditional update).
pub fn has_use_left(max_uses: i32, uses: i32) -> bool {
    max_uses == 0 || uses < max_uses
}

/// Checks a `max_uses` value (0 = unlimited).
pub fn check_max_uses(max_uses: i64) -> Result<i32, super::Invalid> {
    i32::try_from(max_uses)
        .ok()
        .filter(|m| *m >= 0)
        .ok_or_else(|| super::Invalid::new("max_uses must be 0 (unlimited) or a positive count"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoked_beats_expired_and_a_license_expires_as_a_license() {
        let now: NaiveDateTime = "2026-06-01T12:00:00".parse().unwrap();
        let past = Some("2026-01-01T00:00:00".parse().unwrap());
        assert_eq!(
            usable(KeyKind::Enrollment, KeyStatus::Revoked, past, now),
            Err(UseRefusal::Revoked(KeyKind::Enrollment))
        );
        assert_eq!(
            usable(KeyKind::License, KeyStatus::Active, past, now),
            Err(UseRefusal::LicenseExpired)
        );
        assert_eq!(
            usable(KeyKind::Invitation, KeyStatus::Active, past, now),
            Err(UseRefusal::Expired(KeyKind::Invitation))
        );
        assert_eq!(
            usable(KeyKind::Invitation, KeyStatus::Active, None, now),
            Ok(())
        );
        assert!(has_use_left(0, 1_000));
        assert!(has_use_left(2, 1));
        assert!(!has_use_left(2, 2));
        assert!(check_max_uses(-1).is_err());
        assert_eq!(
            UseRefusal::EnrollmentExhausted.code().as_str(),
            "enrollment_exhausted"
        );
    }
}
