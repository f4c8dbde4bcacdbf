//! `signing-keys` subcommands.

use super::{Ctx, print};
use crate::app::open_signer;
use crate::config::{Settings, SigningKeysCmd};
use crate::db::{Db, signing_keys};
use crate::domain::clock::Clock;
use crate::http::dto::SigningKeyView;
use crate::signing::{Lifetimes, published};

/// `signing-keys list` (read-only: no signer opened) `| rotate` (opens the signer, creating the
/// first key on a fresh database).
pub(super) fn signing_keys(
    settings: &Settings,
    db: &Db,
    ctx: Ctx<'_>,
    cmd: SigningKeysCmd,
) -> anyhow::Result<()> {
    let Ctx { c, now, actor } = ctx;
    match cmd {
        SigningKeysCmd::List => {
            let lifetimes = Lifetimes {
                ttl_secs: settings.token_ttl,
                grace_secs: settings.grace_period,
            };
            let items: Vec<SigningKeyView> = signing_keys::all(c)?
                .into_iter()
                .map(|r| {
                    let published = published(&r, settings.test_mode, lifetimes, now);
                    SigningKeyView::with(r, published)
                })
                .collect();
            print(&items)
        }
        SigningKeysCmd::Rotate => {
            let signer = open_signer(settings, db, &Clock::default())?;
            print(&SigningKeyView::new(
                signer.rotate(c, now, &actor)?,
                &signer,
                now,
            ))
        }
    }
}
