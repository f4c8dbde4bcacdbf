//! `webhooks` subcommands (DESIGN §12).

use super::{Ctx, print, query};
use crate::app::open_signer;
use crate::config::{Settings, WebhooksCmd};
use crate::db::{Db, webhooks};
use crate::domain::clock::Clock;
use crate::http::webhooks::{DeliveryView, WebhookRequest, WebhookView, create_webhook};

/// Whether the command only reads (`list`, `deliveries`): it then runs on a read-only
/// connection (DESIGN §14: no migration, nothing created).
pub(super) fn reads_only(cmd: &WebhooksCmd) -> bool {
    matches!(cmd, WebhooksCmd::List(_) | WebhooksCmd::Deliveries { .. })
}

/// `webhooks list | deliveries`, on a read-only connection.
pub(super) fn read(settings: &Settings, cmd: WebhooksCmd) -> anyhow::Result<()> {
    let c = &mut crate::db::read_only::connect(&settings.database_url())?;
    match cmd {
        WebhooksCmd::List(p) => print(&webhooks::list(c, &query(&p))?.map(WebhookView::from)),
        WebhooksCmd::Deliveries { id, page } => {
            print(&webhooks::deliveries(c, &id, &query(&page))?.map(DeliveryView::from))
        }
        _ => unreachable!("only the commands that read"),
    }
}

/// `webhooks create | delete | retry` (and the reads, on a read-write connection).
pub(super) fn webhooks(
    settings: &Settings,
    db: &Db,
    ctx: Ctx<'_>,
    cmd: WebhooksCmd,
) -> anyhow::Result<()> {
    let Ctx { c, now, actor } = ctx;
    match cmd {
        WebhooksCmd::List(p) => print(&webhooks::list(c, &query(&p))?.map(WebhookView::from)),
        WebhooksCmd::Create {
            url,
            events,
            description,
        } => {
            let signer = open_signer(settings, db, &Clock::default())?;
            let req = WebhookRequest {
                url,
                events,
                description,
            };
            let allow = settings.webhooks_allow_private;
            let (row, secret) = create_webhook(c, signer.master(), &req, allow, now, &actor)?;
            let mut view = WebhookView::from(row);
            view.secret = Some(secret);
            print(&view)
        }
        WebhooksCmd::Delete { id } => {
            webhooks::delete(c, &id, now, &actor)?;
            print(&serde_json::json!({"deleted": id}))
        }
        WebhooksCmd::Deliveries { id, page } => {
            print(&webhooks::deliveries(c, &id, &query(&page))?.map(DeliveryView::from))
        }
        WebhooksCmd::Retry { id, delivery_id } => print(&DeliveryView::from(webhooks::retry(
            c,
            &id,
            &delivery_id,
            now,
            &actor,
        )?)),
    }
}
