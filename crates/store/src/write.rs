//! Write transactions that end in a known state, whatever the error.
//!
//! sqlx's `Transaction` keeps its own count of how deep the connection is in transactions
//! and only lowers it when `COMMIT`/`ROLLBACK` succeed. After SQLite rolled a transaction
//! back by itself (it may, on `SQLITE_FULL`, `SQLITE_IOERR`, `SQLITE_BUSY`), or after a
//! failed `COMMIT` followed by a failed `ROLLBACK`, that count and the connection disagree:
//! the next `begin()` issues a `SAVEPOINT` inside a transaction that is still open, its
//! "commit" is only a `RELEASE`, and every later batch is acknowledged without ever being
//! committed (what a full disk did, before this module).
//!
//! [`WriteTx`] does not count. It sends `BEGIN IMMEDIATE` (SQLite) or `BEGIN` (PostgreSQL)
//! itself — which fails outright if the connection is somehow still in a transaction — and
//! `COMMIT` itself. If `COMMIT` fails, or a transaction ends without one, it is rolled back
//! before the connection can be used again, and a connection whose rollback fails, that
//! saw a commit fail, or whose commit was cancelled half-way, is closed rather than
//! returned: the next transaction starts on a fresh one. So a write either committed, or
//! left nothing behind. (On SQLite a `BEGIN` inside an open transaction fails outright; on
//! PostgreSQL it is only a warning, which is why nothing relies on it there.)
//!
//! [`WriteHealth`] is what `/readyz` and the metrics report: the last storage fault, until a
//! write commits again.

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, Executor};
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Whether writes are committing. Shared by every clone of a store.
#[derive(Debug, Default)]
pub struct WriteHealth {
    /// The last fault, while it lasts.
    fault: Mutex<Option<String>>,
    /// `fault.is_some()`, readable without the lock on every commit.
    faulty: AtomicBool,
    /// A transaction ended without a commit, on an error, since the last probe: the cause
    /// may have been a fault (a full disk) rather than the caller's data; `maintenance`
    /// probes. (Intended aborts use [`WriteTx::rollback`] and do not count.)
    suspect: AtomicBool,
    /// Write transactions that could not begin, commit or roll back, and failed probes.
    failures: AtomicU64,
}

impl WriteHealth {
    pub fn fault(&self) -> Option<String> {
        self.fault.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    pub(crate) fn failed(&self, why: String) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let mut fault = self.fault.lock().unwrap_or_else(|e| e.into_inner());
        if fault.is_none() {
            tracing::error!(error = %why, "storage cannot write; acknowledging nothing until a write commits");
        }
        *fault = Some(why);
        self.faulty.store(true, Ordering::Relaxed);
    }

    /// Something may be wrong (a writer busy past its timeout, a statement failing): let the
    /// next `maintenance` find out with a probe write.
    pub(crate) fn suspect(&self) {
        self.suspect.store(true, Ordering::Relaxed);
    }

    pub(crate) fn committed(&self) {
        // The hot path reads one atomic; the lock only when there is a fault to clear.
        if self.faulty.load(Ordering::Relaxed) {
            let mut fault = self.fault.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(was) = fault.take() {
                tracing::warn!(was = %was, "storage writes again");
            }
            self.faulty.store(false, Ordering::Relaxed);
        }
    }

    /// Take the "a transaction ended on an error" mark (for `maintenance`).
    pub(crate) fn take_suspect(&self) -> bool {
        self.suspect.swap(false, Ordering::Relaxed)
    }
}

/// How long a rollback may take before its connection is given up on (a half-open
/// PostgreSQL socket must not hold a pool slot, or SQLite's one writer, for ever).
const ROLLBACK_TIMEOUT: Duration = Duration::from_secs(5);

/// An open write transaction on one connection of the writer pool.
pub(crate) struct WriteTx {
    conn: Option<PoolConnection<Any>>,
    health: Arc<WriteHealth>,
    /// `COMMIT` was sent and its answer not seen: if this is dropped now (its future was
    /// cancelled), nobody knows the connection's state, so it is closed, never reused.
    committing: bool,
}

impl WriteTx {
    pub(crate) async fn begin(
        mut conn: PoolConnection<Any>,
        sqlite: bool,
        health: Arc<WriteHealth>,
    ) -> Result<WriteTx, sqlx::Error> {
        // IMMEDIATE takes the write lock now, so the busy timeout applies; a deferred
        // transaction that reads first and writes later fails at once (SQLITE_BUSY_SNAPSHOT)
        // when another connection committed in between.
        let begin = if sqlite { "BEGIN IMMEDIATE" } else { "BEGIN" };
        if let Err(e) = conn.execute(begin).await {
            // On SQLite "cannot start a transaction within a transaction", a cut connection,
            // …: whatever it is, this connection is not to be trusted again.
            health.failed(e.to_string());
            conn.close_on_drop();
            return Err(e);
        }
        Ok(WriteTx { conn: Some(conn), health, committing: false })
    }

    /// Commit. On error nothing of the transaction stays: it is rolled back and its
    /// connection closed.
    pub(crate) async fn commit(mut self) -> Result<(), sqlx::Error> {
        self.committing = true;
        let result = self.conn.as_mut().expect("a transaction is committed once").execute("COMMIT").await;
        self.committing = false;
        let mut conn = self.conn.take().expect("still here");
        match result {
            Ok(_) => {
                self.health.committed();
                Ok(())
            }
            Err(e) => {
                self.health.failed(e.to_string());
                // SQLite may have rolled back already; either way, no connection that saw a
                // failed commit is used again.
                let _ = tokio::time::timeout(ROLLBACK_TIMEOUT, conn.execute("ROLLBACK")).await;
                let _ = tokio::time::timeout(ROLLBACK_TIMEOUT, conn.close()).await;
                Err(e)
            }
        }
    }

    /// End without committing, on purpose (nothing to do): rolled back before this returns.
    pub(crate) async fn rollback(mut self) {
        let mut conn = self.conn.take().expect("a transaction ends once");
        match tokio::time::timeout(ROLLBACK_TIMEOUT, conn.execute("ROLLBACK")).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                self.health.failed(format!("rollback failed: {e}"));
                let _ = tokio::time::timeout(ROLLBACK_TIMEOUT, conn.close()).await;
            }
            Err(_) => {
                self.health.failed("rollback timed out".into());
                drop(conn.detach());
            }
        }
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else { return };
        if self.committing {
            // Cancelled between COMMIT and its answer: committed or not, nobody knows.
            conn.close_on_drop();
            return;
        }
        // Ended without a commit on an error (`?`): a not-found or a conflict, or a fault.
        self.health.suspect();
        // The pool hands this connection out again only once the rollback is done (the
        // task holds it), so the next transaction never starts inside this one.
        let health = self.health.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    match tokio::time::timeout(ROLLBACK_TIMEOUT, conn.execute("ROLLBACK")).await {
                        Ok(Ok(_)) => {}
                        // On SQLite "no transaction is active" means it rolled back by itself
                        // (a full disk, an I/O error); anything else is unknown state. Either
                        // way: a fresh connection next time.
                        Ok(Err(e)) => {
                            health.failed(format!("rollback failed: {e}"));
                            let _ = tokio::time::timeout(ROLLBACK_TIMEOUT, conn.close()).await;
                        }
                        Err(_) => {
                            health.failed("rollback timed out".into());
                            drop(conn.detach());
                        }
                    }
                });
            }
            // No runtime to roll back on (the process is ending): detach and drop the raw
            // connection, which closes it (a pooled one would need the runtime to return).
            Err(_) => drop(conn.detach()),
        }
    }
}

impl Deref for WriteTx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        self.conn.as_ref().expect("open transaction")
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        self.conn.as_mut().expect("open transaction")
    }
}
