//! `subscribers` and `subscriptions` subcommands.

use super::{Ctx, print, query};
use crate::config::{SubscribersCmd, SubscriptionsCmd};
use crate::db::{subscribers, subscriptions};
use crate::domain::subscription::Action;
use crate::http::dto::{CreateSubscriptionRequest, SubscriberView, SubscriptionView};

/// `subscribers create | list | show`.
pub(super) fn subscribers(ctx: Ctx<'_>, cmd: SubscribersCmd) -> anyhow::Result<()> {
    let Ctx { c, now, .. } = ctx;
    match cmd {
        SubscribersCmd::Create { name, email } => print(&SubscriberView::from(
            subscribers::create(c, &name, email.as_deref(), now)?,
        )),
        SubscribersCmd::List(p) => {
            print(&subscribers::list(c, &query(&p))?.map(SubscriberView::from))
        }
        SubscribersCmd::Show { id } => print(&SubscriberView::from(subscribers::get(c, &id)?)),
    }
}

/// `subscriptions create | list | show | suspend | resume | cancel`.
pub(super) fn subscriptions(ctx: Ctx<'_>, cmd: SubscriptionsCmd) -> anyhow::Result<()> {
    let today = ctx.now.date();
    match cmd {
        SubscriptionsCmd::Create {
            subscriber_id,
            offer,
            begin_date,
            end_date,
            trial_days,
        } => {
            let req = CreateSubscriptionRequest {
                subscriber_id,
                offer,
                begin_date,
                end_date,
                trial_days,
            };
            let row = subscriptions::create(ctx.c, &req.into(), ctx.now, &ctx.actor)?;
            print(&SubscriptionView::new(row, today))
        }
        SubscriptionsCmd::List(p) => {
            print(&subscriptions::list(ctx.c, &query(&p))?.map(|s| SubscriptionView::new(s, today)))
        }
        SubscriptionsCmd::Show { id } => print(&SubscriptionView::new(
            subscriptions::get(ctx.c, &id)?,
            today,
        )),
        SubscriptionsCmd::Suspend { id } => transition(ctx, &id, Action::Suspend),
        SubscriptionsCmd::Resume { id } => transition(ctx, &id, Action::Resume),
        SubscriptionsCmd::Cancel { id } => transition(ctx, &id, Action::Cancel),
    }
}

fn transition(ctx: Ctx<'_>, id: &str, action: Action) -> anyhow::Result<()> {
    let row = subscriptions::transition(ctx.c, id, action, ctx.now, &ctx.actor)?;
    print(&SubscriptionView::new(row, ctx.now.date()))
}
