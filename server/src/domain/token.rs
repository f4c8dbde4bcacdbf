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

/// `exp` and `grace_until` of a token issued at `iat`: the configured lifetimes, but a token
/// that grants something never outlives what grants it: neither `exp` nor `grace_until` goes
/// past the key's `expires_at`, and while the paid offer is granted (`valid`), past the end of
/// the subscription's last day (its `end_date` is inclusive, in UTC). A refusal grants nothing
/// and keeps the configured lifetimes (so a client can cache it).
pub fn lifetime(input: &TokenInput<'_>, lifetimes: Lifetimes, iat: i64) -> (i64, i64) {
    let mut exp = iat.saturating_add(lifetimes.ttl_secs);
    let mut grace_until = exp.saturating_add(lifetimes.grace_secs);
    let mut cap = |end: i64| {
        exp = exp.min(end);
        grace_until = grace_until.min(end);
    };
    if input.status.is_valid()
        && let Some(expires) = input.key.expires_at
    {
        cap(expires.and_utc().timestamp());
    }
    if input.status == ValidationStatus::Valid
        && let Some(last_day) = input.subscription.end_date
        && let Some(next) = last_day.succ_opt()
    {
        cap(next.and_time(chrono::NaiveTime::MIN).and_utc().timestamp());
    }
    (exp, grace_until)
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
    let sub = input.subscription;
    let (exp, grace_until) = lifetime(input, lifetimes, iat);
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
        subscription_begin: Some(super::subscription::iso_date(sub.begin_date)),
        subscription_end: sub.end_date.map(super::subscription::iso_date),
        owner: input.owner.to_owned(),
        grace_until,
        ver: input.key.ver,
        nonce: input.nonce.map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::key::KeyStatus;
    use crate::domain::subscription::SubscriptionStatus;
    use chrono::{NaiveDate, NaiveDateTime};

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    /// Defect 11: tokens outlived the key's `expires_at` and the subscription's end by up to
    /// `exp` + grace (8 days).
    #[test]
    fn a_token_never_outlives_the_key_nor_paid_entitlements_the_subscription() {
        let now = at("2026-12-06 12:00:00");
        let key = Key {
            id: "k".into(),
            subscription_id: "s".into(),
            key_hash: "h".into(),
            key_prefix: "GLPI-AAAA".into(),
            status: KeyStatus::Active,
            expires_at: Some(at("2026-12-06 18:00:00")),
            created_at: now,
            revoked_at: None,
            replaced_by: None,
            ver: 1,
        };
        let sub = Subscription {
            id: "s".into(),
            subscriber_id: "o".into(),
            offer: "basic".into(),
            begin_date: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            end_date: Some(NaiveDate::from_ymd_opt(2026, 12, 6).unwrap()),
            status: SubscriptionStatus::Active,
            trial: false,
            created_at: now,
            updated_at: now,
        };
        let lt = Lifetimes {
            ttl_secs: 86_400,
            grace_secs: 7 * 86_400,
        };
        let iat = now.and_utc().timestamp();
        let input = |key: &'static Key, sub: &'static Subscription, status| TokenInput {
            key,
            subscription: sub,
            owner: "o",
            registration: None,
            instance_url: None,
            status,
            nonce: None,
        };
        let key: &'static Key = Box::leak(Box::new(key));
        let sub: &'static Subscription = Box::leak(Box::new(sub));
        let key_end = at("2026-12-06 18:00:00").and_utc().timestamp();
        let sub_end = at("2026-12-07 00:00:00").and_utc().timestamp();
        // the key expires first: both times stop there
        assert_eq!(
            lifetime(&input(key, sub, ValidationStatus::Valid), lt, iat),
            (key_end, key_end)
        );
        // no key expiry: the paid offer stops at the end of the subscription's last day
        let mut k2 = key.clone();
        k2.expires_at = None;
        let k2: &'static Key = Box::leak(Box::new(k2));
        assert_eq!(
            lifetime(&input(k2, sub, ValidationStatus::Valid), lt, iat),
            (sub_end, sub_end)
        );
        // the free entitlements of an ended subscription are not bound by its end
        assert_eq!(
            lifetime(
                &input(k2, sub, ValidationStatus::SubscriptionEnded),
                lt,
                iat
            ),
            (iat + 86_400, iat + 8 * 86_400)
        );
        // but still by the key's expiry
        assert_eq!(
            lifetime(
                &input(key, sub, ValidationStatus::SubscriptionEnded),
                lt,
                iat
            ),
            (key_end, key_end)
        );
        // nothing to bound: the configured lifetimes
        let mut s2 = sub.clone();
        s2.end_date = None;
        let s2: &'static Subscription = Box::leak(Box::new(s2));
        assert_eq!(
            lifetime(&input(k2, s2, ValidationStatus::Valid), lt, iat),
            (iat + 86_400, iat + 8 * 86_400)
        );
        // a refusal grants nothing and keeps them too
        assert_eq!(
            lifetime(&input(key, sub, ValidationStatus::KeyRevoked), lt, iat),
            (iat + 86_400, iat + 8 * 86_400)
        );
    }
}
