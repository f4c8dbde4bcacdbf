//! Admin API bodies: what the admin routes and the CLI read and print.

use crate::db::models::{AuditRow, SubscriberRow};
pub use crate::db::page::{ListQuery, Page, paginate};
use crate::domain::offer::Offer;
use crate::domain::subscription::NewSubscription;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

pub use crate::domain::views::{KeyView, SubscriptionView, registration_view, utc};

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OfferView {
    pub reference: String,
    pub title: String,
    pub rank: i32,
    pub entitlements: Vec<String>,
}

impl From<Offer> for OfferView {
    fn from(o: Offer) -> Self {
        OfferView {
            entitlements: o.entitlements,
            reference: o.reference,
            title: o.title,
            rank: o.rank,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CreateSubscriberRequest {
    /// 1 to 200 characters (trimmed).
    #[schema(pattern = r"\S", max_length = 200)]
    pub name: String,
    /// An address with an `@`, at most 254 characters; empty means none.
    #[serde(default)]
    #[schema(pattern = r"^([!-~]*@[!-~]*)?$", max_length = 254)]
    pub email: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SubscriberView {
    pub id: String,
    pub name: String,
    pub email: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<SubscriberRow> for SubscriberView {
    fn from(r: SubscriberRow) -> Self {
        SubscriberView {
            id: r.id,
            name: r.name,
            email: r.email,
            created_at: utc(r.created_at),
        }
    }
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct CreateSubscriptionRequest {
    pub subscriber_id: String,
    pub offer: String,
    #[serde(default)]
    pub begin_date: Option<NaiveDate>,
    #[serde(default)]
    pub end_date: Option<NaiveDate>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 36500)]
    pub trial_days: Option<u32>,
}

impl From<CreateSubscriptionRequest> for NewSubscription {
    fn from(r: CreateSubscriptionRequest) -> Self {
        NewSubscription {
            subscriber_id: r.subscriber_id,
            offer: r.offer,
            begin_date: r.begin_date,
            end_date: r.end_date,
            trial_days: r.trial_days,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CreateKeyRequest {
    pub subscription_id: String,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditView {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub outcome: String,
    pub key_id: Option<String>,
    pub key_prefix: Option<String>,
    pub instance_url: Option<String>,
    pub instance_uid: Option<String>,
    pub client_addr: Option<String>,
    pub detail: Option<String>,
    /// The hash of the previous event (the chain `audit verify` checks).
    pub prev_hash: String,
    /// SHA-256 of `prev_hash` and this event's content.
    pub hash: String,
    /// How many identical refusals (same key, outcome and client address, within a minute)
    /// this event stands for; 1 for every other event. Not covered by `hash`.
    pub count: i64,
}

impl From<AuditRow> for AuditView {
    fn from(r: AuditRow) -> Self {
        AuditView {
            id: r.id,
            at: utc(r.at),
            actor: r.actor,
            action: r.action,
            outcome: r.outcome,
            key_id: r.key_id,
            key_prefix: r.key_prefix,
            instance_url: r.instance_url,
            instance_uid: r.instance_uid,
            client_addr: r.client_addr,
            detail: r.detail,
            prev_hash: r.prev_hash,
            hash: r.hash,
            count: r.count,
        }
    }
}

/// A signing key as the admin API shows it (never the private half).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SigningKeyView {
    pub kid: String,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
    /// Whether it is still in the JWKS.
    pub published: bool,
}

impl SigningKeyView {
    pub fn new(
        r: crate::db::signing_keys::SigningKeyRow,
        signer: &crate::signing::Signer,
        now: NaiveDateTime,
    ) -> Self {
        let published = signer.publishes(&r, now);
        Self::with(r, published)
    }

    /// The view of `r`, published or not.
    pub fn with(r: crate::db::signing_keys::SigningKeyRow, published: bool) -> Self {
        SigningKeyView {
            published,
            kid: r.kid,
            active: r.active,
            created_at: utc(r.created_at),
            retired_at: r.retired_at.map(utc),
        }
    }
}
