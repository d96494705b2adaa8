//! Process-wide SQLite settings, made once before the first connection opens: SQLite reads
//! them at its initialisation and refuses them afterwards.
//!
//! - Allocation statistics are off: nothing here reads them, and keeping them takes a
//!   process-wide mutex at every allocation.
//! - The page cache is SQLite's own, behind a thin layer ([`ParkedPageCache`]) that keeps a
//!   b-tree split from making every commit scan the whole cache.

use rusqlite::ffi;
use std::os::raw::{c_int, c_uint};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// Applies the settings, once per process. Later calls (and a SQLite already initialised by
/// someone else, which answers `SQLITE_MISUSE`) change nothing.
pub fn configure() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: both options are documented to be set before initialisation; SQLite checks
        // that and answers SQLITE_MISUSE otherwise, changing nothing. MEMSTATUS takes one
        // int; GETPCACHE2 and PCACHE2 take a pointer to a methods structure, which SQLite
        // copies (ours is a static all the same).
        unsafe {
            ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, 0 as c_int);
            let mut default: ffi::sqlite3_pcache_methods2 = std::mem::zeroed();
            if ffi::sqlite3_config(
                ffi::SQLITE_CONFIG_GETPCACHE2,
                &mut default as *mut ffi::sqlite3_pcache_methods2,
            ) != ffi::SQLITE_OK
                || DEFAULT_PCACHE.set(PcacheMethods(default)).is_err()
            {
                return;
            }
            let ours = PCACHE.get_or_init(|| PcacheMethods(parked_page_cache(&default)));
            let rc = ffi::sqlite3_config(
                ffi::SQLITE_CONFIG_PCACHE2,
                &ours.0 as *const ffi::sqlite3_pcache_methods2,
            );
            if rc != ffi::SQLITE_OK {
                tracing::debug!(
                    rc,
                    "SQLite was initialised already: its own page cache stays"
                );
            }
        }
    });
}

/// Opens a connection of this crate's own (the usage writer's, its checkpoints'), with the
/// settings applied first, whichever opens first.
pub fn open(file: &std::path::Path) -> rusqlite::Result<rusqlite::Connection> {
    configure();
    rusqlite::Connection::open(file)
}

/// How many times a b-tree split parked a page through [`ParkedPageCache`] (for tests).
pub fn pages_parked() -> u64 {
    PARKED.load(Ordering::Relaxed)
}

static PARKED: AtomicU64 = AtomicU64::new(0);

/// A methods table, shareable between threads: SQLite only reads it.
struct PcacheMethods(ffi::sqlite3_pcache_methods2);
// SAFETY: the table holds function pointers and SQLite's default `pArg` (null), never
// written after it is set.
unsafe impl Send for PcacheMethods {}
unsafe impl Sync for PcacheMethods {}

/// SQLite's default page cache, which every method forwards to.
static DEFAULT_PCACHE: OnceLock<PcacheMethods> = OnceLock::new();
static PCACHE: OnceLock<PcacheMethods> = OnceLock::new();

/// SQLite's default page cache, with one difference: the page number a b-tree split borrows
/// for a moment is kept under key 0 instead.
///
/// When a split leaves its new pages out of order, `balance_nonroot` swaps two of them
/// through a temporary number, the page that holds the file's lock bytes (page 262,145 with
/// 4 KiB pages, at 1 GiB into the file), which never holds data. The default cache then
/// remembers 262,145 as the highest page it ever held, and at the end of every transaction,
/// asked to drop the pages past the end of the database, it sees a range wider than its hash
/// table and scans the whole table: 4.5 % of the server's CPU in a profile of the metered
/// call, a tenth of the usage writer's. Key 0 is never a page (pages count from 1), so the
/// borrowed page is found there during the swap and the highest key stays honest.
#[repr(C)]
struct ParkedPageCache {
    inner: *mut ffi::sqlite3_pcache,
    /// The lock-byte page's number for this cache's page size.
    lock_page: c_uint,
}

fn default_pcache() -> &'static ffi::sqlite3_pcache_methods2 {
    &DEFAULT_PCACHE
        .get()
        .expect("our page cache is installed after the default is saved")
        .0
}

/// SQLite's `PENDING_BYTE`: the lock bytes' offset in every database file.
const PENDING_BYTE: c_uint = 0x4000_0000;

unsafe fn parts(p: *mut ffi::sqlite3_pcache) -> (*mut ffi::sqlite3_pcache, c_uint) {
    let c = &*(p as *const ParkedPageCache);
    (c.inner, c.lock_page)
}

fn key(lock_page: c_uint, key: c_uint) -> c_uint {
    if key == lock_page {
        0
    } else {
        key
    }
}

fn parked_page_cache(d: &ffi::sqlite3_pcache_methods2) -> ffi::sqlite3_pcache_methods2 {
    ffi::sqlite3_pcache_methods2 {
        iVersion: d.iVersion,
        pArg: d.pArg,
        xInit: d.xInit,
        xShutdown: d.xShutdown,
        xCreate: Some(create),
        xCachesize: Some(cachesize),
        xPagecount: Some(pagecount),
        xFetch: Some(fetch),
        xUnpin: Some(unpin),
        xRekey: Some(rekey),
        xTruncate: Some(truncate),
        xDestroy: Some(destroy),
        xShrink: Some(shrink),
    }
}

// SAFETY (every method below): SQLite calls them with a cache that `create` returned, so
// `p` points to a live `ParkedPageCache`; the default's methods are all present in a
// version-1+ table and are called with the inner cache, as SQLite would call them.

unsafe extern "C" fn create(
    sz_page: c_int,
    sz_extra: c_int,
    purgeable: c_int,
) -> *mut ffi::sqlite3_pcache {
    let inner = (default_pcache().xCreate.expect("xCreate"))(sz_page, sz_extra, purgeable);
    if inner.is_null() {
        return inner;
    }
    let lock_page = PENDING_BYTE / sz_page.max(1) as c_uint + 1;
    Box::into_raw(Box::new(ParkedPageCache { inner, lock_page })) as *mut ffi::sqlite3_pcache
}

unsafe extern "C" fn cachesize(p: *mut ffi::sqlite3_pcache, n: c_int) {
    (default_pcache().xCachesize.expect("xCachesize"))(parts(p).0, n)
}

unsafe extern "C" fn pagecount(p: *mut ffi::sqlite3_pcache) -> c_int {
    (default_pcache().xPagecount.expect("xPagecount"))(parts(p).0)
}

unsafe extern "C" fn fetch(
    p: *mut ffi::sqlite3_pcache,
    k: c_uint,
    create: c_int,
) -> *mut ffi::sqlite3_pcache_page {
    let (inner, lock_page) = parts(p);
    (default_pcache().xFetch.expect("xFetch"))(inner, key(lock_page, k), create)
}

unsafe extern "C" fn unpin(
    p: *mut ffi::sqlite3_pcache,
    page: *mut ffi::sqlite3_pcache_page,
    discard: c_int,
) {
    (default_pcache().xUnpin.expect("xUnpin"))(parts(p).0, page, discard)
}

unsafe extern "C" fn rekey(
    p: *mut ffi::sqlite3_pcache,
    page: *mut ffi::sqlite3_pcache_page,
    old: c_uint,
    new: c_uint,
) {
    let (inner, lock_page) = parts(p);
    if new == lock_page {
        PARKED.fetch_add(1, Ordering::Relaxed);
    }
    (default_pcache().xRekey.expect("xRekey"))(
        inner,
        page,
        key(lock_page, old),
        key(lock_page, new),
    )
}

unsafe extern "C" fn truncate(p: *mut ffi::sqlite3_pcache, limit: c_uint) {
    (default_pcache().xTruncate.expect("xTruncate"))(parts(p).0, limit)
}

unsafe extern "C" fn destroy(p: *mut ffi::sqlite3_pcache) {
    let c = Box::from_raw(p as *mut ParkedPageCache);
    (default_pcache().xDestroy.expect("xDestroy"))(c.inner)
}

unsafe extern "C" fn shrink(p: *mut ffi::sqlite3_pcache) {
    (default_pcache().xShrink.expect("xShrink"))(parts(p).0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inserts keys in an order that splits index pages all over (a multiplicative hash of
    /// the row number), in many small transactions, as the usage writer does.
    fn scattered_inserts(conn: &rusqlite::Connection, rows: u64) {
        conn.execute_batch(
            "CREATE TABLE t (k TEXT NOT NULL, v BLOB NOT NULL); CREATE INDEX t_k ON t (k);",
        )
        .unwrap();
        for chunk in 0..rows / 50 {
            let tx = conn.unchecked_transaction().unwrap();
            for i in chunk * 50..(chunk + 1) * 50 {
                let k = format!("{:016x}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                tx.execute("INSERT INTO t VALUES (?1, zeroblob(40))", [k])
                    .unwrap();
            }
            tx.commit().unwrap();
        }
    }

    #[test]
    fn splits_park_their_page_with_us_and_the_database_stays_sound() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(&dir.path().join("t.db")).unwrap();
        conn.execute_batch(crate::store::SQLITE_PRAGMAS).unwrap();
        let before = pages_parked();
        scattered_inserts(&conn, 20_000);
        assert!(
            pages_parked() > before,
            "the splits went through our page cache"
        );
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        let (n, distinct): (i64, i64) = conn
            .query_row("SELECT count(*), count(DISTINCT k) FROM t", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((n, distinct), (20_000, 20_000));
        // Every key is found through the index, and in order.
        let ordered: i64 = conn
            .query_row(
                "SELECT count(*) FROM (SELECT k, lag(k) OVER (ORDER BY k) AS p FROM t INDEXED BY t_k) WHERE p IS NULL OR p < k",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(ordered, 20_000);
    }

    #[test]
    fn the_lock_page_is_kept_under_key_zero_and_nothing_else_moves() {
        assert_eq!(key(262_145, 262_145), 0);
        assert_eq!(key(262_145, 262_144), 262_144);
        assert_eq!(key(262_145, 1), 1);
        assert_eq!(PENDING_BYTE / 4096 + 1, 262_145);
    }
}
