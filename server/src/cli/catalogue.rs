//! `offers` and `plugins` subcommands.

use super::{Ctx, print};
use crate::config::{OffersCmd, PluginsCmd};
use crate::db::{catalogue, offers, plugins};
use crate::http::dto::OfferView;

/// `offers list`.
pub(super) fn offers(ctx: Ctx<'_>, cmd: OffersCmd) -> anyhow::Result<()> {
    match cmd {
        OffersCmd::List => {
            let items: Vec<OfferView> = offers::list(ctx.c)?
                .into_iter()
                .map(OfferView::from)
                .collect();
            print(&items)
        }
    }
}

/// `plugins list` (read-only) `| import` (the demo plugins are seeded first, once per
/// database).
pub(super) fn plugins(ctx: Ctx<'_>, cmd: PluginsCmd) -> anyhow::Result<()> {
    let Ctx { c, now, .. } = ctx;
    match cmd {
        PluginsCmd::List => {
            let terms = crate::db::plugin_terms::all(c)?;
            let items: Vec<crate::domain::catalogue::PluginRecord> = plugins::all(c)?
                .iter()
                .map(|(r, v)| catalogue::record(r, v, "", true, terms.get(&r.key)))
                .collect();
            print(&items)
        }
        PluginsCmd::Import { file } => {
            catalogue::seed_demo_once(c, now)?;
            let n = catalogue::import_file(c, &file, now)?;
            eprintln!("imported {n} plugin(s) from {}", file.display());
            Ok(())
        }
    }
}
