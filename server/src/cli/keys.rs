//! `keys` and `registrations` subcommands.

use super::{Ctx, print, query};
use crate::config::{BulkFormat, KeysCmd, RegistrationsCmd};
use crate::db::{self, Transact, audit::Actor, keys, registrations, subscribers, subscriptions};
use crate::http::dto::{
    CreateSubscriptionRequest, KeyView, SubscriberView, SubscriptionView, registration_view,
};

/// The query parameters of a key list and the `keys list` flags that set them.
const LIST_FLAGS: [(&str, &str); 4] = [
    ("subscription_id", "--subscription"),
    ("subscriber_id", "--subscriber"),
    ("status", "--status"),
    ("prefix", "--prefix"),
];

/// `keys issue | list | show | revoke | regenerate`.
pub(super) fn keys(ctx: Ctx<'_>, cmd: KeysCmd) -> anyhow::Result<()> {
    let Ctx { c, now, actor } = ctx;
    match cmd {
        KeysCmd::Issue {
            subscription,
            subscriber,
            offer,
            trial_days,
            end_date,
            expires_at,
            count,
            format,
        } => {
            let target = Target {
                subscription,
                subscriber,
                offer,
                trial_days,
                end_date,
            };
            let subscription_id = target.resolve(c, now, &actor)?;
            let expires = expires_at.map(|t| t.naive_utc());
            match count {
                None => {
                    let (row, plaintext) = keys::issue(c, &subscription_id, expires, now, &actor)?;
                    let mut view = KeyView::new(row, now);
                    view.key = Some(plaintext.expose().to_owned());
                    print(&view)
                }
                Some(n) => bulk_issue(c, &subscription_id, n, expires, now, &actor, format),
            }
        }
        KeysCmd::List {
            page,
            subscription,
            subscriber,
            status,
            prefix,
        } => {
            let mut q = query(&page);
            q.subscription_id = subscription;
            q.subscriber_id = subscriber;
            q.status = status;
            q.prefix = prefix;
            let page = keys::list(c, &q).map_err(|e| super::as_flags(e, &LIST_FLAGS))?;
            print(&page.map(|k| KeyView::new(k, now)))
        }
        KeysCmd::Show { id } => show(c, &id, now),
        KeysCmd::Revoke { id } => print(&KeyView::new(keys::revoke(c, &id, now, &actor)?, now)),
        KeysCmd::Regenerate { id } => {
            let (row, plaintext) = keys::regenerate(c, &id, now, &actor)?;
            let mut view = KeyView::new(row, now);
            view.key = Some(plaintext.expose().to_owned());
            print(&view)
        }
    }
}

/// How many candidates an ambiguous `keys show` lists at most.
const MAX_CANDIDATES: i64 = 20;

/// `keys show ID_OR_PREFIX`: `{"key", "subscription", "subscriber", "registration"}`, the last
/// `null` when the key is not bound. An ambiguous prefix is a usage error listing the keys.
fn show(c: &mut db::Conn, text: &str, now: chrono::NaiveDateTime) -> anyhow::Result<()> {
    let mut found = keys::find_by_id_or_prefix(c, text, MAX_CANDIDATES + 1)?;
    let key = match found.len() {
        0 => anyhow::bail!("no key has the id or display prefix {text:?}"),
        1 => found.remove(0),
        n => {
            let more = if n as i64 > MAX_CANDIDATES {
                " (and more)"
            } else {
                ""
            };
            let list: Vec<String> = found
                .iter()
                .take(MAX_CANDIDATES as usize)
                .map(|k| format!("  {} {} ({})", k.key_prefix, k.id, k.status.as_str()))
                .collect();
            return Err(super::UsageError(format!(
                "{text:?} matches several keys{more}; give one id:\n{}",
                list.join("\n")
            ))
            .into());
        }
    };
    let subscription = subscriptions::get(c, &key.subscription_id)?;
    let subscriber = subscribers::get(c, &subscription.subscriber_id)?;
    let bound = db::page::ListQuery {
        limit: Some(1),
        key_id: Some(key.id.clone()),
        ..Default::default()
    };
    let registration = registrations::list(c, &bound)?
        .items
        .pop()
        .map(|(r, p)| registration_view(r, p));
    print(&serde_json::json!({
        "key": KeyView::new(key, now),
        "subscription": SubscriptionView::new(subscription, now.date()),
        "subscriber": SubscriberView::from(subscriber),
        "registration": registration,
    }))
}

/// `registrations list | release`.
pub(super) fn registrations(ctx: Ctx<'_>, cmd: RegistrationsCmd) -> anyhow::Result<()> {
    let Ctx { c, now, actor } = ctx;
    match cmd {
        RegistrationsCmd::List {
            page,
            key,
            include_released,
        } => {
            let mut q = query(&page);
            q.key_id = key;
            q.include_released = Some(include_released);
            let page = registrations::list(c, &q)
                .map_err(|e| super::as_flags(e, &[("key_id", "--key")]))?;
            print(&page.map(|(r, p)| registration_view(r, p)))
        }
        RegistrationsCmd::Release { id } => {
            let row = registrations::release_by_id(c, &id, now, &actor)?;
            let (row, prefix) = registrations::with_prefix(c, row)?;
            print(&registration_view(row, prefix))
        }
    }
}

/// The subscription `keys issue` issues for: given by id, or found or made from a subscriber
/// name and an offer.
struct Target {
    subscription: Option<String>,
    subscriber: Option<String>,
    offer: Option<String>,
    trial_days: Option<u32>,
    end_date: Option<chrono::NaiveDate>,
}

impl Target {
    fn resolve(
        self,
        c: &mut db::Conn,
        now: chrono::NaiveDateTime,
        actor: &Actor,
    ) -> anyhow::Result<String> {
        let Target {
            subscription,
            subscriber,
            offer,
            trial_days,
            end_date,
        } = self;
        let id = c.write(db::Touches::Anything, |c| {
            match (subscription, subscriber, offer) {
                (Some(id), _, _) => Ok(id),
                (None, Some(name), Some(offer)) => {
                    let sub = match subscribers::find_by_name(c, &name)? {
                        Some(s) => s,
                        None => subscribers::create(c, &name, None, now)?,
                    };
                    let req = CreateSubscriptionRequest {
                        subscriber_id: sub.id,
                        offer,
                        begin_date: None,
                        end_date,
                        trial_days,
                    };
                    Ok(subscriptions::create(c, &req.into(), now, actor)?.id)
                }
                _ => Err(db::Error::invalid(
                    "give --subscription ID, or --subscriber NAME --offer OFFER",
                )),
            }
        })?;
        Ok(id)
    }
}

/// Issues `n` keys in batches, printing each as a CSV or JSON line as its batch commits, with
/// a progress bar on stderr when it is a terminal.
fn bulk_issue(
    c: &mut db::Conn,
    subscription_id: &str,
    n: usize,
    expires: Option<chrono::NaiveDateTime>,
    now: chrono::NaiveDateTime,
    actor: &Actor,
    format: BulkFormat,
) -> anyhow::Result<()> {
    use std::io::Write;
    if n == 0 {
        anyhow::bail!("--count must be at least 1");
    }
    let bar = super::progress::count(n as u64, "keys");
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if format == BulkFormat::Csv {
        writeln!(out, "id,key,key_prefix,subscription_id")?;
    }
    let mut done = 0;
    while done < n {
        let batch = (n - done).min(keys::BATCH);
        for (row, key) in keys::issue_batch(c, subscription_id, batch, expires, now, actor)? {
            match format {
                BulkFormat::Csv => writeln!(
                    out,
                    "{},{},{},{}",
                    row.id,
                    key.expose(),
                    row.key_prefix,
                    row.subscription_id
                )?,
                BulkFormat::Jsonl => {
                    let mut view = KeyView::new(row, now);
                    view.key = Some(key.expose().to_owned());
                    writeln!(out, "{}", serde_json::to_string(&view)?)?
                }
            }
        }
        out.flush()?;
        done += batch;
        bar.inc(batch as u64);
    }
    bar.finish_and_clear();
    Ok(())
}
