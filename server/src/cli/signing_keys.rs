//! `signing-keys` subcommands.

use super::{Ctx, print};
use crate::app::open_signer;
use crate::config::{Settings, SigningKeysCmd};
use crate::db::{Db, signing_keys};
use crate::domain::clock::Clock;
use crate::http::dto::SigningKeyView;

/// `signing-keys list | rotate` (opens the signer, creating the first key on a fresh database).
pub(super) fn signing_keys(
    settings: &Settings,
    db: &Db,
    ctx: Ctx<'_>,
    cmd: SigningKeysCmd,
) -> anyhow::Result<()> {
    let Ctx { c, now, actor } = ctx;
    let signer = open_signer(settings, db, &Clock::default())?;
    match cmd {
        SigningKeysCmd::List => {
            let items: Vec<SigningKeyView> = signing_keys::all(c)?
                .into_iter()
                .map(|r| SigningKeyView::new(r, &signer, now))
                .collect();
            print(&items)
        }
        SigningKeysCmd::Rotate => print(&SigningKeyView::new(
            signer.rotate(c, now, &actor)?,
            &signer,
            now,
        )),
    }
}
