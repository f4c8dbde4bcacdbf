//! `licenses`, `enrollment-keys` and `invitations` subcommands (DESIGN §11): issue, list, show
//! and revoke, as the admin API does.

use super::{Ctx, print, query};
use crate::config::PageArgs;
use crate::db::enrollments::{self, NewEnrollmentKey};
use crate::db::invitations::{self, NewInvitation};
use crate::db::licenses::{self, NewLicense};
use crate::domain::enrollment::check_text;
use crate::domain::invitation::{DEFAULT_VALIDITY_DAYS, Role};
use crate::domain::key::KeyStatus;
use crate::domain::kind::check_max_uses;
use crate::http::enrollments::EnrollmentKeyView;
use crate::http::invitations::InvitationView;
use crate::http::licenses::LicenseView;
use chrono::{DateTime, Utc};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum LicensesCmd {
    /// Issue a license of a commercial plugin (the plaintext key is printed once).
    Issue {
        #[arg(long)]
        subscriber: String,
        #[arg(long)]
        plugin: String,
        /// RFC 3339; default now + the plugin's license term.
        #[arg(long)]
        expires_at: Option<DateTime<Utc>>,
    },
    /// List licenses.
    List {
        #[command(flatten)]
        page: PageArgs,
        #[arg(long)]
        subscriber: Option<String>,
        #[arg(long)]
        plugin: Option<String>,
        #[arg(long)]
        status: Option<String>,
    },
    /// Show one license.
    Show { id: String },
    /// Revoke a license.
    Revoke { id: String },
}

#[derive(Subcommand)]
pub enum EnrollmentKeysCmd {
    /// Issue an enrollment key (the plaintext key is printed once).
    Issue {
        #[arg(long)]
        subscriber: String,
        #[arg(long)]
        entity: String,
        /// 0 = unlimited.
        #[arg(long)]
        max_uses: i64,
        #[arg(long)]
        expires_at: Option<DateTime<Utc>>,
    },
    /// List enrollment keys.
    List {
        #[command(flatten)]
        page: PageArgs,
        #[arg(long)]
        subscriber: Option<String>,
        #[arg(long)]
        status: Option<String>,
    },
    /// Show one enrollment key with its uses.
    Show { id: String },
    /// Revoke an enrollment key.
    Revoke { id: String },
}

#[derive(Subcommand)]
pub enum InvitationsCmd {
    /// Create an invitation (the plaintext key is printed once).
    Issue {
        #[arg(long)]
        subscriber: String,
        /// owner, manager or viewer.
        #[arg(long)]
        role: String,
        /// Default 1; 0 = unlimited.
        #[arg(long, default_value_t = 1)]
        max_uses: i64,
        /// RFC 3339; default 7 days from now.
        #[arg(long)]
        expires_at: Option<DateTime<Utc>>,
    },
    /// List invitations.
    List {
        #[command(flatten)]
        page: PageArgs,
        #[arg(long)]
        subscriber: Option<String>,
        #[arg(long)]
        status: Option<String>,
    },
    /// Show one invitation with its uses.
    Show { id: String },
    /// Revoke an invitation.
    Revoke { id: String },
}

/// `licenses issue | list | show | revoke`.
pub(super) fn licenses(ctx: Ctx<'_>, cmd: LicensesCmd) -> anyhow::Result<()> {
    let Ctx { c, now, actor } = ctx;
    match cmd {
        LicensesCmd::Issue {
            subscriber,
            plugin,
            expires_at,
        } => {
            let new = NewLicense {
                subscriber_id: &subscriber,
                plugin: &plugin,
                expires_at: expires_at.map(|t| t.naive_utc()),
                status: KeyStatus::Active,
            };
            let (row, plaintext) = licenses::issue(c, &new, now, &actor)?;
            let mut view = LicenseView::new(row, now);
            view.key = Some(plaintext.expose().to_owned());
            print(&view)
        }
        LicensesCmd::List {
            page,
            subscriber,
            plugin,
            status,
        } => {
            let mut q = query(&page);
            q.subscriber_id = subscriber;
            q.plugin = plugin;
            q.status = status;
            print(
                &licenses::list(c, &q)
                    .map_err(|e| {
                        super::as_flags(
                            e,
                            &[("subscriber_id", "--subscriber"), ("status", "--status")],
                        )
                    })?
                    .map(|l| LicenseView::new(l, now)),
            )
        }
        LicensesCmd::Show { id } => print(&LicenseView::new(licenses::get(c, &id)?, now)),
        LicensesCmd::Revoke { id } => print(&LicenseView::new(
            licenses::revoke(c, &id, now, &actor)?,
            now,
        )),
    }
}

/// `enrollment-keys issue | list | show | revoke`.
pub(super) fn enrollment_keys(ctx: Ctx<'_>, cmd: EnrollmentKeysCmd) -> anyhow::Result<()> {
    let Ctx { c, now, actor } = ctx;
    match cmd {
        EnrollmentKeysCmd::Issue {
            subscriber,
            entity,
            max_uses,
            expires_at,
        } => {
            let entity = check_text("entity", &entity)?;
            let new = NewEnrollmentKey {
                subscriber_id: &subscriber,
                entity: &entity,
                max_uses: check_max_uses(max_uses)?,
                expires_at: expires_at.map(|t| t.naive_utc()),
                status: KeyStatus::Active,
            };
            let (row, plaintext) = enrollments::issue(c, &new, now, &actor)?;
            let mut view = EnrollmentKeyView::new(row, now);
            view.key = Some(plaintext.expose().to_owned());
            print(&view)
        }
        EnrollmentKeysCmd::List {
            page,
            subscriber,
            status,
        } => {
            let mut q = query(&page);
            q.subscriber_id = subscriber;
            q.status = status;
            print(
                &enrollments::list(c, &q)
                    .map_err(|e| {
                        super::as_flags(
                            e,
                            &[("subscriber_id", "--subscriber"), ("status", "--status")],
                        )
                    })?
                    .map(|k| EnrollmentKeyView::new(k, now)),
            )
        }
        EnrollmentKeysCmd::Show { id } => {
            print(&EnrollmentKeyView::new(enrollments::get(c, &id)?, now))
        }
        EnrollmentKeysCmd::Revoke { id } => print(&EnrollmentKeyView::new(
            enrollments::revoke(c, &id, now, &actor)?,
            now,
        )),
    }
}

/// `invitations issue | list | show | revoke`.
pub(super) fn invitations(ctx: Ctx<'_>, cmd: InvitationsCmd) -> anyhow::Result<()> {
    let Ctx { c, now, actor } = ctx;
    match cmd {
        InvitationsCmd::Issue {
            subscriber,
            role,
            max_uses,
            expires_at,
        } => {
            let role = Role::parse(&role)
                .ok_or_else(|| anyhow::anyhow!("--role must be owner, manager or viewer"))?;
            let new = NewInvitation {
                subscriber_id: &subscriber,
                role,
                max_uses: check_max_uses(max_uses)?,
                expires_at: Some(
                    expires_at
                        .map(|t| t.naive_utc())
                        .unwrap_or(now + chrono::Duration::days(DEFAULT_VALIDITY_DAYS)),
                ),
                status: KeyStatus::Active,
            };
            let (row, plaintext) = invitations::issue(c, &new, now, &actor)?;
            let mut view = InvitationView::new(row, now);
            view.key = Some(plaintext.expose().to_owned());
            print(&view)
        }
        InvitationsCmd::List {
            page,
            subscriber,
            status,
        } => {
            let mut q = query(&page);
            q.subscriber_id = subscriber;
            q.status = status;
            print(
                &invitations::list(c, &q)
                    .map_err(|e| {
                        super::as_flags(
                            e,
                            &[("subscriber_id", "--subscriber"), ("status", "--status")],
                        )
                    })?
                    .map(|v| InvitationView::new(v, now)),
            )
        }
        InvitationsCmd::Show { id } => print(&InvitationView::new(invitations::get(c, &id)?, now)),
        InvitationsCmd::Revoke { id } => print(&InvitationView::new(
            invitations::revoke(c, &id, now, &actor)?,
            now,
        )),
    }
}
