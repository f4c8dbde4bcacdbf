//! The order of checks that decides a key's status for an instance, and the entitlements that
//! follow from it.

use crate::db::models::{KeyRow, RegistrationRow, SubscriptionRow};
use chrono::{NaiveDate, NaiveDateTime};
use glpi_network_shared::ValidationStatus;

/// Key statuses stored in the database.
pub const KEY_ACTIVE: &str = "active";
pub const KEY_REVOKED: &str = "revoked";
/// Subscription statuses stored in the database.
pub const SUB_ACTIVE: &str = "active";
pub const SUB_SUSPENDED: &str = "suspended";
pub const SUB_CANCELLED: &str = "cancelled";
/// The free offer whose entitlements survive the end of a subscription.
pub const FREE_OFFER: &str = "registered";

/// Whether the key is past its `expires_at`.
pub fn key_expired(key: &KeyRow, now: NaiveDateTime) -> bool {
    key.expires_at.is_some_and(|e| e <= now)
}

/// A subscription is running when it is `active` and `today` is within its dates (inclusive).
pub fn is_running(sub: &SubscriptionRow, today: NaiveDate) -> bool {
    sub.status == SUB_ACTIVE && sub.begin_date <= today && sub.end_date.is_none_or(|e| today <= e)
}

/// The status of `key` for the instance at `instance_url`, checks in the documented order:
/// key revoked, key expired, key bound elsewhere, key not registered, subscription suspended,
/// subscription ended (a cancelled or not yet begun subscription counts as ended).
pub fn native_status(
    key: &KeyRow,
    sub: &SubscriptionRow,
    binding: Option<&RegistrationRow>,
    instance_url: &str,
    now: NaiveDateTime,
) -> ValidationStatus {
    if key.status == KEY_REVOKED {
        return ValidationStatus::KeyRevoked;
    }
    if key_expired(key, now) {
        return ValidationStatus::KeyExpired;
    }
    match binding {
        Some(b) if b.instance_url.as_deref().is_some_and(|u| u != instance_url) => {
            return ValidationStatus::KeyAlreadyBound;
        }
        Some(b) if b.instance_url.is_some() => {}
        // No binding, or a UID-only binding (GLPI path) that this URL has not claimed yet.
        _ => return ValidationStatus::NotRegistered,
    }
    subscription_status(sub, now.date())
}

/// The subscription part of the status: suspended, ended or valid.
pub fn subscription_status(sub: &SubscriptionRow, today: NaiveDate) -> ValidationStatus {
    if sub.status == SUB_SUSPENDED {
        ValidationStatus::SubscriptionSuspended
    } else if !is_running(sub, today) {
        ValidationStatus::SubscriptionEnded
    } else {
        ValidationStatus::Valid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(status: &str, expires: Option<&str>) -> KeyRow {
        KeyRow {
            id: "k".into(),
            subscription_id: "s".into(),
            key_hash: "h".into(),
            key_prefix: "GLPI-AAAA".into(),
            status: status.into(),
            expires_at: expires.map(|e| e.parse().unwrap()),
            created_at: "2026-01-01T00:00:00".parse().unwrap(),
            revoked_at: None,
            replaced_by: None,
            ver: 1,
        }
    }
    fn sub(status: &str, begin: &str, end: Option<&str>) -> SubscriptionRow {
        SubscriptionRow {
            id: "s".into(),
            subscriber_id: "o".into(),
            offer: "basic".into(),
            begin_date: begin.parse().unwrap(),
            end_date: end.map(|e| e.parse().unwrap()),
            status: status.into(),
            trial: false,
            created_at: "2026-01-01T00:00:00".parse().unwrap(),
            updated_at: "2026-01-01T00:00:00".parse().unwrap(),
        }
    }
    fn reg(url: Option<&str>) -> RegistrationRow {
        RegistrationRow {
            id: "r".into(),
            key_id: "k".into(),
            instance_url: url.map(Into::into),
            instance_uid: None,
            bound_at: "2026-01-01T00:00:00".parse().unwrap(),
            last_seen_at: "2026-01-01T00:00:00".parse().unwrap(),
            released_at: None,
        }
    }
    const URL: &str = "https://glpi.example.com";
    fn now() -> NaiveDateTime {
        "2026-06-01T12:00:00".parse().unwrap()
    }

    #[test]
    fn checks_run_in_the_documented_order() {
        let ended = sub("suspended", "2026-01-01", Some("2026-02-01"));
        let other = reg(Some("https://other.example.com"));
        // revoked beats everything
        assert_eq!(
            native_status(
                &key("revoked", Some("2026-01-02T00:00:00")),
                &ended,
                Some(&other),
                URL,
                now()
            ),
            ValidationStatus::KeyRevoked
        );
        // then expiry
        assert_eq!(
            native_status(
                &key("active", Some("2026-06-01T12:00:00")),
                &ended,
                Some(&other),
                URL,
                now()
            ),
            ValidationStatus::KeyExpired
        );
        // then bound elsewhere
        assert_eq!(
            native_status(&key("active", None), &ended, Some(&other), URL, now()),
            ValidationStatus::KeyAlreadyBound
        );
        // then not registered (also for a UID-only binding)
        assert_eq!(
            native_status(&key("active", None), &ended, None, URL, now()),
            ValidationStatus::NotRegistered
        );
        assert_eq!(
            native_status(&key("active", None), &ended, Some(&reg(None)), URL, now()),
            ValidationStatus::NotRegistered
        );
        // then suspended beats ended
        assert_eq!(
            native_status(
                &key("active", None),
                &ended,
                Some(&reg(Some(URL))),
                URL,
                now()
            ),
            ValidationStatus::SubscriptionSuspended
        );
        let mine = reg(Some(URL));
        for (s, want) in [
            (
                sub("active", "2026-01-01", Some("2026-02-01")),
                ValidationStatus::SubscriptionEnded,
            ),
            (
                sub("cancelled", "2026-01-01", None),
                ValidationStatus::SubscriptionEnded,
            ),
            (
                sub("active", "2026-07-01", None),
                ValidationStatus::SubscriptionEnded,
            ),
            (
                sub("active", "2026-01-01", Some("2026-06-01")),
                ValidationStatus::Valid,
            ),
            (sub("active", "2026-01-01", None), ValidationStatus::Valid),
        ] {
            assert_eq!(
                native_status(&key("active", None), &s, Some(&mine), URL, now()),
                want,
                "{s:?}"
            );
        }
    }
}
