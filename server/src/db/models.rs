//! Database rows and their conversions to and from the domain types. Ids are UUIDv7 strings
//! (time-ordered, so cursors can page by id); times are UTC `NaiveDateTime`s.

use super::schema::*;
use super::sqltime::Fast;
use crate::domain::binding::Binding;
use crate::domain::key::{Key, KeyStatus};
use crate::domain::offer::Offer;
use crate::domain::subscription::{Subscription, SubscriptionStatus};
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = offers)]
pub struct OfferRow {
    pub reference: String,
    pub title: String,
    pub rank: i32,
    pub entitlements: String,
}

impl From<OfferRow> for Offer {
    fn from(r: OfferRow) -> Self {
        Offer {
            entitlements: serde_json::from_str(&r.entitlements).unwrap_or_default(),
            reference: r.reference,
            title: r.title,
            rank: r.rank,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = subscribers)]
pub struct SubscriberRow {
    pub id: String,
    pub name: String,
    pub email: Option<String>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = subscriptions)]
pub struct SubscriptionRow {
    pub id: String,
    pub subscriber_id: String,
    pub offer: String,
    #[diesel(deserialize_as = Fast<NaiveDate>)]
    pub begin_date: NaiveDate,
    #[diesel(deserialize_as = Fast<Option<NaiveDate>>)]
    pub end_date: Option<NaiveDate>,
    pub status: String,
    pub trial: bool,
    #[diesel(deserialize_as = Fast<NaiveDateTime>)]
    pub created_at: NaiveDateTime,
    #[diesel(deserialize_as = Fast<NaiveDateTime>)]
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = registration_keys)]
pub struct KeyRow {
    pub id: String,
    pub subscription_id: String,
    pub key_hash: String,
    pub key_prefix: String,
    pub status: String,
    #[diesel(deserialize_as = Fast<Option<NaiveDateTime>>)]
    pub expires_at: Option<NaiveDateTime>,
    #[diesel(deserialize_as = Fast<NaiveDateTime>)]
    pub created_at: NaiveDateTime,
    #[diesel(deserialize_as = Fast<Option<NaiveDateTime>>)]
    pub revoked_at: Option<NaiveDateTime>,
    pub replaced_by: Option<String>,
    pub ver: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = registrations)]
pub struct RegistrationRow {
    pub id: String,
    pub key_id: String,
    pub instance_url: Option<String>,
    pub instance_uid: Option<String>,
    #[diesel(deserialize_as = Fast<NaiveDateTime>)]
    pub bound_at: NaiveDateTime,
    #[diesel(deserialize_as = Fast<NaiveDateTime>)]
    pub last_seen_at: NaiveDateTime,
    #[diesel(deserialize_as = Fast<Option<NaiveDateTime>>)]
    pub released_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_events)]
pub struct AuditRow {
    pub id: i64,
    pub at: NaiveDateTime,
    pub actor: String,
    pub action: String,
    pub outcome: String,
    pub key_id: Option<String>,
    pub key_prefix: Option<String>,
    pub instance_url: Option<String>,
    pub instance_uid: Option<String>,
    pub client_addr: Option<String>,
    pub detail: Option<String>,
    pub prev_hash: String,
    pub hash: String,
    /// How many identical refusals this event stands for (outside the hash chain).
    pub count: i64,
}

#[derive(Debug, Clone, Default, Insertable)]
#[diesel(table_name = audit_events)]
pub struct NewAuditEvent {
    pub at: NaiveDateTime,
    pub actor: String,
    pub action: String,
    pub outcome: String,
    pub key_id: Option<String>,
    pub key_prefix: Option<String>,
    pub instance_url: Option<String>,
    pub instance_uid: Option<String>,
    pub client_addr: Option<String>,
    pub detail: Option<String>,
}

impl From<SubscriptionRow> for Subscription {
    fn from(r: SubscriptionRow) -> Self {
        Subscription {
            id: r.id,
            subscriber_id: r.subscriber_id,
            offer: r.offer,
            begin_date: r.begin_date,
            end_date: r.end_date,
            // an unknown stored status is not running
            status: SubscriptionStatus::parse(&r.status).unwrap_or(SubscriptionStatus::Cancelled),
            trial: r.trial,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

impl From<&Subscription> for SubscriptionRow {
    fn from(s: &Subscription) -> Self {
        SubscriptionRow {
            id: s.id.clone(),
            subscriber_id: s.subscriber_id.clone(),
            offer: s.offer.clone(),
            begin_date: s.begin_date,
            end_date: s.end_date,
            status: s.status.as_str().to_owned(),
            trial: s.trial,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

impl From<KeyRow> for Key {
    fn from(r: KeyRow) -> Self {
        Key {
            id: r.id,
            subscription_id: r.subscription_id,
            key_hash: r.key_hash,
            key_prefix: r.key_prefix,
            // an unknown stored status is not usable
            status: KeyStatus::parse(&r.status).unwrap_or(KeyStatus::Revoked),
            expires_at: r.expires_at,
            created_at: r.created_at,
            revoked_at: r.revoked_at,
            replaced_by: r.replaced_by,
            ver: r.ver,
        }
    }
}

impl From<&Key> for KeyRow {
    fn from(k: &Key) -> Self {
        KeyRow {
            id: k.id.clone(),
            subscription_id: k.subscription_id.clone(),
            key_hash: k.key_hash.clone(),
            key_prefix: k.key_prefix.clone(),
            status: k.status.as_str().to_owned(),
            expires_at: k.expires_at,
            created_at: k.created_at,
            revoked_at: k.revoked_at,
            replaced_by: k.replaced_by.clone(),
            ver: k.ver,
        }
    }
}

impl From<RegistrationRow> for Binding {
    fn from(r: RegistrationRow) -> Self {
        Binding {
            id: r.id,
            key_id: r.key_id,
            instance_url: r.instance_url,
            instance_uid: r.instance_uid,
            bound_at: r.bound_at,
            last_seen_at: r.last_seen_at,
            released_at: r.released_at,
        }
    }
}

impl From<&Binding> for RegistrationRow {
    fn from(b: &Binding) -> Self {
        RegistrationRow {
            id: b.id.clone(),
            key_id: b.key_id.clone(),
            instance_url: b.instance_url.clone(),
            instance_uid: b.instance_uid.clone(),
            bound_at: b.bound_at,
            last_seen_at: b.last_seen_at,
            released_at: b.released_at,
        }
    }
}

/// A new time-ordered id.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
