//! Invitation keys and the accounts they create (DESIGN §11.3). A use is taken by one
//! conditional update in the transaction that inserts the account (as for enrollment keys), and
//! the unique index on the account's email decides a race between two redemptions of one email.

use super::audit::{self, Actor};
use super::kinds::{self, event};
use super::models::new_id;
use super::page::{ListQuery, Page, paginate};
use super::schema::accounts::dsl as a;
use super::schema::invitations::dsl as i;
use super::{AnyConnection, Error, Result, Transact, Txn, UniqueHit, unique_violation};
use crate::domain::invitation::{Account, Invitation, Role};
use crate::domain::key::KeyStatus;
use crate::domain::kind::UseRefusal;
use crate::domain::views::AccountView;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use glpi_network_shared::{KeyKind, PlainKey};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = super::schema::invitations)]
struct Row {
    id: String,
    subscriber_id: String,
    role: String,
    key_hash: String,
    key_prefix: String,
    status: String,
    max_uses: i32,
    uses: i32,
    expires_at: Option<NaiveDateTime>,
    created_at: NaiveDateTime,
    revoked_at: Option<NaiveDateTime>,
    ver: i64,
}

impl From<Row> for Invitation {
    fn from(r: Row) -> Self {
        Invitation {
            id: r.id,
            subscriber_id: r.subscriber_id,
            role: Role::parse(&r.role).unwrap_or(Role::Viewer),
            key_prefix: r.key_prefix,
            status: KeyStatus::parse(&r.status).unwrap_or(KeyStatus::Revoked),
            max_uses: r.max_uses,
            uses: r.uses,
            expires_at: r.expires_at,
            created_at: r.created_at,
            revoked_at: r.revoked_at,
            ver: r.ver,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = super::schema::accounts)]
struct AccountRow {
    id: String,
    subscriber_id: String,
    name: String,
    email: String,
    password_hash: String,
    role: String,
    created_at: NaiveDateTime,
}

impl From<AccountRow> for Account {
    fn from(r: AccountRow) -> Self {
        Account {
            id: r.id,
            subscriber_id: r.subscriber_id,
            name: r.name,
            email: r.email,
            role: Role::parse(&r.role).unwrap_or(Role::Viewer),
            created_at: r.created_at,
        }
    }
}

/// The password hash of an account that cannot sign in (no password matches it).
pub const NO_PASSWORD: &str = "!";

/// A new invitation.
pub struct NewInvitation<'a> {
    pub subscriber_id: &'a str,
    pub role: Role,
    pub max_uses: i32,
    pub expires_at: Option<NaiveDateTime>,
    pub status: KeyStatus,
}

/// Inserts an invitation (inside the caller's transaction).
pub fn insert(
    c: &mut Txn<'_>,
    new: &NewInvitation<'_>,
    plaintext: &PlainKey,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<Invitation> {
    super::subscribers::get(c, new.subscriber_id)?;
    let row = Row {
        id: new_id(),
        subscriber_id: new.subscriber_id.to_owned(),
        role: new.role.as_str().to_owned(),
        key_hash: plaintext.hash(),
        key_prefix: plaintext.display_prefix(),
        status: new.status.as_str().to_owned(),
        max_uses: new.max_uses,
        uses: 0,
        expires_at: new.expires_at,
        created_at: now,
        revoked_at: (new.status == KeyStatus::Revoked).then_some(now),
        ver: 1,
    };
    diesel::insert_into(i::invitations)
        .values(&row)
        .execute(c.conn())
        .map_err(|err| match unique_violation(&err) {
            Some(UniqueHit::KeyHash) => Error::Conflict("this key string already exists".into()),
            _ => err.into(),
        })?;
    let mut ev = event(
        actor,
        "invitation.issue",
        "ok",
        now,
        Some(&row.id),
        &row.key_prefix,
    );
    ev.detail = Some(format!(
        "subscriber {}; role {}; max_uses {}",
        row.subscriber_id, row.role, row.max_uses
    ));
    audit::record(c, &ev)?;
    Ok(row.into())
}

/// Issues an invitation with a new random key; returns it and the plaintext (shown once).
pub fn issue(
    c: &mut impl Transact,
    new: &NewInvitation<'_>,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<(Invitation, PlainKey)> {
    kinds::check_expiry(new.expires_at, now)?;
    let plaintext = PlainKey::generate_kind(KeyKind::Invitation);
    let row = kinds::txn(c, |c| insert(c, new, &plaintext, now, actor))?;
    Ok((row, plaintext))
}

fn find_by_key(c: &mut AnyConnection, key: &PlainKey) -> Result<Option<Invitation>> {
    Ok(i::invitations
        .filter(i::key_hash.eq(key.hash()))
        .select(Row::as_select())
        .first(c)
        .optional()?
        .map(Invitation::from))
}

pub fn get(c: &mut AnyConnection, id: &str) -> Result<Invitation> {
    i::invitations
        .find(id)
        .select(Row::as_select())
        .first(c)
        .optional()?
        .map(Invitation::from)
        .ok_or_else(|| Error::NotFound(format!("no invitation {id}")))
}

pub fn list(c: &mut AnyConnection, q: &ListQuery) -> Result<Page<Invitation>> {
    q.check(c, &super::keys::STATUSES)?;
    let limit = q.limit();
    let mut query = i::invitations.select(Row::as_select()).into_boxed();
    if let Some(cur) = &q.cursor {
        query = query.filter(i::id.gt(cur.clone()));
    }
    if let Some(v) = &q.subscriber_id {
        query = query.filter(i::subscriber_id.eq(v.clone()));
    }
    if let Some(v) = &q.status {
        query = query.filter(i::status.eq(v.clone()));
    }
    let rows: Vec<Row> = query.order(i::id.asc()).limit(limit + 1).load(c)?;
    Ok(paginate(rows, limit, |r| r.id.clone(), Invitation::from))
}

/// Revokes an invitation (idempotent); accounts it created stay.
pub fn revoke(
    c: &mut impl Transact,
    id: &str,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<Invitation> {
    kinds::txn(c, |c| {
        let row = get(c, id)?;
        if row.status == KeyStatus::Revoked {
            return Ok(row);
        }
        diesel::update(i::invitations.find(id))
            .set((
                i::status.eq(KeyStatus::Revoked.as_str()),
                i::revoked_at.eq(Some(now)),
                i::ver.eq(i::ver + 1),
            ))
            .execute(c.conn())?;
        audit::record(
            c,
            &event(
                actor,
                "invitation.revoke",
                "ok",
                now,
                Some(id),
                &row.key_prefix,
            ),
        )?;
        get(c, id)
    })
}

/// Who redeems an invitation.
#[derive(Debug, Clone)]
pub struct Invitee {
    /// Normalised (trimmed, lower-cased).
    pub email: String,
    pub name: String,
    /// An Argon2id PHC string, or [`NO_PASSWORD`].
    pub password_hash: String,
}

/// A redemption, as `POST /v1/invitations/redemptions` answers it.
#[derive(Debug)]
pub struct Redeemed {
    pub invitation: Invitation,
    pub account: Account,
    /// `true` for a new account (`201`), `false` for the same email again (`200`).
    pub created: bool,
}

/// Redeems an invitation: the same email again answers its account and takes no use; an email
/// of another subscriber is `email_taken`; a new one takes a use or is `invitation_exhausted`.
pub fn redeem(
    c: &mut impl Transact,
    key: &PlainKey,
    who: &Invitee,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<Redeemed> {
    let result = kinds::retry_races(|| kinds::txn(c, |c| redeem_once(c, key, who, now, actor)));
    if let Err(err) = &result {
        let key_id = find_by_key(c, key).ok().flatten().map(|k| k.id);
        kinds::record_refusal(c, actor, "invitation.redeem", key, key_id, err, now, |ev| {
            ev.detail = Some(format!("email {}", who.email));
        });
    }
    result
}

fn account_by_email(c: &mut AnyConnection, email: &str) -> Result<Option<Account>> {
    Ok(a::accounts
        .filter(a::email.eq(email))
        .select(AccountRow::as_select())
        .first(c)
        .optional()?
        .map(Account::from))
}

fn redeem_once(
    c: &mut Txn<'_>,
    key: &PlainKey,
    who: &Invitee,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<Redeemed> {
    let inv = find_by_key(c, key)?.ok_or(Error::UnknownKeyOf(KeyKind::Invitation))?;
    inv.usable(now)?;
    if let Some(account) = account_by_email(c, &who.email)? {
        if account.subscriber_id != inv.subscriber_id {
            return Err(UseRefusal::EmailTaken.into());
        }
        return Ok(Redeemed {
            invitation: inv,
            account,
            created: false,
        });
    }
    let taken = diesel::update(
        i::invitations
            .filter(i::id.eq(&inv.id))
            .filter(i::max_uses.eq(0).or(i::uses.lt(i::max_uses))),
    )
    .set(i::uses.eq(i::uses + 1))
    .execute(c.conn())?;
    if taken == 0 {
        return Err(UseRefusal::InvitationExhausted.into());
    }
    let row = AccountRow {
        id: new_id(),
        subscriber_id: inv.subscriber_id.clone(),
        name: who.name.clone(),
        email: who.email.clone(),
        password_hash: who.password_hash.clone(),
        role: inv.role.as_str().to_owned(),
        created_at: now,
    };
    diesel::insert_into(a::accounts)
        .values(&row)
        .execute(c.conn())?;
    let mut ev = event(
        actor,
        "invitation.redeem",
        "ok",
        now,
        Some(&inv.id),
        &inv.key_prefix,
    );
    ev.detail = Some(format!(
        "account {}; email {}; role {}",
        row.id, row.email, row.role
    ));
    audit::record(c, &ev)?;
    redeemed(c, &inv.id, row.into(), now)
}

/// A new account made by a redemption: its webhook event, and the invitation as it is now.
fn redeemed(c: &mut Txn<'_>, id: &str, account: Account, now: NaiveDateTime) -> Result<Redeemed> {
    let view = AccountView::from(account.clone());
    c.emit("invitation.redeemed", &view, now);
    Ok(Redeemed {
        invitation: get(c, id)?,
        account,
        created: true,
    })
}
