//! Subscriptions: an offer for a subscriber between two dates; whether one is running, how its
//! status moves, and its default dates.

use super::Invalid;
use chrono::{Duration, NaiveDate, NaiveDateTime};
use glpi_network_shared::ValidationStatus;
use serde::{Deserialize, Serialize};

/// The longest trial accepted.
pub const MAX_TRIAL_DAYS: u32 = 3650;

/// A subscription's stored status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    Active,
    Suspended,
    Cancelled,
}

impl SubscriptionStatus {
    /// The stored (and serialised) name.
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionStatus::Active => "active",
            SubscriptionStatus::Suspended => "suspended",
            SubscriptionStatus::Cancelled => "cancelled",
        }
    }

    /// The status named `s`, if any.
    pub fn parse(s: &str) -> Option<SubscriptionStatus> {
        match s {
            "active" => Some(SubscriptionStatus::Active),
            "suspended" => Some(SubscriptionStatus::Suspended),
            "cancelled" => Some(SubscriptionStatus::Cancelled),
            _ => None,
        }
    }
}

/// A subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: String,
    pub subscriber_id: String,
    pub offer: String,
    pub begin_date: NaiveDate,
    pub end_date: Option<NaiveDate>,
    pub status: SubscriptionStatus,
    pub trial: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl Subscription {
    /// Running: `active` and `today` within its dates (inclusive).
    pub fn is_running(&self, today: NaiveDate) -> bool {
        self.status == SubscriptionStatus::Active
            && self.begin_date <= today
            && self.end_date.is_none_or(|e| today <= e)
    }

    /// The subscription part of a status: suspended, ended (cancelled or outside its dates) or
    /// valid.
    pub fn standing(&self, today: NaiveDate) -> ValidationStatus {
        if self.status == SubscriptionStatus::Suspended {
            ValidationStatus::SubscriptionSuspended
        } else if !self.is_running(today) {
            ValidationStatus::SubscriptionEnded
        } else {
            ValidationStatus::Valid
        }
    }
}

/// What a new subscription is made from (its dates still to be defaulted by [`dates`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewSubscription {
    pub subscriber_id: String,
    pub offer: String,
    pub begin_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    pub trial_days: Option<u32>,
}

/// The actions on a subscription's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Suspend,
    Resume,
    Cancel,
}

impl Action {
    /// The webhook event type (DESIGN §12).
    pub fn webhook_event(self) -> &'static str {
        match self {
            Action::Suspend => "subscription.suspended",
            Action::Resume => "subscription.resumed",
            Action::Cancel => "subscription.cancelled",
        }
    }

    /// The audit action name.
    pub fn event(self) -> &'static str {
        match self {
            Action::Suspend => "subscription.suspend",
            Action::Resume => "subscription.resume",
            Action::Cancel => "subscription.cancel",
        }
    }
}

/// A cancelled subscription cannot be suspended or resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the subscription is cancelled; create a new one")]
pub struct Cancelled;

/// The status `action` leads to from `current`: `None` when nothing changes (every action is
/// idempotent; resuming a subscription that is not suspended changes nothing).
pub fn transition(
    current: SubscriptionStatus,
    action: Action,
) -> Result<Option<SubscriptionStatus>, Cancelled> {
    let target = match action {
        Action::Suspend => SubscriptionStatus::Suspended,
        Action::Resume => SubscriptionStatus::Active,
        Action::Cancel => SubscriptionStatus::Cancelled,
    };
    if current == target {
        return Ok(None);
    }
    if current == SubscriptionStatus::Cancelled {
        return Err(Cancelled);
    }
    if action == Action::Resume && current != SubscriptionStatus::Suspended {
        return Ok(None);
    }
    Ok(Some(target))
}

/// A subscription's dates: `begin` defaults to `today`; the end is `end`, or `begin +
/// trial_days`, or none (open-ended).
pub fn dates(
    begin: Option<NaiveDate>,
    end: Option<NaiveDate>,
    trial_days: Option<u32>,
    today: NaiveDate,
) -> Result<(NaiveDate, Option<NaiveDate>), Invalid> {
    let begin = begin.unwrap_or(today);
    let end = match (end, trial_days) {
        (Some(_), Some(_)) => return Err(Invalid::new("give end_date or trial_days, not both")),
        (Some(e), None) => Some(e),
        (None, Some(d)) if d == 0 || d > MAX_TRIAL_DAYS => {
            return Err(Invalid(format!(
                "trial_days must be between 1 and {MAX_TRIAL_DAYS}"
            )));
        }
        (None, Some(d)) => Some(begin + Duration::days(i64::from(d))),
        (None, None) => None,
    };
    if end.is_some_and(|e| e < begin) {
        return Err(Invalid::new("end_date is before begin_date"));
    }
    Ok((begin, end))
}

/// Checks a subscriber's name and e-mail; returns them trimmed (an empty e-mail is none).
pub fn subscriber<'a>(
    name: &'a str,
    email: Option<&'a str>,
) -> Result<(&'a str, Option<&'a str>), Invalid> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(Invalid::new("name must be 1 to 200 characters"));
    }
    let email = email.map(str::trim).filter(|e| !e.is_empty());
    if let Some(e) = email
        && (e.len() > 254 || !e.contains('@') || e.chars().any(char::is_whitespace))
    {
        return Err(Invalid::new("email is not a valid address"));
    }
    Ok((name, email))
}

/// A date as `YYYY-MM-DD` (what GLPI and the token claims carry). Chrono's `Display` writes
/// exactly that for years 0 to 9999 without parsing a format string on every call (which cost
/// 2% of a cache-off `/info`); other years keep the `%Y-%m-%d` form.
pub fn iso_date(d: chrono::NaiveDate) -> String {
    use chrono::Datelike;
    if (0..=9999).contains(&d.year()) {
        d.to_string()
    } else {
        d.format("%Y-%m-%d").to_string()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn iso_dates_are_the_format_strings() {
        for (y, m, d) in [
            (2026, 12, 6),
            (1, 1, 1),
            (999, 3, 4),
            (9999, 12, 31),
            (10000, 1, 1),
        ] {
            let date = chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap();
            assert_eq!(iso_date(date), date.format("%Y-%m-%d").to_string());
        }
    }

    pub(crate) fn sub(status: SubscriptionStatus, begin: &str, end: Option<&str>) -> Subscription {
        Subscription {
            id: "s".into(),
            subscriber_id: "o".into(),
            offer: "basic".into(),
            begin_date: begin.parse().unwrap(),
            end_date: end.map(|e| e.parse().unwrap()),
            status,
            trial: false,
            created_at: "2026-01-01T00:00:00".parse().unwrap(),
            updated_at: "2026-01-01T00:00:00".parse().unwrap(),
        }
    }

    #[test]
    fn transitions_are_idempotent_and_a_cancelled_subscription_stays_cancelled() {
        use Action::*;
        use SubscriptionStatus::*;
        assert_eq!(transition(Active, Suspend), Ok(Some(Suspended)));
        assert_eq!(transition(Suspended, Suspend), Ok(None));
        assert_eq!(transition(Suspended, Resume), Ok(Some(Active)));
        assert_eq!(transition(Active, Resume), Ok(None));
        assert_eq!(transition(Cancelled, Cancel), Ok(None));
        assert_eq!(transition(Cancelled, Resume), Err(super::Cancelled));
        assert_eq!(transition(Suspended, Cancel), Ok(Some(Cancelled)));
    }

    #[test]
    fn dates_default_to_today_and_a_trial_sets_the_end() {
        let today: NaiveDate = "2026-06-01".parse().unwrap();
        assert_eq!(dates(None, None, None, today), Ok((today, None)));
        let (b, e) = dates(None, None, Some(30), today).unwrap();
        assert_eq!((b, e.unwrap().to_string()), (today, "2026-07-01".into()));
        assert!(dates(None, Some(today), Some(3), today).is_err());
        assert!(dates(None, None, Some(0), today).is_err());
        assert!(
            dates(
                Some(today),
                Some("2026-05-01".parse().unwrap()),
                None,
                today
            )
            .is_err()
        );
    }
}
