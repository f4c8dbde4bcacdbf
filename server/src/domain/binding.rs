//! Bindings (registrations): a key bound to one instance by URL, UID or both, and the one rule
//! that decides what a bind does (new, the same instance again, gains its URL or UID, or which
//! refusal), checks in DESIGN §8's order.

use super::Invalid;
use super::key::{Key, KeyRefusal};
use super::subscription::Subscription;
use chrono::{Duration, NaiveDateTime};
use glpi_network_shared::{ErrorCode, ValidationStatus};

/// How stale `last_seen_at` may get before a use refreshes it (so reads do not write on every
/// call).
pub const LAST_SEEN_GRANULARITY_SECS: i64 = 60;

/// Checks an instance UID: GLPI sends 40 alphanumerics; accept 1..=128 of `[A-Za-z0-9_-]`.
pub fn parse_uid(raw: &str) -> Result<String, Invalid> {
    let uid = raw.trim();
    if uid.is_empty()
        || uid.len() > 128
        || !uid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(Invalid::new(
            "instance_uid must be 1 to 128 characters of A-Z, a-z, 0-9, '-' or '_'",
        ));
    }
    Ok(uid.to_owned())
}

/// A binding of a key to an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub id: String,
    pub key_id: String,
    pub instance_url: Option<String>,
    pub instance_uid: Option<String>,
    pub bound_at: NaiveDateTime,
    pub last_seen_at: NaiveDateTime,
    pub released_at: Option<NaiveDateTime>,
}

impl Binding {
    /// Whether `last_seen_at` is old enough to be refreshed.
    pub fn last_seen_due(&self, now: NaiveDateTime) -> bool {
        now - self.last_seen_at > Duration::seconds(LAST_SEEN_GRANULARITY_SECS)
    }
}

/// A key, its subscription, its owner and (maybe) its binding: what statuses and tokens are
/// made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyState {
    pub key: Key,
    pub subscription: Subscription,
    /// The subscriber's name.
    pub owner: String,
    pub registration: Option<Binding>,
}

/// Why a bind is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BindRefusal {
    #[error(transparent)]
    Key(#[from] KeyRefusal),
    #[error("this key is already bound to another instance")]
    KeyBound,
    #[error("this instance URL is registered with another key")]
    UrlTaken,
    #[error("this instance UID is registered with another key")]
    UidTaken,
    #[error("the subscription is suspended: it binds no new instance")]
    SubscriptionSuspended,
}

impl BindRefusal {
    /// The stable error code.
    pub fn code(self) -> ErrorCode {
        match self {
            BindRefusal::Key(k) => k.code(),
            BindRefusal::KeyBound => ErrorCode::KeyAlreadyBound,
            BindRefusal::UrlTaken => ErrorCode::UrlAlreadyRegistered,
            BindRefusal::UidTaken => ErrorCode::UidAlreadyRegistered,
            BindRefusal::SubscriptionSuspended => ErrorCode::SubscriptionSuspended,
        }
    }
}

/// What a bind does once it is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindPlan<'a> {
    /// The same instance again: nothing to write (but a due `last_seen_at`).
    Same,
    /// The binding gains its URL and/or its UID, provided no other key holds them.
    Attach {
        url: Option<&'a str>,
        uid: Option<&'a str>,
    },
    /// A new binding, provided no other key holds the URL or the UID.
    New,
}

/// Decides a bind of `state`'s key to the instance (`url`, `uid`, or both) at `now`: the key
/// must be usable, and a key already bound must not be bound to another URL or UID.
pub fn plan_bind<'a>(
    state: &KeyState,
    url: Option<&'a str>,
    uid: Option<&'a str>,
    now: NaiveDateTime,
) -> Result<BindPlan<'a>, BindRefusal> {
    state.key.usable(now)?;
    let Some(mine) = &state.registration else {
        return Ok(BindPlan::New);
    };
    let differs =
        |given: Option<&str>, bound: Option<&str>| given.zip(bound).is_some_and(|(a, b)| a != b);
    if differs(url, mine.instance_url.as_deref()) || differs(uid, mine.instance_uid.as_deref()) {
        return Err(BindRefusal::KeyBound);
    }
    let url = url.filter(|_| mine.instance_url.is_none());
    let uid = uid.filter(|_| mine.instance_uid.is_none());
    Ok(if url.is_none() && uid.is_none() {
        BindPlan::Same
    } else {
        BindPlan::Attach { url, uid }
    })
}

/// Whether `state` is a usable key already bound to this very instance (every identifier given
/// matches the binding): the idempotent case, which needs no write transaction.
pub fn same_instance(
    state: &KeyState,
    url: Option<&str>,
    uid: Option<&str>,
    now: NaiveDateTime,
) -> bool {
    matches!(plan_bind(state, url, uid, now), Ok(BindPlan::Same))
}

/// Why an identifier the plan takes cannot be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// Another key holds it.
    Refused(BindRefusal),
    /// This very key holds it: a concurrent bind committed first (retry and answer as the
    /// idempotent case does).
    Race,
}

/// Checks who holds the URL and the UID a plan takes (the key ids of their unreleased bindings,
/// read in the bind's transaction). The URL is checked first.
pub fn check_holders(
    plan: BindPlan<'_>,
    my_key_id: &str,
    url_holder: Option<&str>,
    uid_holder: Option<&str>,
) -> Result<(), Taken> {
    let verdict = |holder: Option<&str>, refusal| match (plan, holder) {
        (_, None) | (BindPlan::Same, _) => Ok(()),
        (BindPlan::New, Some(h)) if h == my_key_id => Err(Taken::Race),
        _ => Err(Taken::Refused(refusal)),
    };
    verdict(url_holder, BindRefusal::UrlTaken)?;
    verdict(uid_holder, BindRefusal::UidTaken)
}

/// The last check of a bind, after the conflicts (DESIGN §8): a suspended subscription binds
/// no new instance; an instance already bound keeps its binding (and gains its URL or UID).
pub fn admit(plan: BindPlan<'_>, state: &KeyState) -> Result<(), BindRefusal> {
    if plan == BindPlan::New
        && state.subscription.status == super::subscription::SubscriptionStatus::Suspended
    {
        return Err(BindRefusal::SubscriptionSuspended);
    }
    Ok(())
}

impl KeyState {
    /// Whether the key may be used by the instance with this UID (GLPI's `/info` without a
    /// UID, the marketplace): usable, and not bound to another UID (with no UID given, a key
    /// bound to any UID is another instance's).
    pub fn usable_by(&self, uid: Option<&str>, now: NaiveDateTime) -> Result<(), BindRefusal> {
        self.key.usable(now)?;
        let bound_elsewhere = self
            .registration
            .as_ref()
            .and_then(|r| r.instance_uid.as_deref())
            .is_some_and(|bound| uid != Some(bound));
        if bound_elsewhere {
            return Err(BindRefusal::KeyBound);
        }
        Ok(())
    }

    /// The status of the key for the instance at `instance_url`, checks in the documented
    /// order: key revoked, key expired, key bound elsewhere, key not registered, subscription
    /// suspended, subscription ended (a cancelled or not yet begun subscription counts as
    /// ended).
    pub fn status_for(&self, instance_url: &str, now: NaiveDateTime) -> ValidationStatus {
        if let Err(refusal) = self.key.usable(now) {
            return refusal.status();
        }
        match &self.registration {
            Some(b) if b.instance_url.as_deref().is_some_and(|u| u != instance_url) => {
                ValidationStatus::KeyAlreadyBound
            }
            Some(b) if b.instance_url.is_some() => self.subscription.standing(now.date()),
            // No binding, or a UID-only binding (GLPI path) that this URL has not claimed yet.
            _ => ValidationStatus::NotRegistered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::key::KeyStatus;
    use crate::domain::key::tests::key;
    use crate::domain::subscription::SubscriptionStatus;
    use crate::domain::subscription::tests::sub;

    const URL: &str = "https://glpi.example.com";

    fn now() -> NaiveDateTime {
        "2026-06-01T12:00:00".parse().unwrap()
    }
    fn reg(url: Option<&str>, uid: Option<&str>) -> Binding {
        Binding {
            id: "r".into(),
            key_id: "k".into(),
            instance_url: url.map(Into::into),
            instance_uid: uid.map(Into::into),
            bound_at: "2026-01-01T00:00:00".parse().unwrap(),
            last_seen_at: "2026-01-01T00:00:00".parse().unwrap(),
            released_at: None,
        }
    }
    fn state(k: Key, s: Subscription, r: Option<Binding>) -> KeyState {
        KeyState {
            key: k,
            subscription: s,
            owner: "Owner".into(),
            registration: r,
        }
    }
    fn active() -> Subscription {
        sub(SubscriptionStatus::Active, "2026-01-01", None)
    }

    #[test]
    fn a_bind_is_new_the_same_again_or_gains_what_it_lacks() {
        let free = state(key(KeyStatus::Active, None), active(), None);
        assert_eq!(plan_bind(&free, Some(URL), None, now()), Ok(BindPlan::New));
        let by_url = state(
            key(KeyStatus::Active, None),
            active(),
            Some(reg(Some(URL), None)),
        );
        assert_eq!(
            plan_bind(&by_url, Some(URL), None, now()),
            Ok(BindPlan::Same)
        );
        assert_eq!(
            plan_bind(&by_url, Some(URL), Some("u1"), now()),
            Ok(BindPlan::Attach {
                url: None,
                uid: Some("u1")
            })
        );
        assert_eq!(
            plan_bind(&by_url, Some("https://other.example.com"), None, now()),
            Err(BindRefusal::KeyBound)
        );
        let by_uid = state(
            key(KeyStatus::Active, None),
            active(),
            Some(reg(None, Some("u1"))),
        );
        assert_eq!(
            plan_bind(&by_uid, None, Some("u1"), now()),
            Ok(BindPlan::Same)
        );
        assert_eq!(
            plan_bind(&by_uid, None, Some("u2"), now()),
            Err(BindRefusal::KeyBound)
        );
        assert!(!same_instance(&by_uid, Some(URL), Some("u1"), now()));
    }

    #[test]
    fn a_refused_key_binds_nothing_revoked_first() {
        let revoked = state(
            key(KeyStatus::Revoked, Some("2026-01-01T00:00:00")),
            active(),
            Some(reg(Some("https://other.example.com"), None)),
        );
        assert_eq!(
            plan_bind(&revoked, Some(URL), None, now()),
            Err(BindRefusal::Key(KeyRefusal::Revoked))
        );
        assert!(!same_instance(&revoked, None, None, now()));
    }

    #[test]
    fn holders_refuse_other_keys_and_report_our_own_as_a_race() {
        assert_eq!(check_holders(BindPlan::New, "k", None, None), Ok(()));
        assert_eq!(
            check_holders(BindPlan::New, "k", Some("other"), None),
            Err(Taken::Refused(BindRefusal::UrlTaken))
        );
        assert_eq!(
            check_holders(BindPlan::New, "k", None, Some("k")),
            Err(Taken::Race)
        );
        let attach = BindPlan::Attach {
            url: None,
            uid: Some("u"),
        };
        assert_eq!(
            check_holders(attach, "k", None, Some("k")),
            Err(Taken::Refused(BindRefusal::UidTaken))
        );
    }

    #[test]
    fn statuses_follow_the_documented_order() {
        use ValidationStatus as V;
        let ended = sub(
            SubscriptionStatus::Suspended,
            "2026-01-01",
            Some("2026-02-01"),
        );
        let other = Some(reg(Some("https://other.example.com"), None));
        let st = |k, s: &Subscription, r: &Option<Binding>| {
            state(k, s.clone(), r.clone()).status_for(URL, now())
        };
        let exp = Some("2026-06-01T12:00:00");
        assert_eq!(
            st(key(KeyStatus::Revoked, exp), &ended, &other),
            V::KeyRevoked
        );
        assert_eq!(
            st(key(KeyStatus::Active, exp), &ended, &other),
            V::KeyExpired
        );
        assert_eq!(
            st(key(KeyStatus::Active, None), &ended, &other),
            V::KeyAlreadyBound
        );
        assert_eq!(
            st(key(KeyStatus::Active, None), &ended, &None),
            V::NotRegistered
        );
        let uid_only = Some(reg(None, Some("u")));
        assert_eq!(
            st(key(KeyStatus::Active, None), &ended, &uid_only),
            V::NotRegistered
        );
        let mine = Some(reg(Some(URL), None));
        assert_eq!(
            st(key(KeyStatus::Active, None), &ended, &mine),
            V::SubscriptionSuspended
        );
        for (s, want) in [
            (
                sub(SubscriptionStatus::Active, "2026-01-01", Some("2026-02-01")),
                V::SubscriptionEnded,
            ),
            (
                sub(SubscriptionStatus::Cancelled, "2026-01-01", None),
                V::SubscriptionEnded,
            ),
            (
                sub(SubscriptionStatus::Active, "2026-07-01", None),
                V::SubscriptionEnded,
            ),
            (
                sub(SubscriptionStatus::Active, "2026-01-01", Some("2026-06-01")),
                V::Valid,
            ),
            (active(), V::Valid),
        ] {
            assert_eq!(st(key(KeyStatus::Active, None), &s, &mine), want, "{s:?}");
        }
    }

    #[test]
    fn a_key_bound_to_a_uid_is_usable_only_by_that_uid() {
        let st = state(
            key(KeyStatus::Active, None),
            active(),
            Some(reg(None, Some("u1"))),
        );
        assert_eq!(st.usable_by(Some("u1"), now()), Ok(()));
        assert_eq!(st.usable_by(Some("u2"), now()), Err(BindRefusal::KeyBound));
        assert_eq!(st.usable_by(None, now()), Err(BindRefusal::KeyBound));
        let by_url = state(
            key(KeyStatus::Active, None),
            active(),
            Some(reg(Some(URL), None)),
        );
        assert_eq!(by_url.usable_by(None, now()), Ok(()));
    }
}
