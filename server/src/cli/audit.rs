//! `audit` subcommands.

use super::{Ctx, print, query};
use crate::config::AuditCmd;
use crate::db::audit;
use crate::http::dto::AuditView;

/// `audit list | verify` (`verify` exits 1 when the chain is broken).
pub(super) fn audit(ctx: Ctx<'_>, cmd: AuditCmd) -> anyhow::Result<()> {
    match cmd {
        AuditCmd::List { page, key } => {
            let mut q = query(&page);
            q.key_id = key;
            print(&audit::list(ctx.c, &q)?.map(AuditView::from))
        }
        AuditCmd::Verify => match audit::verify_chain(ctx.c)? {
            audit::ChainCheck::Intact { events } => {
                println!("audit chain intact: {events} events");
                Ok(())
            }
            audit::ChainCheck::Broken { id, reason } => {
                println!("audit chain broken at event {id}: {reason}");
                std::process::exit(1);
            }
        },
    }
}
