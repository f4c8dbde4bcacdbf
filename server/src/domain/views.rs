//! The objects as the admin API shows them: the bodies of its answers and the `data` of the
//! webhook events (DESIGN §12), built from domain values so storage can write an event in the
//! transaction of its change.

use super::binding::Binding;
use super::enrollment::Enrollment;
use super::invitation::Account;
use super::key::Key;
use super::license::License;
use super::subscription::Subscription;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use glpi_network_shared::wire::Registration;
use serde::{Deserialize, Serialize};

pub fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SubscriptionView {
    pub id: String,
    pub subscriber_id: String,
    pub offer: String,
    pub begin_date: NaiveDate,
    pub end_date: Option<NaiveDate>,
    pub status: String,
    pub trial: bool,
    /// Whether it is running today (active and within its dates).
    pub running: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl SubscriptionView {
    pub fn new(r: Subscription, today: NaiveDate) -> Self {
        SubscriptionView {
            running: r.is_running(today),
            id: r.id,
            subscriber_id: r.subscriber_id,
            offer: r.offer,
            begin_date: r.begin_date,
            end_date: r.end_date,
            status: r.status.as_str().to_owned(),
            trial: r.trial,
            created_at: utc(r.created_at),
            updated_at: utc(r.updated_at),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeyView {
    pub id: String,
    pub subscription_id: String,
    pub key_prefix: String,
    pub status: String,
    /// Whether `expires_at` has passed.
    pub expired: bool,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub replaced_by: Option<String>,
    pub ver: i64,
    /// The plaintext key: present only in the answer that creates the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl KeyView {
    pub fn new(r: Key, now: NaiveDateTime) -> Self {
        KeyView {
            expired: r.expired(now),
            id: r.id,
            subscription_id: r.subscription_id,
            key_prefix: r.key_prefix,
            status: r.status.as_str().to_owned(),
            expires_at: r.expires_at.map(utc),
            created_at: utc(r.created_at),
            revoked_at: r.revoked_at.map(utc),
            replaced_by: r.replaced_by,
            ver: r.ver,
            key: None,
        }
    }
}

pub fn registration_view(r: Binding, key_prefix: String) -> Registration {
    Registration {
        id: r.id,
        key_id: r.key_id,
        key_prefix,
        instance_url: r.instance_url,
        instance_uid: r.instance_uid,
        bound_at: utc(r.bound_at),
        last_seen_at: utc(r.last_seen_at),
        released_at: r.released_at.map(utc),
    }
}

/// A license as the admin API shows it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LicenseView {
    pub id: String,
    pub subscriber_id: String,
    pub plugin: String,
    pub key_prefix: String,
    pub status: String,
    pub expired: bool,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub instance_url: Option<String>,
    pub instance_uid: Option<String>,
    pub activated_at: Option<DateTime<Utc>>,
    pub ver: i64,
    /// The plaintext key: present only in the answer that creates the license.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl LicenseView {
    pub fn new(l: License, now: NaiveDateTime) -> Self {
        LicenseView {
            expired: l.expires_at <= now,
            id: l.id,
            subscriber_id: l.subscriber_id,
            plugin: l.plugin,
            key_prefix: l.key_prefix,
            status: l.status.as_str().to_owned(),
            expires_at: utc(l.expires_at),
            created_at: utc(l.created_at),
            revoked_at: l.revoked_at.map(utc),
            instance_url: l.instance_url,
            instance_uid: l.instance_uid,
            activated_at: l.activated_at.map(utc),
            ver: l.ver,
            key: None,
        }
    }
}

/// An enrolled agent.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EnrollmentView {
    pub id: String,
    pub agent_id: String,
    pub entity: String,
    pub enrolled_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrollment_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

impl EnrollmentView {
    pub fn new(e: Enrollment, entity: &str, admin: bool) -> Self {
        EnrollmentView {
            id: e.id,
            agent_id: e.agent_id,
            entity: entity.to_owned(),
            enrolled_at: utc(e.enrolled_at),
            enrollment_key_id: admin.then_some(e.enrollment_key_id),
            hostname: if admin { e.hostname } else { None },
            mac: if admin { e.mac } else { None },
        }
    }
}

/// A portal account.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AccountView {
    pub id: String,
    pub subscriber_id: String,
    pub name: String,
    pub email: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
}

impl From<Account> for AccountView {
    fn from(a: Account) -> Self {
        AccountView {
            id: a.id,
            subscriber_id: a.subscriber_id,
            name: a.name,
            email: a.email,
            role: a.role.as_str().to_owned(),
            created_at: utc(a.created_at),
        }
    }
}
