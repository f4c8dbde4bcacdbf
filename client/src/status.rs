//! What the client concludes: the state (`valid`, `cached`, `grace` or refused with a reason)
//! and the claims behind it; and the offline rules that derive it from a cached token.

use crate::cache::Entry;
use glpi_network_shared::{Claims, ValidationStatus};
use std::fmt;

/// Why an instance may not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// The token is past `grace_until`, or the server says the key expired.
    Expired,
    /// The server revoked the key.
    Revoked,
    /// The key's subscription is suspended.
    Suspended,
    /// The key is bound to another instance, or the cache speaks of another instance.
    InstanceMismatch,
    /// The wall clock is well behind the latest server time seen (or the server's token is
    /// not yet valid by it).
    ClockRollback,
    /// The server knows the key but it is bound to no instance.
    NotRegistered,
    /// A refresh of the server's JWKS showed that the key which signed the cached token is
    /// no longer published: the cached token is not trusted any more (a fresh one is).
    KeyWithdrawn,
    /// A refusal this version does not know.
    Unknown,
}

impl Reason {
    /// The snake_case name (`expired`, `revoked`, `suspended`, `instance_mismatch`,
    /// `clock_rollback`, `not_registered`, `key_withdrawn`, `unknown`).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Expired => "expired",
            Reason::Revoked => "revoked",
            Reason::Suspended => "suspended",
            Reason::InstanceMismatch => "instance_mismatch",
            Reason::ClockRollback => "clock_rollback",
            Reason::NotRegistered => "not_registered",
            Reason::KeyWithdrawn => "key_withdrawn",
            Reason::Unknown => "unknown",
        }
    }

    /// The reason behind a server status that does not allow running.
    pub fn from_server_status(status: ValidationStatus) -> Reason {
        match status {
            ValidationStatus::KeyRevoked => Reason::Revoked,
            ValidationStatus::KeyExpired => Reason::Expired,
            ValidationStatus::SubscriptionSuspended => Reason::Suspended,
            ValidationStatus::KeyAlreadyBound => Reason::InstanceMismatch,
            ValidationStatus::NotRegistered => Reason::NotRegistered,
            _ => Reason::Unknown,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The client's conclusion, in order of freshness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum State {
    /// The server just answered with a verified token that allows running.
    Valid,
    /// A verified cached token allows running and is not yet due for a refresh.
    Cached,
    /// The server could not be asked (unreachable, `5xx`) or the cached token is past `exp`,
    /// but it is still before `grace_until`: running is allowed for now.
    Grace,
    /// Running is not allowed.
    Refused(Reason),
}

impl State {
    /// `valid`, `cached`, `grace` or `refused`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Valid => "valid",
            State::Cached => "cached",
            State::Grace => "grace",
            State::Refused(_) => "refused",
        }
    }

    /// Whether the instance may run (`valid`, `cached` or `grace`).
    pub fn is_usable(self) -> bool {
        !matches!(self, State::Refused(_))
    }

    /// The reason of a refusal.
    pub fn reason(self) -> Option<Reason> {
        match self {
            State::Refused(r) => Some(r),
            _ => None,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            State::Refused(r) => write!(f, "refused ({r})"),
            s => f.write_str(s.as_str()),
        }
    }
}

/// The outcome of `register`, `validate`, `check` or `status`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Status {
    /// The conclusion.
    pub state: State,
    /// The verified claims it rests on (absent only when a fresh token could not be trusted
    /// at this clock, as for a `clock_rollback` found online).
    pub claims: Option<Claims>,
    /// The local time of the decision (Unix seconds, from the client's clock).
    pub checked_at: i64,
    /// Why the server was not used, when the answer came from the cache after a failure.
    pub offline_reason: Option<String>,
}

impl Status {
    /// Whether the instance may run.
    pub fn is_usable(&self) -> bool {
        self.state.is_usable()
    }

    /// What the instance may use now (empty when refused).
    pub fn entitlements(&self) -> &[String] {
        match (&self.claims, self.is_usable()) {
            (Some(c), true) => &c.entitlements,
            _ => &[],
        }
    }
}

/// The offline rules, applied to a verified cached entry at `now`: a token whose signing key
/// a JWKS refresh showed withdrawn is refused; a signed refusal sticks; then a clock well behind the latest server time seen is a
/// `clock_rollback`; past `grace_until` is `expired`; before `exp` (with the leeway) is
/// `cached`; in between is `grace`.
pub(crate) fn evaluate(entry: &Entry, now: i64, policy: &Policy) -> State {
    let c = &entry.claims;
    if entry.withdrawn {
        return State::Refused(Reason::KeyWithdrawn);
    }
    if !c.valid {
        return State::Refused(Reason::from_server_status(c.status));
    }
    if now.saturating_add(policy.rollback_tolerance) < entry.last_server_time {
        return State::Refused(Reason::ClockRollback);
    }
    if now > c.grace_until {
        return State::Refused(Reason::Expired);
    }
    if now <= c.exp.saturating_add(policy.leeway) {
        State::Cached
    } else {
        State::Grace
    }
}

/// The tolerances of the offline rules.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    /// Seconds the clock may lag the latest server time seen before `clock_rollback`.
    pub rollback_tolerance: i64,
    /// Seconds of leeway on `exp` and `nbf`.
    pub leeway: i64,
    /// Seconds after `iat` when `check` asks the server again (None: half the lifetime).
    pub refresh_after: Option<i64>,
    /// Seconds after it was fetched when the cached JWKS is refreshed.
    pub jwks_refresh_after: i64,
}

impl Policy {
    /// Whether a cached token is due for a refresh at `now`.
    pub fn due_for_refresh(&self, c: &Claims, now: i64) -> bool {
        let after = self
            .refresh_after
            .unwrap_or_else(|| (c.exp - c.iat).max(0) / 2);
        now >= c.iat.saturating_add(after)
    }

    /// Whether a JWKS fetched at `fetched_at` is due for a refresh at `now`.
    pub fn jwks_due(&self, fetched_at: i64, now: i64) -> bool {
        now.saturating_sub(fetched_at) >= self.jwks_refresh_after
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::tests::sample_entry;

    const POLICY: Policy = Policy {
        rollback_tolerance: 300,
        leeway: 60,
        refresh_after: None,
        jwks_refresh_after: 6 * 3600,
    };

    #[test]
    fn states_follow_the_token_times() {
        let e = sample_entry(); // iat 1000, exp 2000, grace_until 3000
        assert_eq!(evaluate(&e, 1_500, &POLICY), State::Cached);
        assert_eq!(evaluate(&e, 2_060, &POLICY), State::Cached);
        assert_eq!(evaluate(&e, 2_061, &POLICY), State::Grace);
        assert_eq!(evaluate(&e, 3_000, &POLICY), State::Grace);
        assert_eq!(
            evaluate(&e, 3_001, &POLICY),
            State::Refused(Reason::Expired)
        );
    }

    #[test]
    fn a_clock_well_behind_the_last_server_time_is_a_rollback() {
        let mut e = sample_entry();
        e.last_server_time = 1_800;
        assert_eq!(evaluate(&e, 1_500, &POLICY), State::Cached);
        assert_eq!(
            evaluate(&e, 1_499, &POLICY),
            State::Refused(Reason::ClockRollback)
        );
    }

    #[test]
    fn a_signed_refusal_sticks_whatever_the_time() {
        let mut e = sample_entry();
        e.claims.valid = false;
        e.claims.status = ValidationStatus::KeyRevoked;
        for now in [1_000, 2_500, 9_999] {
            assert_eq!(evaluate(&e, now, &POLICY), State::Refused(Reason::Revoked));
        }
    }

    #[test]
    fn a_token_whose_key_was_withdrawn_is_refused_whatever_the_time() {
        let mut e = sample_entry();
        e.withdrawn = true;
        for now in [1_000, 2_500] {
            assert_eq!(
                evaluate(&e, now, &POLICY),
                State::Refused(Reason::KeyWithdrawn)
            );
        }
    }

    #[test]
    fn the_jwks_is_due_once_the_interval_has_passed() {
        assert!(!POLICY.jwks_due(1_000, 1_000 + 6 * 3600 - 1));
        assert!(POLICY.jwks_due(1_000, 1_000 + 6 * 3600));
        assert!(
            POLICY.jwks_due(0, 1_000_000),
            "a cache without a fetch time is due"
        );
    }

    #[test]
    fn refresh_is_due_at_half_the_lifetime_by_default() {
        let c = sample_entry().claims;
        assert!(!POLICY.due_for_refresh(&c, 1_499));
        assert!(POLICY.due_for_refresh(&c, 1_500));
        let every_minute = Policy {
            refresh_after: Some(60),
            ..POLICY
        };
        assert!(every_minute.due_for_refresh(&c, 1_060));
    }

    #[test]
    fn server_statuses_map_to_reasons() {
        use ValidationStatus as S;
        assert_eq!(Reason::from_server_status(S::KeyRevoked), Reason::Revoked);
        assert_eq!(Reason::from_server_status(S::KeyExpired), Reason::Expired);
        assert_eq!(
            Reason::from_server_status(S::SubscriptionSuspended),
            Reason::Suspended
        );
        assert_eq!(
            Reason::from_server_status(S::KeyAlreadyBound),
            Reason::InstanceMismatch
        );
    }
}
