//! Portal accounts and web sessions (portal and vendor console), and the reads the
//! subscriber's dashboard needs. Sign-up reuses the subscriber, subscription and key
//! functions of the admin API, in one transaction.

use super::audit::{self, Actor};
use super::models::{KeyRow, RegistrationRow, SubscriberRow, SubscriptionRow, new_id};
use super::schema::accounts::dsl as a;
use super::schema::registration_keys::dsl as k;
use super::schema::registrations::dsl as r;
use super::schema::subscriptions::dsl as s;
use super::schema::web_sessions::dsl as w;
use super::{AnyConnection, Touches, Transact, Txn, keys, subscribers, subscriptions};
use super::{Error, Result};
use crate::domain::account::{Email, LoginAllowance, Role, login_allowance};
use crate::domain::key::{Key, KeyStatus};
use crate::domain::offer::FREE_OFFER;
use crate::domain::subscription::{NewSubscription, Subscription};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use glpi_network_shared::RegistrationKey;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = super::schema::accounts)]
pub struct AccountRow {
    pub id: String,
    pub subscriber_id: String,
    pub name: String,
    pub email: String,
    pub password_hash: String,
    pub role: String,
    pub created_at: NaiveDateTime,
    pub failed_logins: i32,
    pub failed_since: Option<NaiveDateTime>,
}

impl AccountRow {
    /// The account's role (an unknown stored value reads as the least privileged).
    pub fn role(&self) -> Role {
        Role::parse(&self.role).unwrap_or(Role::Viewer)
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = super::schema::web_sessions)]
pub struct SessionRow {
    pub token_hash: String,
    pub kind: String,
    pub account_id: Option<String>,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

/// Session kinds.
pub const PORTAL: &str = "portal";
pub const CONSOLE: &str = "console";

/// What sign-up creates.
pub struct SignedUp {
    pub account: AccountRow,
    pub key: Key,
    pub plaintext: RegistrationKey,
}

fn email_taken() -> Error {
    Error::Conflict("an account with this email already exists".into())
}

/// An account to create.
pub struct NewAccount<'a> {
    pub subscriber_id: &'a str,
    pub name: &'a str,
    pub email: &'a Email,
    /// Argon2id PHC string.
    pub password_hash: &'a str,
    pub role: Role,
}

/// Inserts an account (inside the caller's transaction); `409` when the email is taken (the
/// unique index decides races).
fn insert_account(c: &mut Txn<'_>, new: &NewAccount<'_>, now: NaiveDateTime) -> Result<AccountRow> {
    let account = AccountRow {
        id: new_id(),
        subscriber_id: new.subscriber_id.to_owned(),
        name: new.name.to_owned(),
        email: new.email.as_str().to_owned(),
        password_hash: new.password_hash.to_owned(),
        role: new.role.as_str().to_owned(),
        created_at: now,
        failed_logins: 0,
        failed_since: None,
    };
    diesel::insert_into(a::accounts)
        .values(&account)
        .execute(c.conn())
        .map_err(|e| match super::unique_violation(&e) {
            Some(_) => email_taken(),
            None => e.into(),
        })?;
    Ok(account)
}

/// Creates a subscriber, its running `registered` subscription, a key and the owner account,
/// all or nothing. `409` when the email is taken.
pub fn signup(
    conn: &mut impl Transact,
    name: &str,
    email: &Email,
    password_hash: &str,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<SignedUp> {
    let plaintext = RegistrationKey::generate();
    conn.write(Touches::Anything, |c| {
        if find_by_email(c, email)?.is_some() {
            return Err(email_taken());
        }
        let sub = subscribers::create(c, name, Some(email.as_str()), now)?;
        let free = NewSubscription {
            subscriber_id: sub.id.clone(),
            offer: FREE_OFFER.to_owned(),
            ..Default::default()
        };
        let subscription = subscriptions::create(c, &free, now, actor)?;
        let key = keys::insert(
            c,
            &subscription.id,
            &plaintext,
            KeyStatus::Active,
            None,
            now,
            actor,
        )?;
        let owner = NewAccount {
            subscriber_id: &sub.id,
            name: &sub.name,
            email,
            password_hash,
            role: Role::Owner,
        };
        let account = insert_account(c, &owner, now)?;
        let mut ev = actor.event("account.signup", "ok", now);
        ev.key_id = Some(key.id.clone());
        ev.key_prefix = Some(key.key_prefix.clone());
        ev.detail = Some(format!(
            "account {} (owner) of subscriber {}",
            account.id, sub.id
        ));
        audit::record(c, &ev)?;
        Ok(SignedUp {
            account,
            key,
            plaintext: plaintext.clone(),
        })
    })
}

/// Adds a member to an existing subscriber (what an accepted invitation does). `409` when the
/// email is taken.
pub fn add_member(
    conn: &mut impl Transact,
    new: &NewAccount<'_>,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<AccountRow> {
    conn.write(Touches::AuditOnly, |c| {
        subscribers::get(c, new.subscriber_id)?;
        let account = insert_account(c, new, now)?;
        let mut ev = actor.event("account.add_member", "ok", now);
        ev.detail = Some(format!(
            "account {} ({}) of subscriber {}",
            account.id, new.role, new.subscriber_id
        ));
        audit::record(c, &ev)?;
        Ok(account)
    })
}

pub fn find_by_email(c: &mut AnyConnection, email: &Email) -> Result<Option<AccountRow>> {
    Ok(a::accounts
        .filter(a::email.eq(email.as_str()))
        .select(AccountRow::as_select())
        .first(c)
        .optional()?)
}

/// The accounts of a subscriber, oldest first.
pub fn of_subscriber(c: &mut AnyConnection, subscriber_id: &str) -> Result<Vec<AccountRow>> {
    Ok(a::accounts
        .filter(a::subscriber_id.eq(subscriber_id))
        .order(a::id.asc())
        .select(AccountRow::as_select())
        .load(c)?)
}

/// The accounts of several subscribers (the console's subscriber list).
pub fn of_subscribers(c: &mut AnyConnection, ids: &[String]) -> Result<Vec<AccountRow>> {
    Ok(a::accounts
        .filter(a::subscriber_id.eq_any(ids))
        .order(a::id.asc())
        .select(AccountRow::as_select())
        .load(c)?)
}

/// Whether the account may try to log in now (the per-account limit).
pub fn allowance(account: &AccountRow, now: NaiveDateTime) -> LoginAllowance {
    login_allowance(account.failed_logins, account.failed_since, now)
}

/// Counts a failed login for the account (starting a new window when the last one is over)
/// and audits it. Returns the allowance after this failure.
pub fn note_failed_login(
    c: &mut impl Transact,
    account_id: &str,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<()> {
    c.write(Touches::AuditOnly, |c| {
        let acc: AccountRow = a::accounts
            .find(account_id)
            .select(AccountRow::as_select())
            .first(c.conn())?;
        match allowance(&acc, now) {
            LoginAllowance::Open { new_window: true } => {
                diesel::update(a::accounts.find(account_id))
                    .set((a::failed_logins.eq(1), a::failed_since.eq(Some(now))))
                    .execute(c.conn())?;
            }
            _ => {
                diesel::update(a::accounts.find(account_id))
                    .set(a::failed_logins.eq(a::failed_logins + 1))
                    .execute(c.conn())?;
            }
        }
        let mut ev = actor.event("account.login", "wrong_password", now);
        ev.detail = Some(format!("account {account_id}"));
        audit::record(c, &ev)
    })
}

// Account and session writes touch no key state: `Touches::AuditOnly` keeps the key cache.

/// Creates a session whose cookie token hashes to `token_hash` (and deletes expired ones); a
/// portal login also clears the account's failed-login counter. Audited.
pub fn open_session(
    c: &mut impl Transact,
    token_hash: &str,
    account: Option<&AccountRow>,
    now: NaiveDateTime,
    expires_at: NaiveDateTime,
    actor: &Actor,
) -> Result<()> {
    c.write(Touches::AuditOnly, |c| {
        // expired sessions go when new ones come
        diesel::delete(w::web_sessions.filter(w::expires_at.le(now))).execute(c.conn())?;
        let row = SessionRow {
            token_hash: token_hash.to_owned(),
            kind: if account.is_some() { PORTAL } else { CONSOLE }.to_owned(),
            account_id: account.map(|a| a.id.clone()),
            created_at: now,
            expires_at,
        };
        diesel::insert_into(w::web_sessions)
            .values(&row)
            .execute(c.conn())?;
        let action = match account {
            Some(acc) => {
                diesel::update(a::accounts.find(&acc.id))
                    .set((
                        a::failed_logins.eq(0),
                        a::failed_since.eq(None::<NaiveDateTime>),
                    ))
                    .execute(c.conn())?;
                "account.login"
            }
            None => "console.login",
        };
        let mut ev = actor.event(action, "ok", now);
        ev.detail = account.map(|acc| format!("account {}", acc.id));
        audit::record(c, &ev)
    })
}

/// The unexpired session of `kind` with this token hash, with its account for the portal.
pub fn find_session(
    c: &mut AnyConnection,
    token_hash: &str,
    kind: &str,
    now: NaiveDateTime,
) -> Result<Option<(SessionRow, Option<AccountRow>)>> {
    let Some(sess) = w::web_sessions
        .find(token_hash)
        .filter(w::kind.eq(kind))
        .filter(w::expires_at.gt(now))
        .select(SessionRow::as_select())
        .first(c)
        .optional()?
    else {
        return Ok(None);
    };
    let account = match &sess.account_id {
        Some(id) => Some(
            a::accounts
                .find(id)
                .select(AccountRow::as_select())
                .first(c)?,
        ),
        None => None,
    };
    Ok(Some((sess, account)))
}

/// Ends one session (logout). Audited.
pub fn close_session(
    c: &mut impl Transact,
    token_hash: &str,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<()> {
    c.write(Touches::AuditOnly, |c| {
        let n = diesel::delete(w::web_sessions.find(token_hash)).execute(c.conn())?;
        if n > 0 {
            audit::record(c, &actor.event("session.logout", "ok", now))?;
        }
        Ok(())
    })
}

/// Ends every session of a subscriber's accounts (a vendor's action). Returns how many.
pub fn end_sessions_of_subscriber(
    c: &mut impl Transact,
    subscriber_id: &str,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<usize> {
    c.write(Touches::AuditOnly, |c| {
        subscribers::get(c, subscriber_id)?;
        let ids: Vec<String> = a::accounts
            .filter(a::subscriber_id.eq(subscriber_id))
            .select(a::id)
            .load(c.conn())?;
        let n =
            diesel::delete(w::web_sessions.filter(w::account_id.eq_any(ids))).execute(c.conn())?;
        let mut ev = actor.event("subscriber.end_sessions", "ok", now);
        ev.detail = Some(format!("subscriber {subscriber_id}: {n} session(s) ended"));
        audit::record(c, &ev)?;
        Ok(n)
    })
}

/// What a subscriber's dashboard shows: its subscriptions, their usable keys and the
/// instances bound to them.
pub struct Overview {
    pub subscriber: SubscriberRow,
    pub subscriptions: Vec<Subscription>,
    pub keys: Vec<KeyRow>,
    pub bindings: Vec<RegistrationRow>,
    pub members: Vec<AccountRow>,
    /// The subscriber's plugin licenses (the first 500).
    pub licenses: Vec<crate::domain::license::License>,
}

pub fn overview(c: &mut AnyConnection, subscriber_id: &str) -> Result<Overview> {
    let subscriber = subscribers::get(c, subscriber_id)?;
    let subs: Vec<Subscription> = s::subscriptions
        .filter(s::subscriber_id.eq(subscriber_id))
        .order(s::id.asc())
        .select(SubscriptionRow::as_select())
        .load(c)?
        .into_iter()
        .map(Subscription::from)
        .collect();
    let sub_ids: Vec<&str> = subs.iter().map(|x| x.id.as_str()).collect();
    let keys: Vec<KeyRow> = k::registration_keys
        .filter(k::subscription_id.eq_any(&sub_ids))
        .filter(k::status.ne(KeyStatus::Revoked.as_str()))
        .order(k::id.asc())
        .select(KeyRow::as_select())
        .load(c)?;
    let key_ids: Vec<&str> = keys.iter().map(|x| x.id.as_str()).collect();
    let bindings = r::registrations
        .filter(r::key_id.eq_any(&key_ids))
        .filter(r::released_at.is_null())
        .order(r::id.asc())
        .select(RegistrationRow::as_select())
        .load(c)?;
    let members = of_subscriber(c, subscriber_id)?;
    let of_subscriber = super::page::ListQuery {
        subscriber_id: Some(subscriber_id.to_owned()),
        limit: Some(super::page::MAX_LIMIT),
        ..Default::default()
    };
    let licenses = super::licenses::list(c, &of_subscriber)?.items;
    Ok(Overview {
        subscriber,
        subscriptions: subs,
        keys,
        bindings,
        members,
        licenses,
    })
}

/// The subscriber owning a key (through its subscription), if the key exists.
pub fn key_owner(c: &mut AnyConnection, key_id: &str) -> Result<Option<String>> {
    Ok(k::registration_keys
        .inner_join(s::subscriptions)
        .filter(k::id.eq(key_id))
        .select(s::subscriber_id)
        .first(c)
        .optional()?)
}

/// The subscriber owning a registration (through its key), if it exists.
pub fn registration_owner(c: &mut AnyConnection, reg_id: &str) -> Result<Option<String>> {
    let key_id: Option<String> = r::registrations
        .find(reg_id)
        .select(r::key_id)
        .first(c)
        .optional()?;
    match key_id {
        Some(kid) => key_owner(c, &kid),
        None => Ok(None),
    }
}
