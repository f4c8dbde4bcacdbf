//! The database handle and its write transactions, as values (no statics, no thread-locals):
//!
//! - [`Db`]: the pool and what every write transaction of one server shares: the SQLite writer
//!   queue and the key-state cache's generations ([`crate::db::keycache::Generations`]).
//!   `app.rs` builds one and hands it down; two servers in one process never share one.
//! - [`Conn`]: a pooled connection of a [`Db`] (it reads as an [`AnyConnection`]).
//! - [`Txn`]: an open write transaction, passed explicitly to the writes it groups. It carries
//!   the queues a commit flushes (the audit events and the webhook outbox) and what the transaction touched,
//!   for the cache.
//! - [`Transact`]: what can run a write: a connection opens a transaction, a transaction joins
//!   itself, so operations compose into one all-or-nothing transaction (a fixture file).

use super::audit;
use super::keycache::Generations;
use super::last_seen::{self, LastSeen};
use super::models::NewAuditEvent;
use super::webhooks::{self, PendingEvent};
use super::{AnyConnection, Error, Pool, PooledConn};
use diesel::connection::{AnsiTransactionManager, Connection, TransactionManager};
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, PoisonError};

/// What write transactions of one [`Db`] share.
struct Shared {
    /// Serialises this server's SQLite write transactions. SQLite allows one writer at a time;
    /// without this, concurrent writers wait in SQLite's busy handler, which sleeps with
    /// back-off (up to 100 ms a sleep) while newcomers barge in: a queue here turns those tails
    /// into plain waiting. Other processes are still kept out by SQLite's own lock and
    /// `busy_timeout`.
    sqlite_writer: Mutex<()>,
    /// Bumped once a transaction has ended, for what it touched.
    generations: Arc<Generations>,
    /// The `last_seen_at` refreshes reads recorded, written out in batches.
    last_seen: LastSeen,
    /// Names this handle in the notifications its transactions send, so that its own listener
    /// skips them (its cache already follows its own writes).
    origin: String,
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            sqlite_writer: Mutex::default(),
            generations: Arc::default(),
            last_seen: LastSeen::default(),
            origin: uuid::Uuid::new_v4().simple().to_string(),
        }
    }
}

/// A database: its pool and what its write transactions share.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("pool", &self.pool).finish()
    }
}

impl Db {
    /// A handle on `pool` with its own writer queue and cache generations.
    pub fn new(pool: Pool) -> Db {
        Db {
            pool,
            shared: Arc::default(),
        }
    }

    /// Opens a pool on `url` (running migrations): see [`super::open`].
    pub fn open(url: &str, max_size: u32) -> anyhow::Result<Db> {
        super::open(url, max_size).map(Db::new)
    }

    /// A pooled connection.
    pub fn get(&self) -> Result<Conn, Error> {
        Ok(Conn {
            raw: self.pool.get()?,
            shared: self.shared.clone(),
        })
    }

    /// The pool (its size and state, for start-up and metrics).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The origin its transactions' notifications carry (see [`super::notify`]).
    pub fn origin(&self) -> &str {
        &self.shared.origin
    }

    /// The generations this database's write transactions bump (the key cache follows them).
    pub fn generations(&self) -> Arc<Generations> {
        self.shared.generations.clone()
    }

    /// Records that binding `id` was used at `at`, to be written in the next batch; `false` when
    /// the record is full (the caller then writes the refresh itself).
    pub fn record_last_seen(&self, id: &str, at: chrono::NaiveDateTime) -> bool {
        self.shared.last_seen.record(id, at)
    }

    /// The use of binding `id` recorded and not yet written, if any (the admin API shows it).
    pub fn pending_last_seen(&self, id: &str) -> Option<chrono::NaiveDateTime> {
        self.shared.last_seen.pending_for(id)
    }

    /// Writes the recorded `last_seen_at` refreshes in batched write transactions; what could
    /// not be written is kept for the next flush. Returns how many were written.
    pub fn flush_last_seen(&self) -> Result<usize, Error> {
        let items = self.shared.last_seen.take();
        if items.is_empty() {
            return Ok(0);
        }
        let mut conn = match self.get() {
            Ok(c) => c,
            Err(e) => {
                self.shared.last_seen.restore(items);
                return Err(e);
            }
        };
        let mut written = 0;
        for batch in last_seen::batches(&items) {
            let result = conn.write(Touches::LastSeen, |tx| {
                last_seen::write_batch(tx.conn(), batch)?;
                Ok::<_, Error>(())
            });
            if let Err(e) = result {
                let rest = items[written..].to_vec();
                self.shared.last_seen.restore(rest);
                return Err(e);
            }
            written += batch.len();
        }
        Ok(written)
    }
}

/// A pooled connection of a [`Db`].
pub struct Conn {
    raw: PooledConn,
    shared: Arc<Shared>,
}

impl Deref for Conn {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.raw
    }
}

impl DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.raw
    }
}

/// What a write transaction may change, so the key-state cache ([`crate::db::keycache`]) drops
/// exactly what it must once the transaction ends.
#[derive(Debug, Clone, Copy)]
pub enum Touches<'a> {
    /// Anything (the safe default): every cached state is dropped.
    Anything,
    /// Only the key with this hash (its row or its binding).
    Key(&'a str),
    /// Only the audit trail.
    AuditOnly,
    /// Only `last_seen_at` (which no cached answer depends on: a due one is refreshed).
    LastSeen,
    /// Only webhooks and their deliveries (which no cached answer depends on).
    Webhooks,
}

/// What a transaction touched.
#[derive(Debug, Default)]
struct Scope {
    all: bool,
    keys: Vec<String>,
}

impl Scope {
    fn add(&mut self, t: Touches<'_>) {
        match t {
            Touches::Anything => self.all = true,
            Touches::Key(h) => self.keys.push(h.to_owned()),
            Touches::AuditOnly | Touches::LastSeen | Touches::Webhooks => {}
        }
    }
}

/// Queued events past which [`Txn::spill_if_large`] writes them out before the commit.
pub const SPILL_AT: usize = 2048;

/// An open write transaction (see [`Transact`]).
pub struct Txn<'c> {
    conn: &'c mut AnyConnection,
    /// Audit events recorded in this transaction, appended to the chain just before it commits.
    audit: Vec<NewAuditEvent>,
    /// Webhook events of this transaction's changes, written to the outbox just before it
    /// commits (so an event exists if and only if its change committed).
    outbox: Vec<PendingEvent>,
    scope: Scope,
    /// The origin of the notifications it sends.
    origin: &'c str,
}

impl Deref for Txn<'_> {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        self.conn
    }
}

impl DerefMut for Txn<'_> {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        self.conn
    }
}

impl Txn<'_> {
    /// The connection, for queries.
    pub fn conn(&mut self) -> &mut AnyConnection {
        self.conn
    }

    /// Queues an audit event: it is appended when the transaction commits, and never when it
    /// rolls back.
    pub fn audit(&mut self, ev: NewAuditEvent) {
        self.audit.push(ev);
    }

    /// Queues a webhook event (DESIGN §12): `data` is the object the change produced, as the
    /// admin API shows it. Written to the outbox when the transaction commits, never when it
    /// rolls back.
    pub fn emit(
        &mut self,
        kind: &'static str,
        data: &impl serde::Serialize,
        at: chrono::NaiveDateTime,
    ) {
        match serde_json::to_value(data) {
            Ok(data) => self.outbox.push(PendingEvent { kind, data, at }),
            Err(e) => tracing::error!(error = %e, kind, "could not serialise a webhook event"),
        }
    }

    /// Writes the queued audit and webhook events out now, inside the transaction, once they
    /// number [`SPILL_AT`] or more. A bulk load (a fixture file of a million keys) calls it as it
    /// goes: it queued two events per key and, at the commit, held about 4 GB of them. Events
    /// keep their order, the chain stays one chain (each append starts from the tip the
    /// transaction sees), and a rollback still removes them all. On PostgreSQL this takes the
    /// audit chain's lock before the transaction's last row lock, which only a bulk load does.
    pub fn spill_if_large(&mut self) -> diesel::QueryResult<()> {
        if self.audit.len() + self.outbox.len() < SPILL_AT {
            return Ok(());
        }
        self.write_queues()
    }

    /// Appends the queued audit events to the chain and writes the queued webhook events to
    /// the outbox (under the audit chain's lock too, see `write_outbox`), leaving both queues
    /// empty.
    fn write_queues(&mut self) -> diesel::QueryResult<()> {
        audit::append_chained(self.conn, &self.audit)?;
        self.audit.clear();
        webhooks::write_outbox(self.conn, &self.outbox)?;
        self.outbox.clear();
        Ok(())
    }

    /// Flushes the queues into the transaction, last, just before the commit: the lock that
    /// serialises the audit chain is then always the last one a transaction takes, so it cannot
    /// deadlock with row locks.
    fn finish(&mut self) -> diesel::QueryResult<()> {
        super::notify::send_touched(self.conn, self.origin, self.scope.all, &self.scope.keys)?;
        self.write_queues()
    }
}

/// Something that runs writes: a [`Conn`] opens a write transaction, a [`Txn`] joins itself (so
/// several operations are all-or-nothing).
pub trait Transact: DerefMut<Target = AnyConnection> {
    /// Runs `f` in a write transaction; `touches` says which cached key states it can change.
    fn write<T, E: From<Error>>(
        &mut self,
        touches: Touches<'_>,
        f: impl FnOnce(&mut Txn<'_>) -> Result<T, E>,
    ) -> Result<T, E>;

    /// Notes that binding `id` was used at `at`: inside a write transaction the row is written
    /// with it; on a bare connection (a read) it is recorded and written out later in a batch
    /// (see [`crate::db::last_seen`]).
    fn saw(&mut self, id: &str, at: chrono::NaiveDateTime) -> diesel::QueryResult<()>;
}

impl Transact for Txn<'_> {
    fn write<T, E: From<Error>>(
        &mut self,
        touches: Touches<'_>,
        f: impl FnOnce(&mut Txn<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        self.scope.add(touches);
        f(self)
    }

    fn saw(&mut self, id: &str, at: chrono::NaiveDateTime) -> diesel::QueryResult<()> {
        last_seen::write_one(self.conn, id, at).map(drop)
    }
}

type Tm = <AnyConnection as Connection>::TransactionManager;

/// Bumps the generations for what the transaction touched when it is dropped: after the commit
/// (or the rollback, where it costs only a few cache misses), even on a panic.
struct InvalidateOnEnd<'a> {
    generations: &'a Generations,
    scope: Scope,
}

impl Drop for InvalidateOnEnd<'_> {
    fn drop(&mut self) {
        if self.scope.all {
            self.generations.invalidate_all();
        }
        for k in &self.scope.keys {
            self.generations.invalidate_key(k);
        }
    }
}

impl Transact for Conn {
    fn saw(&mut self, id: &str, at: chrono::NaiveDateTime) -> diesel::QueryResult<()> {
        if self.shared.last_seen.record(id, at) {
            return Ok(());
        }
        // the map is full until the next flush: write this one now
        last_seen::write_one(&mut self.raw, id, at).map(drop)
    }

    /// On SQLite the transaction is `BEGIN IMMEDIATE`, so the write lock is taken up front and
    /// concurrent writers wait on `busy_timeout` instead of failing on a lock upgrade (and this
    /// server's writers queue on its writer queue first).
    fn write<T, E: From<Error>>(
        &mut self,
        touches: Touches<'_>,
        f: impl FnOnce(&mut Txn<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let shared = &*self.shared;
        let conn: &mut AnyConnection = &mut self.raw;
        let _writer = match conn {
            AnyConnection::Sqlite(c) => {
                let guard = shared
                    .sqlite_writer
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")
                    .map_err(Error::from)?;
                Some(guard)
            }
            AnyConnection::Postgresql(c) => {
                AnsiTransactionManager::begin_transaction(c).map_err(Error::from)?;
                None
            }
        };
        // until `f` returns (a panic), everything counts as touched
        let mut invalidate = InvalidateOnEnd {
            generations: &shared.generations,
            scope: Scope {
                all: true,
                keys: Vec::new(),
            },
        };
        let mut txn = Txn {
            conn,
            audit: Vec::new(),
            outbox: Vec::new(),
            scope: Scope::default(),
            origin: &shared.origin,
        };
        txn.scope.add(touches);
        let result = f(&mut txn);
        let result =
            result.and_then(|v| txn.finish().map(|()| v).map_err(|e| Error::from(e).into()));
        invalidate.scope = std::mem::take(&mut txn.scope);
        let conn = txn.conn;
        match result {
            Ok(v) => match Tm::commit_transaction(conn) {
                Ok(()) => Ok(v),
                Err(e) => {
                    let _ = Tm::rollback_transaction(conn);
                    Err(Error::from(e).into())
                }
            },
            Err(e) => {
                Tm::rollback_transaction(conn).map_err(Error::from)?;
                Err(e)
            }
        }
    }
}
