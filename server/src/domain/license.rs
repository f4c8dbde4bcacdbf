//! Plugin licenses (DESIGN §11.1): a license binds to one instance (URL, UID or both), like a
//! registration key, and unlocks one commercial plugin until it expires.

use super::key::KeyStatus;
use super::kind::{UseRefusal, usable};
use chrono::NaiveDateTime;
use glpi_network_shared::{KeyKind, ValidationStatus};

/// A license (never its plaintext).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct License {
    pub id: String,
    pub subscriber_id: String,
    pub plugin: String,
    pub key_prefix: String,
    pub status: KeyStatus,
    pub expires_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
    pub instance_url: Option<String>,
    pub instance_uid: Option<String>,
    pub activated_at: Option<NaiveDateTime>,
    pub ver: i64,
}

/// What an activation does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activation {
    /// Not bound: bind it to this instance (`201`).
    New,
    /// Bound to this instance already; `url`/`uid` are what the binding gains (`200`).
    Same {
        url: Option<String>,
        uid: Option<String>,
    },
}

impl License {
    /// Whether it is activated for some instance.
    pub fn is_bound(&self) -> bool {
        self.instance_url.is_some() || self.instance_uid.is_some()
    }

    /// Whether the binding is another instance's: a URL or a UID that both sides name and that
    /// differ.
    pub fn bound_elsewhere(&self, url: Option<&str>, uid: Option<&str>) -> bool {
        let differs = |mine: &Option<String>, theirs: Option<&str>| matches!((mine.as_deref(), theirs), (Some(a), Some(b)) if a != b);
        self.is_bound() && (differs(&self.instance_url, url) || differs(&self.instance_uid, uid))
    }

    /// The activation rule: revoked, expired, bound elsewhere, in that order.
    pub fn plan_activation(
        &self,
        url: Option<&str>,
        uid: Option<&str>,
        now: NaiveDateTime,
    ) -> Result<Activation, UseRefusal> {
        usable(KeyKind::License, self.status, Some(self.expires_at), now)?;
        if !self.is_bound() {
            return Ok(Activation::New);
        }
        if self.bound_elsewhere(url, uid) {
            return Err(UseRefusal::BoundElsewhere);
        }
        let gain = |mine: &Option<String>, theirs: Option<&str>| {
            mine.is_none().then(|| theirs.map(str::to_owned)).flatten()
        };
        Ok(Activation::Same {
            url: gain(&self.instance_url, url),
            uid: gain(&self.instance_uid, uid),
        })
    }

    /// The status of this license for an instance: revoked, expired, bound elsewhere, not
    /// registered, valid (DESIGN §8's order).
    pub fn status_for(
        &self,
        url: Option<&str>,
        uid: Option<&str>,
        now: NaiveDateTime,
    ) -> ValidationStatus {
        if let Err(r) = usable(KeyKind::License, self.status, Some(self.expires_at), now) {
            return r.status();
        }
        if self.bound_elsewhere(url, uid) {
            return ValidationStatus::KeyAlreadyBound;
        }
        if !self.is_bound() {
            return ValidationStatus::NotRegistered;
        }
        ValidationStatus::Valid
    }

    /// Whether it unlocks `plugin` for the instance with UID `uid` now (the marketplace rule).
    pub fn unlocks(&self, plugin: &str, uid: &str, now: NaiveDateTime) -> bool {
        self.plugin == plugin
            && self.instance_uid.as_deref() == Some(uid)
            && self.status_for(None, Some(uid), now) == ValidationStatus::Valid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lic(url: Option<&str>, uid: Option<&str>) -> License {
        License {
            id: "l".into(),
            subscriber_id: "s".into(),
            plugin: "p".into(),
            key_prefix: "LIC-AAAA".into(),
            status: KeyStatus::Active,
            expires_at: "2027-01-01T00:00:00".parse().unwrap(),
            created_at: "2026-01-01T00:00:00".parse().unwrap(),
            revoked_at: None,
            instance_url: url.map(str::to_owned),
            instance_uid: uid.map(str::to_owned),
            activated_at: None,
            ver: 1,
        }
    }

    #[test]
    fn activation_binds_once_and_gains_the_missing_half() {
        let now = "2026-06-01T00:00:00".parse().unwrap();
        assert_eq!(
            lic(None, None).plan_activation(Some("https://a"), None, now),
            Ok(Activation::New)
        );
        let bound = lic(Some("https://a"), None);
        assert_eq!(
            bound.plan_activation(Some("https://a"), Some("u1"), now),
            Ok(Activation::Same {
                url: None,
                uid: Some("u1".into())
            })
        );
        assert_eq!(
            bound.plan_activation(Some("https://b"), None, now),
            Err(UseRefusal::BoundElsewhere)
        );
        assert_eq!(
            bound.status_for(Some("https://b"), None, now),
            ValidationStatus::KeyAlreadyBound
        );
        assert_eq!(
            lic(None, None).status_for(Some("https://a"), None, now),
            ValidationStatus::NotRegistered
        );
        let later = "2027-01-01T00:00:00".parse().unwrap();
        assert_eq!(
            bound.status_for(Some("https://a"), None, later),
            ValidationStatus::LicenseExpired
        );
        let uid_bound = lic(None, Some("u1"));
        assert!(uid_bound.unlocks("p", "u1", now));
        assert!(!uid_bound.unlocks("p", "u2", now));
        assert!(!uid_bound.unlocks("q", "u1", now));
        assert!(!uid_bound.unlocks("p", "u1", later));
    }
}
