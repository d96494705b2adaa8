//! The SQLite usage writer: one thread with its own connection and prepared statements
//! commits each group of metered requests, so that the hot path pays neither the pool's
//! per-statement hand-off to a worker thread nor a statement parse. A second thread
//! checkpoints the write-ahead log, so that no commit waits for the bulk of one; the writer
//! copies only what it appended meanwhile ([`finish_checkpoint`]), so that the log starts
//! over instead of growing for as long as the load lasts.
//!
//! The connection is rusqlite's, on the same libsqlite3 as sqlx: the two share SQLite's
//! locks, and both begin write transactions with `BEGIN IMMEDIATE`, so they take turns
//! instead of deadlocking.

use super::usage::{
    ADD_COUNTERS, ADD_CREDITS, ADD_CREDITS_UPSERT, ADVANCE_GRANTED_FOR, INSERT_EVENT,
};
use super::usage_batch::{overdrawn, GroupWrites};
use super::Db;
use rusqlite::{ffi, named_params, params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// How often the log is checkpointed while the writer runs.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

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
    let conn = super::sqlite_config::open(file)?;
    conn.execute_batch(super::SQLITE_PRAGMAS)?;
    conn.execute_batch(super::WRITER_PRAGMAS)?;
    conn.execute_batch("PRAGMA wal_autocheckpoint = 0;")?;
    // The writer's rows name users who were authenticated for the request, and users are
    // never deleted (they are suspended). Checking the reference again would cost a lookup
    // per row and a statement journal per event: see [`INSERT_EVENT_OR_ROLLBACK`].
    conn.execute_batch("PRAGMA foreign_keys = OFF;")?;
    conn.busy_handler(Some(wait_for_lock))?;
    conn.set_prepared_statement_cache_capacity(16);
    Ok(conn)
}

/// How long the writer sleeps between two tries at the write lock, and how many tries it
/// makes (about ten seconds, as the pool's `busy_timeout`).
const LOCK_RETRY: Duration = Duration::from_micros(100);
const LOCK_TRIES: i32 = 100_000;

/// The writer's busy handler. SQLite's own (`busy_timeout`) sleeps 1, 2, 5, 10, then up to
/// 100 ms between tries, so a group commit that finds the pool's connection writing (the
/// keys' "last used" times, say, a transaction of a fraction of a millisecond) waits whole
/// milliseconds longer than it had to, and every request in the group with it.
fn wait_for_lock(tries: i32) -> bool {
    std::thread::sleep(LOCK_RETRY);
    tries < LOCK_TRIES
}

/// The event insert, rolling the whole group back if a row breaks a constraint. The writer
/// did so already (the group fails as one, and every request in it is answered with an
/// error); said in the statement, it spares SQLite a statement journal. A statement that
/// writes several rows (the event insert, through its triggers) and may abort half-way (a
/// constraint's default `ABORT`, an immediate foreign key's count, or a NOT NULL column that
/// an upsert sets, which migration 0013 removed from the sums the triggers add to) otherwise
/// copies every page it touches, before touching it, so that it could undo itself alone: 2.5
/// to 3 % of the server's CPU in a profile of the metered call.
static INSERT_EVENT_OR_ROLLBACK: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| INSERT_EVENT.replacen("INSERT INTO", "INSERT OR ROLLBACK INTO", 1));

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
        let mut insert = tx.prepare_cached(&INSERT_EVENT_OR_ROLLBACK)?;
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

/// The checkpoint thread, as the writer holds it: dropping it stops the thread.
pub struct Checkpoints {
    _stop: mpsc::Sender<()>,
    /// Set by the thread after each pass, for [`finish_checkpoint`].
    passed: Arc<AtomicBool>,
}

impl Checkpoints {
    /// Checkpoints `file`'s log every [`CHECKPOINT_EVERY`] from a thread of its own
    /// (passive: it never waits for, nor blocks, a writer).
    pub fn start(file: PathBuf) -> std::io::Result<Checkpoints> {
        let (stop, stopped) = mpsc::channel::<()>();
        let passed = Arc::new(AtomicBool::new(false));
        let flag = passed.clone();
        std::thread::Builder::new()
            .name("tollgate-checkpoint".into())
            .spawn(move || {
                let conn = match super::sqlite_config::open(&file)
                    .and_then(|c| c.execute_batch("PRAGMA busy_timeout = 10000;").map(|_| c))
                {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not open the checkpoint connection; the log is checkpointed by the other connections");
                        return;
                    }
                };
                while let Err(mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(CHECKPOINT_EVERY)
                {
                    // Each pass copies what the writer appended during the one before, and
                    // each write to disk what the pass before it copied, so that the writer's
                    // own part (`finish_checkpoint`) is short: a last few frames to copy, and
                    // a last few pages to write.
                    let passes = || {
                        checkpoint(&conn)?;
                        checkpoint(&conn)?;
                        write_back(&conn);
                        checkpoint(&conn)?;
                        write_back(&conn);
                        Ok::<_, rusqlite::Error>(())
                    };
                    match passes() {
                        Ok(()) => flag.store(true, Ordering::Release),
                        Err(e) => {
                            tracing::warn!(error = %e, "checkpoint failed; tried again shortly")
                        }
                    }
                }
            })?;
        Ok(Checkpoints {
            _stop: stop,
            passed,
        })
    }

    /// The writer's part of the last pass, if the thread has made one since the writer last
    /// did its part: see [`finish_checkpoint`].
    pub fn finish(&self, writer: &Connection) {
        finish_checkpoint(writer, &self.passed);
    }
}

/// Writes to disk the database pages that `conn`'s passes copied, and the log's frames,
/// through `conn`'s own file handles.
///
/// SQLite syncs the database file only after a checkpoint that reaches the end of the log:
/// the writer's part ([`finish_checkpoint`]), never the thread's passes, which a writer that
/// never pauses always outruns. That sync wrote back every page the thread had copied since
/// the last one (tens of megabytes, throttled by the kernel's writeback), and each request
/// of the group waiting behind it waited with it. Synced here first, the writer's sync finds
/// only the few pages of its own part. A file not open yet, or a sync that fails, is left to
/// SQLite's own sync, as before.
///
/// The handles are SQLite's: opening and closing descriptors of our own on the database
/// file would drop every POSIX lock the process holds on it (closing any descriptor of a
/// file does), and another process could then take the database for its own and cut the
/// log short under this one.
fn write_back(conn: &Connection) {
    for op in [
        ffi::SQLITE_FCNTL_FILE_POINTER,
        ffi::SQLITE_FCNTL_JOURNAL_POINTER,
    ] {
        let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
        // SAFETY: both file controls write one `sqlite3_file*` (the database's, the log's:
        // null until the connection has opened it) into the pointer they are given. The
        // handle belongs to `conn`, which this thread alone uses and which runs no statement
        // meanwhile; `xSync` is what SQLite itself calls on it.
        unsafe {
            let rc = ffi::sqlite3_file_control(
                conn.handle(),
                c"main".as_ptr(),
                op,
                (&mut file as *mut *mut ffi::sqlite3_file).cast(),
            );
            if rc != ffi::SQLITE_OK || file.is_null() || (*file).pMethods.is_null() {
                continue;
            }
            if let Some(sync) = (*(*file).pMethods).xSync {
                sync(file, ffi::SQLITE_SYNC_NORMAL);
            }
        }
    }
}

/// One passive checkpoint of the log from `conn`: it copies what it can without waiting.
fn checkpoint(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
}

/// Run by the writer between two commits when the checkpoint thread has made a pass (and
/// `passed` says so): checkpoints the frames the writer appended during that pass, from the
/// writer's own connection.
///
/// The log starts over from its beginning only when a write transaction begins with every
/// frame copied into the database. A writer that never pauses always appends during the
/// checkpoint thread's pass, so without this the log would grow for as long as the load
/// lasts, every commit writing into new file blocks that the file system must allocate and
/// zero first. No other connection writes meanwhile, so this pass reaches the end of the
/// log (unless a reader still needs its older frames: then the next pass tries again). It
/// copies only what the thread's pass left, which keeps the commit it delays short.
fn finish_checkpoint(conn: &Connection, passed: &AtomicBool) {
    if !passed.swap(false, Ordering::Acquire) {
        return;
    }
    if let Err(e) = checkpoint(conn) {
        tracing::warn!(error = %e, "the writer's checkpoint failed; tried again after the next pass");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One round of a writer that never pauses: a commit, then the checkpoint thread's pass
    /// with a second commit landing during it (a reader that began before that commit stands
    /// for the pass's start: a checkpoint copies no frame newer than a reader's snapshot),
    /// then what the writer does between two batches.
    fn round(db: &Connections, passed: &AtomicBool, finish: bool) {
        let fill = "x".repeat(3000);
        let insert = || {
            db.writer
                .execute("INSERT INTO t (v) VALUES (?1)", [&fill])
                .unwrap();
        };
        insert();
        db.reader
            .execute_batch("BEGIN; SELECT count(*) FROM t;")
            .unwrap();
        insert();
        checkpoint(&db.checkpointer).unwrap();
        passed.store(true, Ordering::Release);
        db.reader.execute_batch("COMMIT").unwrap();
        if finish {
            finish_checkpoint(&db.writer, passed);
        }
    }

    struct Connections {
        writer: Connection,
        reader: Connection,
        checkpointer: Connection,
    }

    fn log_len_after_rounds(finish: bool) -> (u64, u64) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("usage.db");
        let writer = open(&file).unwrap();
        writer
            .execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
            .unwrap();
        let db = Connections {
            writer,
            reader: crate::store::sqlite_config::open(&file).unwrap(),
            checkpointer: crate::store::sqlite_config::open(&file).unwrap(),
        };
        let passed = AtomicBool::new(false);
        let log = || {
            std::fs::metadata(file.with_extension("db-wal"))
                .unwrap()
                .len()
        };
        round(&db, &passed, finish);
        round(&db, &passed, finish);
        let early = log();
        for _ in 0..50 {
            round(&db, &passed, finish);
        }
        (early, log())
    }

    #[test]
    fn the_log_starts_over_when_the_writer_finishes_each_checkpoint() {
        let (early, late) = log_len_after_rounds(true);
        assert_eq!(late, early, "the log grew from {early} to {late} bytes");
    }

    #[test]
    fn without_the_writers_part_the_log_grows_as_long_as_the_writes_go_on() {
        // The failure this guards against: the thread's passes alone never catch up.
        let (early, late) = log_len_after_rounds(false);
        assert!(
            late > early * 10,
            "the log went from {early} to {late} bytes"
        );
    }

    fn event<'a>(id: &'a str, kind: &'a str) -> super::super::usage::NewEvent<'a> {
        super::super::usage::NewEvent {
            id,
            user_id: "usr_writer",
            metric: "videos",
            kind,
            amount: 1,
            at: 1_700_000_000_000,
            period_start: 1_699_920_000_000,
            request_id: None,
            idempotency_key: None,
            answer: Some("{}"),
            plan_version_id: Some("plv_writer"),
        }
    }

    fn counter(delta: i64) -> super::super::usage::CounterDelta<'static> {
        super::super::usage::CounterDelta {
            user_id: "usr_writer",
            metric: "videos",
            period_start: 1_699_920_000_000,
            period_end: 1_700_006_400_000,
            delta,
        }
    }

    /// What a group left: events, the counter, the user's daily rollup (amount, events) and
    /// the platform's hourly rollup (events).
    type Written = (i64, Option<i64>, Option<(i64, i64)>, Option<i64>);

    fn written(conn: &Connection) -> Written {
        let one = |sql: &str| conn.query_row(sql, [], |r| r.get(0)).optional().unwrap();
        (
            one("SELECT count(*) FROM usage_events").unwrap(),
            one("SELECT used FROM usage_counters"),
            conn.query_row("SELECT amount, events FROM usage_user_daily", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .unwrap(),
            one("SELECT events FROM usage_hourly"),
        )
    }

    #[test]
    fn a_row_that_breaks_a_constraint_rolls_its_whole_group_back() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("usage.db");
        let url = format!("sqlite://{}", file.display());
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let db = crate::store::Db::connect(&url).await.unwrap();
            db.migrate().await.unwrap();
        });
        let mut conn = open(&file).unwrap();
        // The second event's kind breaks the table's CHECK: its triggers had already run
        // for the first, and the counter would follow.
        let broken = GroupWrites {
            events: vec![event("use_1", "consume"), event("use_2", "bogus")],
            counters: vec![counter(2)],
            credits: vec![],
        };
        let err = commit(&mut conn, &broken).unwrap_err();
        assert!(err.contains("CHECK"), "{err}");
        assert!(conn.is_autocommit(), "the group's transaction is over");
        assert_eq!(
            written(&conn),
            (0, None, None, None),
            "nothing of the group stays"
        );

        let good = GroupWrites {
            events: vec![event("use_3", "consume")],
            counters: vec![counter(1)],
            credits: vec![],
        };
        commit(&mut conn, &good).unwrap();
        assert_eq!(written(&conn), (1, Some(1), Some((1, 1)), Some(1)));
    }
}
