//! The SQLite usage writer: one thread with its own connection and prepared statements
//! commits each group of metered requests, so that the hot path pays neither the pool's
//! per-statement hand-off to a worker thread nor a statement parse. A second thread
//! checkpoints the write-ahead log, so that no commit waits for one.
//!
//! The connection is rusqlite's, on the same libsqlite3 as sqlx: the two share SQLite's
//! locks, and both begin write transactions with `BEGIN IMMEDIATE`, so they take turns
//! instead of deadlocking.

use super::usage::{
    ADD_COUNTERS, ADD_CREDITS, ADD_CREDITS_UPSERT, ADVANCE_GRANTED_FOR, INSERT_EVENT,
};
use super::usage_batch::{overdrawn, GroupWrites};
use super::Db;
use rusqlite::{named_params, params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// How often the log is checkpointed while the writer runs.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// The file of a SQLite database that other connections can open (not an in-memory one).
pub fn file_of(db: &Db) -> Option<PathBuf> {
    if db.kind() != super::Kind::Sqlite
        || db.url.contains(":memory:")
        || db.url.contains("mode=memory")
    {
        return None;
    }
    let opts: sqlx::sqlite::SqliteConnectOptions = db.url.parse().ok()?;
    Some(opts.get_filename().to_path_buf())
}

/// Opens the writer's connection, configured as the pool's are, with automatic checkpoints
/// off (see [`start_checkpoints`]).
pub fn open(file: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(file)?;
    conn.execute_batch(super::SQLITE_PRAGMAS)?;
    conn.execute_batch(super::WRITER_PRAGMAS)?;
    conn.execute_batch("PRAGMA wal_autocheckpoint = 0;")?;
    conn.set_prepared_statement_cache_capacity(16);
    Ok(conn)
}

/// The counter upsert of one row (built once: the statement cache is keyed by its text).
static ADD_COUNTER: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!("{}($1, $2, $3, $4, $5){}", ADD_COUNTERS.0, ADD_COUNTERS.1)
});

/// Commits `w` in one `BEGIN IMMEDIATE` transaction, a prepared statement per row.
///
/// The statements are the pool's, with `$N` parameters. SQLite numbers those in order of
/// first appearance, not by `N`, so statements whose parameters appear out of order are
/// bound by name.
pub fn commit(conn: &mut Connection, w: &GroupWrites<'_>) -> Result<(), String> {
    commit_rows(conn, w).map_err(|e| e.to_string())?
}

fn commit_rows(conn: &mut Connection, w: &GroupWrites<'_>) -> rusqlite::Result<Result<(), String>> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    {
        let mut insert = tx.prepare_cached(INSERT_EVENT)?;
        for e in &w.events {
            insert.execute(params![
                e.id,
                e.user_id,
                e.metric,
                e.kind,
                e.amount,
                e.at,
                e.period_start,
                e.request_id,
                e.idempotency_key,
                e.answer,
                e.plan_version_id
            ])?;
        }
        let mut counter = tx.prepare_cached(&ADD_COUNTER)?;
        for c in &w.counters {
            counter.execute(params![
                c.user_id,
                c.metric,
                c.period_start,
                c.period_end,
                c.delta
            ])?;
        }
        for c in &w.credits {
            // As in `usage_batch::commit`: only a net grant may create a balance.
            if c.delta >= 0 {
                tx.prepare_cached(ADD_CREDITS_UPSERT)?.execute(params![
                    c.user_id,
                    c.metric,
                    c.delta,
                    c.granted_for
                ])?;
            } else {
                let balance: Option<i64> = tx
                    .prepare_cached(ADD_CREDITS)?
                    .query_row(
                        named_params! {"$1": c.user_id, "$2": c.metric, "$3": c.delta},
                        |r| r.get(0),
                    )
                    .optional()?;
                if balance.is_none() {
                    // Dropping the transaction rolls it back.
                    return Ok(Err(overdrawn(c)));
                }
                tx.prepare_cached(ADVANCE_GRANTED_FOR)?.execute(params![
                    c.user_id,
                    c.metric,
                    c.granted_for
                ])?;
            }
        }
    }
    tx.commit()?;
    Ok(Ok(()))
}

/// Checkpoints `file`'s log every [`CHECKPOINT_EVERY`] from a thread of its own (passive:
/// it never waits for, nor blocks, a writer), until the returned sender is dropped.
pub fn start_checkpoints(file: PathBuf) -> std::io::Result<mpsc::Sender<()>> {
    let (stop, stopped) = mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("tollgate-checkpoint".into())
        .spawn(move || {
            let conn = match Connection::open(&file)
                .and_then(|c| c.execute_batch("PRAGMA busy_timeout = 10000;").map(|_| c))
            {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "could not open the checkpoint connection; the log is checkpointed by the other connections");
                    return;
                }
            };
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_EVERY) {
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!(error = %e, "checkpoint failed; tried again shortly");
                }
            }
        })?;
    Ok(stop)
}
