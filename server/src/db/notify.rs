//! Changes seen by every process within a second (DESIGN §9): on PostgreSQL each write
//! transaction that changes key states sends `NOTIFY glpi_network_changes` with the hash of the
//! key it changed, or `*` when it may have changed anything (revoke, regenerate, suspend,
//! resume, cancel, release by id, rotate, catalogue edit, fixtures...). PostgreSQL delivers a
//! notification only when its transaction commits, in commit order.
//!
//! Each process keeps one `LISTEN` connection on a thread of its own ([`spawn_listener`]),
//! polling it every [`POLL`]; a lost connection is re-opened with back-off, and every
//! (re)connection counts as "anything changed", since notifications may have been missed
//! meanwhile. The periodic check of [`latest_change`] stays as the fallback (and is all there
//! is on SQLite).

use super::AnyConnection;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;
use std::time::{Duration, Instant};

/// The channel every process listens on.
pub const CHANNEL: &str = "glpi_network_changes";
/// How often the listening connection is polled for notifications.
pub const POLL: Duration = Duration::from_millis(10);
/// How often an idle listening connection is checked with a round trip.
const PING_EVERY: Duration = Duration::from_secs(2);
/// The longest wait between two attempts to re-open the listening connection.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What a notification says changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The state of the key with this hash (its row or its binding).
    Key(String),
    /// Anything (or unknown: a missed notification).
    All,
}

impl Change {
    /// The change a payload `<origin> <key hash or *>` names, or `None` when it comes from
    /// `mine` (this process's own writes, which its cache already follows).
    fn from_payload(p: &str, mine: &str) -> Option<Change> {
        let (origin, what) = p.split_once(' ').unwrap_or(("", p));
        if origin == mine {
            return None;
        }
        Some(match what {
            "" | "*" => Change::All,
            h => Change::Key(h.to_owned()),
        })
    }
}

/// Sends one notification in the current transaction (PostgreSQL only; a no-op on SQLite).
pub fn send(c: &mut AnyConnection, origin: &str, change: &Change) -> QueryResult<()> {
    if let AnyConnection::Postgresql(pg) = c {
        let payload = match change {
            Change::All => format!("{origin} *"),
            Change::Key(h) => format!("{origin} {h}"),
        };
        diesel::sql_query("SELECT pg_notify($1, $2)")
            .bind::<Text, _>(CHANNEL)
            .bind::<Text, _>(payload)
            .execute(pg)?;
    }
    Ok(())
}

/// Sends the notifications of what a write transaction touched (in it, so they are delivered
/// when it commits): `*` when it may have changed anything, else each key's hash.
pub fn send_touched(
    c: &mut AnyConnection,
    origin: &str,
    all: bool,
    keys: &[String],
) -> QueryResult<()> {
    if !matches!(c, AnyConnection::Postgresql(_)) {
        return Ok(());
    }
    if all {
        return send(c, origin, &Change::All);
    }
    keys.iter()
        .try_for_each(|k| send(c, origin, &Change::Key(k.clone())))
}

/// The change counter of the periodic check: the largest id of an audit event that records a
/// change (`outcome = 'ok'`). Refusals are audited too but change nothing, so they do not move
/// it (an attacker's refused validations must not empty every process's key cache).
pub fn latest_change(c: &mut AnyConnection) -> QueryResult<Option<i64>> {
    use super::schema::audit_events::dsl as a;
    a::audit_events
        .filter(a::outcome.eq("ok"))
        .select(diesel::dsl::max(a::id))
        .first::<Option<i64>>(c)
}

/// Listens for changes on `url` (PostgreSQL) on a thread of its own, calling `on` for each;
/// the thread ends once `alive` answers `false` (checked at every poll).
pub fn spawn_listener(
    url: String,
    mine: String,
    alive: impl Fn() -> bool + Send + 'static,
    mut on: impl FnMut(Change) + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("change-listener".into())
        .spawn(move || {
            let mut backoff = Duration::from_millis(100);
            let mut warned = false;
            while alive() {
                let lost = listen(&url, &mine, &alive, &mut on, &mut warned, &mut backoff);
                let Some(e) = lost else { return };
                if !warned {
                    tracing::warn!(error = %e, "change listener: connection lost; retrying (the periodic check covers meanwhile)");
                    warned = true;
                }
                on(Change::All);
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        })
}

/// Listens until the connection is lost (`Some(why)`) or `alive` says stop (`None`).
fn listen(
    url: &str,
    mine: &str,
    alive: &impl Fn() -> bool,
    on: &mut impl FnMut(Change),
    warned: &mut bool,
    backoff: &mut Duration,
) -> Option<String> {
    let mut c = match diesel::PgConnection::establish(url) {
        Ok(c) => c,
        Err(e) => return Some(e.to_string()),
    };
    if let Err(e) = c.batch_execute(&format!("LISTEN {CHANNEL}")) {
        return Some(e.to_string());
    }
    if *warned {
        tracing::info!("change listener: listening again");
        *warned = false;
    }
    *backoff = Duration::from_millis(100);
    // Whatever happened before this connection listened was not heard.
    on(Change::All);
    let mut pinged = Instant::now();
    while alive() {
        let mut notes = Vec::new();
        for n in c.notifications_iter() {
            match n {
                Ok(n) => notes.extend(Change::from_payload(&n.payload, mine)),
                Err(e) => return Some(e.to_string()),
            }
        }
        notes.into_iter().for_each(&mut *on);
        if pinged.elapsed() >= PING_EVERY {
            // a round trip notices a dead server
            if let Err(e) = c.batch_execute("SELECT 1") {
                return Some(e.to_string());
            }
            pinged = Instant::now();
        }
        std::thread::sleep(POLL);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_name_a_key_or_everything() {
        assert_eq!(Change::from_payload("o1 *", "me"), Some(Change::All));
        assert_eq!(Change::from_payload("", "me"), Some(Change::All));
        assert_eq!(
            Change::from_payload("o1 ab12", "me"),
            Some(Change::Key("ab12".into()))
        );
        assert_eq!(
            Change::from_payload("me ab12", "me"),
            None,
            "our own writes"
        );
        assert_eq!(Change::from_payload("me *", "me"), None);
    }

    /// Defect 7: refusals are audited, but they change nothing, so the periodic check must not
    /// take them for changes (that emptied every process's key cache).
    #[test]
    fn refusals_do_not_move_the_change_counter() {
        let dir = tempfile::tempdir().unwrap();
        let db =
            crate::db::Db::open(&dir.path().join("db.sqlite").display().to_string(), 2).unwrap();
        let c = &mut db.get().unwrap();
        assert_eq!(latest_change(c).unwrap(), None);
        let actor = crate::db::audit::Actor::new("instance", Some("1.2.3.4".into()));
        let now = chrono::DateTime::from_timestamp(1_800_000_000, 0)
            .unwrap()
            .naive_utc();
        crate::db::audit::record(c, &actor.event("key.revoke", "ok", now)).unwrap();
        let changed = latest_change(c).unwrap();
        assert!(changed.is_some());
        for outcome in ["key_revoked", "key_already_bound", "key_not_found"] {
            let mut ev = actor.event("validation", outcome, now);
            ev.key_id = Some("k".into());
            crate::db::refusals::record(c, &ev).unwrap();
        }
        assert_eq!(latest_change(c).unwrap(), changed);
    }
}
