//! Portal accounts: the rules for emails, passwords, roles and the per-account login limit.
//! Pure: no actix, no diesel, no hashing (the password hash is made in `http::portal`).

use chrono::{Duration, NaiveDateTime};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The shortest password accepted (in characters).
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The longest password accepted (in bytes): hashing is deliberately slow, so a
/// megabyte-long "password" must not reach it.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Failed logins an account allows per [`LOGIN_WINDOW_SECS`]; the next one answers `429`.
pub const MAX_FAILED_LOGINS: i32 = 10;
/// The per-account login window (one hour).
pub const LOGIN_WINDOW_SECS: i64 = 3600;

/// Why an input was refused (shown to the person who typed it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountInputError {
    Email,
    PasswordTooShort,
    PasswordTooLong,
    Name,
}

impl fmt::Display for AccountInputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccountInputError::Email => f.write_str("enter a valid email address"),
            AccountInputError::PasswordTooShort => write!(
                f,
                "the password must be at least {MIN_PASSWORD_CHARS} characters"
            ),
            AccountInputError::PasswordTooLong => {
                write!(f, "the password must be at most {MAX_PASSWORD_BYTES} bytes")
            }
            AccountInputError::Name => f.write_str("the name must be 1 to 200 characters"),
        }
    }
}

impl std::error::Error for AccountInputError {}

/// An email as stored and compared: trimmed and lower-cased, so `Ann@Example.COM` and
/// `ann@example.com` are one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Normalises and checks an address (one `@`, something on each side, a dot in the
    /// domain, no spaces, at most 254 bytes).
    pub fn parse(raw: &str) -> Result<Email, AccountInputError> {
        let e = raw.trim().to_lowercase();
        let ok = e.len() <= 254
            && !e.chars().any(|c| c.is_whitespace() || c.is_control())
            && match e.split_once('@') {
                Some((local, domain)) => {
                    !local.is_empty()
                        && !domain.contains('@')
                        && domain.contains('.')
                        && !domain.starts_with('.')
                        && !domain.ends_with('.')
                }
                None => false,
            };
        if ok {
            Ok(Email(e))
        } else {
            Err(AccountInputError::Email)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks a new password against the policy (length only: at least 12 characters).
pub fn check_password(pw: &str) -> Result<(), AccountInputError> {
    if pw.len() > MAX_PASSWORD_BYTES {
        return Err(AccountInputError::PasswordTooLong);
    }
    if pw.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AccountInputError::PasswordTooShort);
    }
    Ok(())
}

/// Checks a display name: 1 to 200 characters after trimming; any character is allowed
/// (it is escaped when shown, never refused for containing `<`).
pub fn check_name(name: &str) -> Result<&str, AccountInputError> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 200 {
        return Err(AccountInputError::Name);
    }
    Ok(n)
}

/// A member's role within a subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything: made by sign-up.
    Owner,
    /// Release instances, regenerate keys, invite members.
    Manager,
    /// Read only.
    Viewer,
}

/// What a member may try to do in the portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortalAction {
    /// See the dashboard.
    View,
    /// Release a bound instance.
    ReleaseInstance,
    /// Replace a key by a new one.
    RegenerateKey,
    /// Invite someone to the organisation.
    Invite,
    /// Change or remove members.
    ManageMembers,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Manager => "manager",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "owner" => Some(Role::Owner),
            "manager" => Some(Role::Manager),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }

    /// Whether a member with this role may invite `role` (managers invite managers and
    /// viewers; owners anyone).
    pub fn may_invite(self, role: Role) -> bool {
        match self {
            Role::Owner => true,
            Role::Manager => role != Role::Owner,
            Role::Viewer => false,
        }
    }

    /// Whether this role may do `action`.
    pub fn may(self, action: PortalAction) -> bool {
        use PortalAction::*;
        match self {
            Role::Owner => true,
            Role::Manager => matches!(action, View | ReleaseInstance | RegenerateKey | Invite),
            Role::Viewer => action == View,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The per-account login limit, from the account's counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginAllowance {
    /// The account may try (its counter may have to start a new window).
    Open { new_window: bool },
    /// Over the limit until the window ends: retry after this many seconds.
    Limited { retry_after: u64 },
}

/// Whether an account whose window began at `since` with `failed` failures may try now.
pub fn login_allowance(
    failed: i32,
    since: Option<NaiveDateTime>,
    now: NaiveDateTime,
) -> LoginAllowance {
    match since {
        Some(s) if now < s + Duration::seconds(LOGIN_WINDOW_SECS) => {
            if failed >= MAX_FAILED_LOGINS {
                let left = (s + Duration::seconds(LOGIN_WINDOW_SECS) - now).num_seconds();
                LoginAllowance::Limited {
                    retry_after: left.max(1) as u64,
                }
            } else {
                LoginAllowance::Open { new_window: false }
            }
        }
        _ => LoginAllowance::Open { new_window: true },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> NaiveDateTime {
        chrono::DateTime::from_timestamp(1_800_000_000 + secs, 0)
            .unwrap()
            .naive_utc()
    }

    #[test]
    fn emails_are_trimmed_and_lower_cased_and_need_an_at_and_a_domain() {
        assert_eq!(
            Email::parse("  Ann@Example.COM ").unwrap().as_str(),
            "ann@example.com"
        );
        for bad in [
            "",
            "ann",
            "ann@",
            "@example.com",
            "a b@example.com",
            "a@b@c.d",
            "a@localhost",
            "a@.com",
        ] {
            assert_eq!(Email::parse(bad), Err(AccountInputError::Email), "{bad}");
        }
    }

    #[test]
    fn passwords_need_twelve_characters_counted_as_characters() {
        assert_eq!(
            check_password("short"),
            Err(AccountInputError::PasswordTooShort)
        );
        assert!(check_password("twelve chars").is_ok());
        assert!(
            check_password("ééééééééééé").is_err(),
            "11 characters, 22 bytes"
        );
        assert_eq!(
            check_password(&"x".repeat(2000)),
            Err(AccountInputError::PasswordTooLong)
        );
    }

    #[test]
    fn names_may_hold_any_character_but_not_be_empty() {
        assert_eq!(
            check_name(" <script>alert(1)</script> "),
            Ok("<script>alert(1)</script>")
        );
        assert!(check_name("   ").is_err());
    }

    #[test]
    fn viewers_only_look_managers_release_and_regenerate_owners_do_everything() {
        use PortalAction::*;
        for a in [View, ReleaseInstance, RegenerateKey, Invite, ManageMembers] {
            assert!(Role::Owner.may(a));
            assert_eq!(Role::Viewer.may(a), a == View);
        }
        assert!(Role::Manager.may(ReleaseInstance) && Role::Manager.may(Invite));
        assert!(!Role::Manager.may(ManageMembers));
        assert_eq!(
            serde_json::to_string(&Role::Manager).unwrap(),
            "\"manager\""
        );
        assert_eq!(Role::parse("viewer"), Some(Role::Viewer));
    }

    #[test]
    fn the_eleventh_failure_in_an_hour_is_limited_until_the_hour_ends() {
        assert_eq!(
            login_allowance(0, None, t(0)),
            LoginAllowance::Open { new_window: true }
        );
        assert_eq!(
            login_allowance(9, Some(t(0)), t(10)),
            LoginAllowance::Open { new_window: false }
        );
        assert_eq!(
            login_allowance(10, Some(t(0)), t(600)),
            LoginAllowance::Limited { retry_after: 3000 }
        );
        assert_eq!(
            login_allowance(10, Some(t(0)), t(3600)),
            LoginAllowance::Open { new_window: true }
        );
    }
}
