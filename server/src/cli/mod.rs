//! The admin subcommands of `glpi-network-server`: the same operations as the admin API,
//! run directly on the configured database. Each prints one JSON document on stdout.

use crate::app::open_pool;
use crate::config::*;
use crate::db::{
    self, Transact, audit, audit::Actor, keys, offers, registrations, subscribers, subscriptions,
};
use crate::domain::clock::Clock;
use crate::domain::subscription::Action;
use crate::http::dto::*;
use serde::Serialize;

fn print<T: Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn query(p: &PageArgs) -> ListQuery {
    ListQuery {
        limit: p.limit,
        cursor: p.cursor.clone(),
        ..Default::default()
    }
}

/// Issues `n` keys in batches, printing each as a CSV or JSON line as its batch commits, with
/// a progress line on stderr when it is a terminal.
fn bulk_issue(
    c: &mut db::Conn,
    subscription_id: &str,
    n: usize,
    expires: Option<chrono::NaiveDateTime>,
    now: chrono::NaiveDateTime,
    actor: &Actor,
    format: BulkFormat,
) -> anyhow::Result<()> {
    use std::io::{IsTerminal, Write};
    if n == 0 {
        anyhow::bail!("--count must be at least 1");
    }
    let tty = std::io::stderr().is_terminal();
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
        if tty {
            let width = 30;
            let filled = done * width / n;
            eprint!(
                "\r[{}{}] {done}/{n} keys",
                "#".repeat(filled),
                " ".repeat(width - filled)
            );
        }
    }
    if tty {
        eprintln!();
    }
    Ok(())
}

/// Runs one admin subcommand.
pub fn run(settings: &Settings, command: Command) -> anyhow::Result<()> {
    if let Command::Migrate = command {
        std::fs::create_dir_all(&settings.data_dir)?;
        let pool = db::open_unmigrated(&settings.database_url(), 1)?;
        let n = db::migrate(&mut *pool.get()?)?;
        eprintln!("database migrated: {n} pending migration(s) applied");
        return Ok(());
    }
    let db = open_pool(settings)?;
    let mut conn = db.get()?;
    let c = &mut conn;
    let now = Clock::default().now_naive();
    let actor = Actor::new("cli", None);
    match command {
        Command::Serve => unreachable!("serve is handled by main"),
        Command::Migrate => unreachable!("handled above"),
        Command::Subscribers(cmd) => match cmd {
            SubscribersCmd::Create { name, email } => print(&SubscriberView::from(
                subscribers::create(c, &name, email.as_deref(), now)?,
            ))?,
            SubscribersCmd::List(p) => {
                print(&subscribers::list(c, &query(&p))?.map(SubscriberView::from))?
            }
            SubscribersCmd::Show { id } => print(&SubscriberView::from(subscribers::get(c, &id)?))?,
        },
        Command::Subscriptions(cmd) => {
            let transition = |c: &mut db::Conn, id: &str, a| {
                subscriptions::transition(c, id, a, now, &actor)
                    .map(|r| SubscriptionView::new(r, now.date()))
            };
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
                    print(&SubscriptionView::new(
                        subscriptions::create(c, &req.into(), now, &actor)?,
                        now.date(),
                    ))?
                }
                SubscriptionsCmd::List(p) => print(
                    &subscriptions::list(c, &query(&p))?
                        .map(|s| SubscriptionView::new(s, now.date())),
                )?,
                SubscriptionsCmd::Show { id } => print(&SubscriptionView::new(
                    subscriptions::get(c, &id)?,
                    now.date(),
                ))?,
                SubscriptionsCmd::Suspend { id } => print(&transition(c, &id, Action::Suspend)?)?,
                SubscriptionsCmd::Resume { id } => print(&transition(c, &id, Action::Resume)?)?,
                SubscriptionsCmd::Cancel { id } => print(&transition(c, &id, Action::Cancel)?)?,
            }
        }
        Command::Keys(cmd) => match cmd {
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
                let expires = expires_at.map(|t| t.naive_utc());
                let subscription_id = c.write(db::Touches::Anything, |c| {
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
                            Ok(subscriptions::create(c, &req.into(), now, &actor)?.id)
                        }
                        _ => Err(db::Error::invalid(
                            "give --subscription ID, or --subscriber NAME --offer OFFER",
                        )),
                    }
                })?;
                match count {
                    None => {
                        let (row, plaintext) =
                            keys::issue(c, &subscription_id, expires, now, &actor)?;
                        let mut view = KeyView::new(row, now);
                        view.key = Some(plaintext.expose().to_owned());
                        print(&view)?
                    }
                    Some(n) => bulk_issue(c, &subscription_id, n, expires, now, &actor, format)?,
                }
            }
            KeysCmd::List {
                page,
                subscription,
                status,
            } => {
                let mut q = query(&page);
                q.subscription_id = subscription;
                q.status = status;
                print(&keys::list(c, &q)?.map(|k| KeyView::new(k, now)))?
            }
            KeysCmd::Show { id } => print(&KeyView::new(keys::get(c, &id)?, now))?,
            KeysCmd::Revoke { id } => {
                print(&KeyView::new(keys::revoke(c, &id, now, &actor)?, now))?
            }
            KeysCmd::Regenerate { id } => {
                let (row, plaintext) = keys::regenerate(c, &id, now, &actor)?;
                let mut view = KeyView::new(row, now);
                view.key = Some(plaintext.expose().to_owned());
                print(&view)?
            }
        },
        Command::Registrations(cmd) => match cmd {
            RegistrationsCmd::List(p) => {
                print(&registrations::list(c, &query(&p))?.map(|(r, p)| registration_view(r, p)))?
            }
            RegistrationsCmd::Release { id } => {
                let row = registrations::release_by_id(c, &id, now, &actor)?;
                let (row, prefix) = registrations::with_prefix(c, row)?;
                print(&registration_view(row, prefix))?
            }
        },
        Command::Offers(OffersCmd::List) => {
            let items: Vec<OfferView> = offers::list(c)?.into_iter().map(OfferView::from).collect();
            print(&items)?
        }
        Command::Audit(AuditCmd::List(p)) => {
            print(&audit::list(c, &query(&p))?.map(AuditView::from))?
        }
        Command::Audit(AuditCmd::Verify) => match audit::verify_chain(c)? {
            audit::ChainCheck::Intact { events } => println!("audit chain intact: {events} events"),
            audit::ChainCheck::Broken { id, reason } => {
                println!("audit chain broken at event {id}: {reason}");
                std::process::exit(1);
            }
        },
        Command::Plugins(cmd) => {
            crate::db::catalogue::seed_demo_once(c, now)?;
            match cmd {
                PluginsCmd::List => {
                    let items: Vec<crate::domain::catalogue::PluginRecord> =
                        crate::db::plugins::all(c)?
                            .iter()
                            .map(|(r, v)| crate::db::catalogue::record(r, v, "", true))
                            .collect();
                    print(&items)?
                }
                PluginsCmd::Import { file } => {
                    let n = crate::db::catalogue::import_file(c, &file, now)?;
                    eprintln!("imported {n} plugin(s) from {}", file.display());
                }
            }
        }
        Command::SigningKeys(cmd) => {
            let clock = Clock::default();
            let signer = crate::app::open_signer(settings, &db, &clock)?;
            match cmd {
                SigningKeysCmd::List => {
                    let items: Vec<SigningKeyView> = crate::db::signing_keys::all(c)?
                        .into_iter()
                        .map(|r| SigningKeyView::new(r, &signer, now))
                        .collect();
                    print(&items)?
                }
                SigningKeysCmd::Rotate => print(&SigningKeyView::new(
                    signer.rotate(c, now, &actor)?,
                    &signer,
                    now,
                ))?,
            }
        }
    }
    Ok(())
}
