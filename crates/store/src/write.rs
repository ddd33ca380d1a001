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
//! before the connection can be used again, and a connection whose rollback fails, or that
//! saw a commit fail, is closed rather than returned: the next transaction starts on a fresh
//! one. So a write either committed, or left nothing behind.
//!
//! [`WriteHealth`] is what `/readyz` and the metrics report: the last storage fault, until a
//! write commits again.

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, Executor};
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Whether writes are committing. Shared by every clone of a store.
#[derive(Debug, Default)]
pub struct WriteHealth {
    /// The last fault, while it lasts.
    fault: Mutex<Option<String>>,
    /// A transaction ended without a commit since the last probe: the cause may have been
    /// a fault (disk full) rather than the caller's choice; `maintenance` probes.
    suspect: AtomicBool,
    /// Write transactions that failed to commit, or ended on a storage error.
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
    }

    pub(crate) fn committed(&self) {
        // Cheap on the hot path: only take the lock when there is something to clear.
        if self.suspect.load(Ordering::Relaxed) || self.has_fault() {
            let mut fault = self.fault.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(was) = fault.take() {
                tracing::warn!(was = %was, "storage writes again");
            }
        }
    }

    fn has_fault(&self) -> bool {
        self.fault.lock().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    /// Take the "a transaction ended without commit" mark (for `maintenance`).
    pub(crate) fn take_suspect(&self) -> bool {
        self.suspect.swap(false, Ordering::Relaxed)
    }
}

/// An open write transaction on one connection of the writer pool.
pub(crate) struct WriteTx {
    conn: Option<PoolConnection<Any>>,
    health: Arc<WriteHealth>,
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
            // "cannot start a transaction within a transaction", a cut connection, …:
            // whatever it is, this connection is not to be trusted again.
            health.failed(e.to_string());
            conn.close_on_drop();
            return Err(e);
        }
        Ok(WriteTx { conn: Some(conn), health })
    }

    /// Commit. On error nothing of the transaction stays: it is rolled back and its
    /// connection closed.
    pub(crate) async fn commit(mut self) -> Result<(), sqlx::Error> {
        let mut conn = self.conn.take().expect("a transaction is committed once");
        match conn.execute("COMMIT").await {
            Ok(_) => {
                self.health.committed();
                Ok(())
            }
            Err(e) => {
                self.health.failed(e.to_string());
                // SQLite may have rolled back already; either way, no connection that saw a
                // failed commit is used again.
                let _ = conn.execute("ROLLBACK").await;
                let _ = conn.close().await;
                Err(e)
            }
        }
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else { return };
        // Ended without a commit: an early return (not found, a conflict) or a storage error.
        self.health.suspect.store(true, Ordering::Relaxed);
        // The pool hands this connection out again only once the rollback is done (the
        // task holds it), so the next transaction never starts inside this one.
        let health = self.health.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    if let Err(e) = conn.execute("ROLLBACK").await {
                        // On SQLite "no transaction is active" means it rolled back by itself
                        // (a full disk, an I/O error); anything else is unknown state. Either
                        // way: a fresh connection next time.
                        health.failed(format!("rollback failed: {e}"));
                        let _ = conn.close().await;
                    }
                });
            }
            Err(_) => conn.close_on_drop(),
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
