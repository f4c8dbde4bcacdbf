//! Enrollment keys (DESIGN §11.2): one key enrolls up to `max_uses` agents (0 = unlimited)
//! into one entity; the same agent again takes no use.

use super::key::KeyStatus;
use super::kind::{UseRefusal, usable};
use chrono::NaiveDateTime;
use glpi_network_shared::KeyKind;

/// An enrollment key (never its plaintext).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentKey {
    pub id: String,
    pub subscriber_id: String,
    pub entity: String,
    pub key_prefix: String,
    pub status: KeyStatus,
    pub max_uses: i32,
    pub uses: i32,
    pub expires_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
    pub ver: i64,
}

impl EnrollmentKey {
    /// Revoked, then expired.
    pub fn usable(&self, now: NaiveDateTime) -> Result<(), UseRefusal> {
        usable(KeyKind::Enrollment, self.status, self.expires_at, now)
    }
}

/// An enrolled agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrollment {
    pub id: String,
    pub enrollment_key_id: String,
    pub agent_id: String,
    pub hostname: Option<String>,
    pub mac: Option<String>,
    pub enrolled_at: NaiveDateTime,
    pub released_at: Option<NaiveDateTime>,
}

/// Checks an agent's id, an entity name or a host name: 1 to 255 printable characters.
pub fn check_text(field: &str, value: &str) -> Result<String, super::Invalid> {
    let v = value.trim();
    if v.is_empty() || v.chars().count() > 255 || v.chars().any(char::is_control) {
        return Err(super::Invalid::new(format!(
            "{field} must be 1 to 255 printable characters"
        )));
    }
    Ok(v.to_owned())
}
