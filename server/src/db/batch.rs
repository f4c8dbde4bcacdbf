//! Key-state reads on PostgreSQL gathered into one statement: the database path of `/info` and
//! validations without a pool check-out and a blocking-pool hop per request.
//!
//! With the key cache off (or missed, as a fleet misses it), every `/info` and validation reads
//! its key's state. Through the pool that is a hop to a blocking thread, a check-out, one round
//! trip to a PostgreSQL backend for one row, and the hop back, per request; on two cores those
//! threads and backends compete with the HTTP workers and the tail of the latency grows with
//! them. Here one reader thread per two cores (one on two cores), each with a connection of its
//! own, takes the reads queued by the HTTP workers: the thread whose turn it is waits for the
//! first, takes every read queued behind it (at most [`MAX_BATCH`]), and answers them all from one
//! `key_hash = ANY($1)` statement (`key_state::load_states_by_hashes`). Under load the batches
//! grow by themselves (the reads that arrive during a round trip form the next batch); a lone
//! request is a batch of one.
//!
//! What is read here is what the SQLite worker read is ([`super::reader`]): the state as the
//! database holds it, in autocommit, for an answer that needs no write. Anything else (an unknown
//! key, a full queue, a lost connection, any error) answers `None`, and the caller takes the
//! pooled path, which is the complete one. A connection left idle for [`IDLE`] is closed, and
//! the threads end when the last handle is dropped (the HTTP server stopped).

use super::key_state;
use crate::domain::binding::KeyState;
use diesel::Connection;
use futures::channel::oneshot;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// The most reads one statement answers.
const MAX_BATCH: usize = 64;
/// The most reads queued; past it a read takes the pooled path.
const QUEUE: usize = 1024;
/// A reader thread's connection is closed after this long without a read.
const IDLE: Duration = Duration::from_secs(5);

/// One queued read.
struct Ask {
    hash: String,
    reply: oneshot::Sender<Option<KeyState>>,
}

/// A handle on the reader threads (cloned into each HTTP worker).
#[derive(Clone)]
pub struct BatchReads {
    queue: SyncSender<Ask>,
}

impl std::fmt::Debug for BatchReads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchReads").finish_non_exhaustive()
    }
}

impl BatchReads {
    /// Starts `threads` reader threads on the PostgreSQL database at `url` (each connects on
    /// its first read); `on_batch` is called for each statement run. They end when the last
    /// handle is dropped.
    pub fn start(
        url: &str,
        threads: usize,
        on_batch: impl Fn() + Send + Sync + 'static,
    ) -> std::io::Result<BatchReads> {
        let (queue, asks) = sync_channel(QUEUE);
        let asks = Arc::new(Mutex::new(asks));
        let on_batch = Arc::new(on_batch);
        for i in 0..threads.max(1) {
            let (url, asks, on_batch) = (url.to_owned(), asks.clone(), on_batch.clone());
            std::thread::Builder::new()
                .name(format!("key-reads-{i}"))
                .spawn(move || serve(&url, &asks, &*on_batch))?;
        }
        Ok(BatchReads { queue })
    }

    /// The key's state as the database holds it now, or `None` when it cannot be read here
    /// (unknown key, queue full, any error): the caller then reads it through the pool. A
    /// database that stops answering holds the reader threads, so the caller bounds the wait
    /// (`http::read_state`).
    pub async fn state(&self, key_hash: &str) -> Option<KeyState> {
        let (reply, answer) = oneshot::channel();
        let ask = Ask {
            hash: key_hash.to_owned(),
            reply,
        };
        match self.queue.try_send(ask) {
            Ok(()) => answer.await.ok().flatten(),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => None,
        }
    }
}

/// A reader thread: batches from `asks` until every handle is gone.
fn serve(url: &str, asks: &Mutex<Receiver<Ask>>, on_batch: &dyn Fn()) {
    let mut link = Link::default();
    loop {
        let batch = {
            // the thread holding the lock collects the next batch; the others wait their turn
            let asks = asks.lock().unwrap_or_else(PoisonError::into_inner);
            let first = match asks.recv_timeout(IDLE) {
                Ok(ask) => ask,
                Err(RecvTimeoutError::Timeout) => {
                    drop(asks);
                    link.conn = None;
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match asks.try_recv() {
                    Ok(ask) => batch.push(ask),
                    Err(_) => break,
                }
            }
            batch
        };
        answer(url, &mut link, batch, on_batch);
    }
}

/// A reader thread's connection. It runs only the batch statement, whose keys are always a
/// handful found by unique index; but the statement is prepared once for any array, so its
/// plan is generic, and on a small table PostgreSQL planned it as sequential scans of
/// `registration_keys` and `registrations`, comparing every row with every hash of the batch
/// (`EXPLAIN ANALYZE` at 1,000 keys and 16 hashes: 0.53 ms, against 0.32 ms through the
/// indexes). Sequential scans are priced out on this connection (`enable_seqscan = off`, a
/// cost, not a ban), so the plan is the index look-ups at every size.
fn connect(url: &str) -> diesel::ConnectionResult<diesel::PgConnection> {
    use diesel::connection::SimpleConnection;
    let mut c = diesel::PgConnection::establish(url)?;
    c.batch_execute("SET enable_seqscan = off")
        .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
    Ok(c)
}

/// A reader thread's connection, and whether opening it failed last time.
#[derive(Default)]
struct Link {
    conn: Option<diesel::PgConnection>,
    failing: bool,
}

impl Link {
    /// The open connection, opened now if it is not; a failure is logged as a warning once
    /// until a connection opens again (every batch tries again, and one line a batch would
    /// flood the log while the database is away).
    fn get(&mut self, url: &str) -> Option<&mut diesel::PgConnection> {
        if self.conn.is_none() {
            match connect(url) {
                Ok(c) => {
                    self.conn = Some(c);
                    self.failing = false;
                }
                Err(e) if self.failing => {
                    tracing::debug!(error = %e, "could not open a key-reads connection");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not open a key-reads connection; reading through the pool");
                    self.failing = true;
                }
            }
        }
        self.conn.as_mut()
    }
}

/// Reads the states of `batch` in one statement (counted by `on_batch`) and answers each ask;
/// on any error every ask gets `None` and the connection is opened again for the next batch.
fn answer(url: &str, link: &mut Link, batch: Vec<Ask>, on_batch: &dyn Fn()) {
    let c = link.get(url);
    let states = match c {
        Some(c) => {
            let mut hashes: Vec<&str> = batch.iter().map(|a| a.hash.as_str()).collect();
            hashes.sort_unstable();
            hashes.dedup();
            match key_state::load_states_by_hashes(c, &hashes) {
                Ok(states) => {
                    on_batch();
                    states
                }
                Err(e) => {
                    tracing::debug!(error = %e, "batched key read failed; reading through the pool");
                    link.conn = None;
                    Vec::new()
                }
            }
        }
        None => Vec::new(),
    };
    for ask in batch {
        let state = states.iter().find(|s| s.key.key_hash == ask.hash).cloned();
        // a request that gave up (its client went away) no longer listens
        let _ = ask.reply.send(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    /// A database out of reach answers every read `None` (the pool then answers it), at once,
    /// and no statement is counted; the reads after it are answered too.
    #[test]
    fn a_database_out_of_reach_sends_the_reads_to_the_pool() {
        let statements = Arc::new(AtomicUsize::new(0));
        let counted = statements.clone();
        let reads = BatchReads::start("postgres://nobody@127.0.0.1:1/none", 2, move || {
            counted.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
        let started = Instant::now();
        let hash = "0".repeat(64);
        let asks = (0..10).map(|_| reads.state(&hash));
        let answers = futures::executor::block_on(futures::future::join_all(asks));
        assert!(answers.iter().all(Option::is_none));
        assert!(futures::executor::block_on(reads.state(&hash)).is_none());
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(statements.load(Ordering::Relaxed), 0);
    }
}
