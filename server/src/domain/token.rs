//! Building token claims from a key's state: pure, no I/O.

use super::binding::Binding;
use super::key::Key;
use super::offer::{FREE_OFFER, OfferCatalog};
use super::subscription::Subscription;
use chrono::{DateTime, Utc};
use glpi_network_shared::ValidationStatus;
use glpi_network_shared::token::{AUDIENCE, Claims};

/// Lifetimes of the tokens a server signs.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    /// `exp - iat`.
    pub ttl_secs: i64,
    /// `grace_until - exp`.
    pub grace_secs: i64,
}

/// What a token speaks of.
pub struct TokenInput<'a> {
    pub key: &'a Key,
    pub subscription: &'a Subscription,
    pub owner: &'a str,
    /// The binding, when it belongs to the instance the token is for.
    pub registration: Option<&'a Binding>,
    /// The canonical URL of the instance the token is for.
    pub instance_url: Option<&'a str>,
    pub status: ValidationStatus,
    pub nonce: Option<&'a str>,
}

/// Entitlements for a status: the offer's when valid, the free offer's when the subscription
/// ended, none when refused.
pub fn entitlements(offers: &OfferCatalog, offer: &str, status: ValidationStatus) -> Vec<String> {
    let from = match status {
        ValidationStatus::Valid => offer,
        ValidationStatus::SubscriptionEnded => FREE_OFFER,
        _ => return Vec::new(),
    };
    offers
        .get(from)
        .map(|o| o.entitlements.clone())
        .unwrap_or_default()
}

/// The claims of a token issued at `now`.
pub fn claims(
    input: &TokenInput<'_>,
    offers: &OfferCatalog,
    issuer: &str,
    lifetimes: Lifetimes,
    now: DateTime<Utc>,
) -> Claims {
    let iat = now.timestamp();
    let exp = iat + lifetimes.ttl_secs;
    let sub = input.subscription;
    Claims {
        iss: issuer.to_owned(),
        aud: AUDIENCE.to_owned(),
        sub: input.key.id.clone(),
        iat,
        nbf: iat,
        exp,
        jti: uuid::Uuid::new_v4().to_string(),
        status: input.status,
        valid: input.status.is_valid(),
        instance_url: input.instance_url.map(str::to_owned),
        instance_uid: input.registration.and_then(|r| r.instance_uid.clone()),
        offer: sub.offer.clone(),
        offer_title: offers
            .get(&sub.offer)
            .map(|o| o.title.clone())
            .unwrap_or_else(|| sub.offer.clone()),
        entitlements: entitlements(offers, &sub.offer, input.status),
        subscription_begin: Some(sub.begin_date.format("%Y-%m-%d").to_string()),
        subscription_end: sub.end_date.map(|d| d.format("%Y-%m-%d").to_string()),
        owner: input.owner.to_owned(),
        grace_until: exp + lifetimes.grace_secs,
        ver: input.key.ver,
        nonce: input.nonce.map(str::to_owned),
    }
}
