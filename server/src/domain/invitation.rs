//! Invitation keys (DESIGN §11.3): an invitation lets up to `max_uses` people (0 = unlimited)
//! create an account in a subscriber with a role; the same email again takes no use.

use super::key::KeyStatus;
use super::kind::{UseRefusal, usable};
use chrono::NaiveDateTime;
use glpi_network_shared::KeyKind;
use serde::Serialize;

/// A role within a subscriber: the portal account's (an invitation grants one).
pub use super::account::Role;

/// The default lifetime of an invitation.
pub const DEFAULT_VALIDITY_DAYS: i64 = 7;
/// The default `max_uses` of an invitation.
pub const DEFAULT_MAX_USES: i32 = 1;

/// An invitation (never its plaintext).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    pub id: String,
    pub subscriber_id: String,
    pub role: Role,
    pub key_prefix: String,
    pub status: KeyStatus,
    pub max_uses: i32,
    pub uses: i32,
    pub expires_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
    pub ver: i64,
}

impl Invitation {
    /// Revoked, then expired.
    pub fn usable(&self, now: NaiveDateTime) -> Result<(), UseRefusal> {
        usable(KeyKind::Invitation, self.status, self.expires_at, now)
    }
}

/// A portal account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    pub id: String,
    pub subscriber_id: String,
    pub name: String,
    pub email: String,
    pub role: Role,
    pub created_at: NaiveDateTime,
}

/// An email as stored and compared: trimmed and lower-cased; refused unless it looks like
/// `local@domain` within 254 characters.
pub fn normalise_email(raw: &str) -> Result<String, super::Invalid> {
    let e = raw.trim().to_lowercase();
    let ok = e.len() <= 254
        && !e.chars().any(|c| c.is_whitespace() || c.is_control())
        && e.split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty() && !d.contains('@'));
    if ok {
        Ok(e)
    } else {
        Err(super::Invalid::new(
            "email must be an address like name@example.com",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_compare_case_insensitively_and_roles_invite_downwards() {
        assert_eq!(
            normalise_email(" Ann@Example.COM ").unwrap(),
            "ann@example.com"
        );
        assert!(normalise_email("no-at-sign").is_err());
        assert!(normalise_email("a@b@c").is_err());
        assert!(normalise_email("a b@c").is_err());
        assert!(Role::Manager.may_invite(Role::Viewer));
        assert!(!Role::Manager.may_invite(Role::Owner));
        assert!(Role::Owner.may_invite(Role::Owner));
        assert_eq!(Role::parse("viewer"), Some(Role::Viewer));
        assert_eq!(Role::parse("admin"), None);
    }
}
