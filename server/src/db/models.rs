//! Database rows. Ids are UUIDv7 strings (time-ordered, so cursors can page by id);
//! times are UTC `NaiveDateTime`s.

use super::schema::*;
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

impl OfferRow {
    pub fn entitlement_list(&self) -> Vec<String> {
        serde_json::from_str(&self.entitlements).unwrap_or_default()
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
    pub begin_date: NaiveDate,
    pub end_date: Option<NaiveDate>,
    pub status: String,
    pub trial: bool,
    pub created_at: NaiveDateTime,
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
    pub expires_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
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
    pub bound_at: NaiveDateTime,
    pub last_seen_at: NaiveDateTime,
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

/// A new time-ordered id.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
