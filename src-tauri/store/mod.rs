//! Persistence on SQLite or PostgreSQL through one code path (sqlx's `Any` driver).
//!
//! SQL is written once in the dialect both engines share: `$N` parameters, `RETURNING`,
//! `ON CONFLICT`, partial indexes, and times as Unix milliseconds in 64-bit integers.
//! On SQLite writes go through a single connection so that transactions never fail with
//! `SQLITE_BUSY`; reads use a pool. On PostgreSQL both are the same pool.

pub mod account_tokens;
pub mod admin;
pub mod api_keys;
pub mod audit;
pub mod cache_invalidations;
pub mod catalogs;
pub mod leases;
pub mod mail;
pub mod mfa;
pub mod revenue;
pub mod schema;
pub mod seed;
pub mod sessions;
pub mod settings;
pub mod sqlite_config;
pub mod sqlite_writer;
pub mod stats;
pub mod stripe;
pub mod subscriptions;
pub mod usage;
pub mod usage_batch;
pub mod usage_pg_batch;
pub mod usage_rollups;
pub mod users;

use anyhow::Context;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

pub use sqlx::Any as Backend;
pub type Tx = sqlx::Transaction<'static, sqlx::Any>;
pub type AnyConn = sqlx::AnyConnection;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Db {
    read: AnyPool,
    write: AnyPool,
    kind: Kind,
    url: String,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Db")
            .field("kind", &self.kind)
            .field("url", &redact_url(&self.url))
            .finish()
    }
}

/// A database URL with any password replaced by `***`, for logs and status screens.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

impl Db {
    /// Opens the database the URL names; a SQLite file is created when missing.
    pub async fn connect(url: &str) -> anyhow::Result<Db> {
        sqlx::any::install_default_drivers();
        sqlite_config::configure();
        let kind = if url.starts_with("sqlite:") {
            Kind::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Kind::Postgres
        } else {
            anyhow::bail!(
                "unsupported database URL `{}`: use sqlite://FILE or postgres://…",
                redact_url(url)
            );
        };
        let full_url = match kind {
            Kind::Sqlite if !url.contains("mode=") => {
                format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
            }
            _ => url.to_owned(),
        };
        let opts = AnyConnectOptions::from_str(&full_url)
            .with_context(|| format!("parsing database URL {}", redact_url(url)))?;
        let (read, write) = match kind {
            Kind::Sqlite => {
                let write = sqlite_pool(1, WRITER_PRAGMAS)
                    .connect_with(opts.clone())
                    .await?;
                let read = sqlite_pool(8, "").connect_with(opts).await?;
                (read, write)
            }
            Kind::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(opts)
                    .await
                    .with_context(|| format!("connecting to {}", redact_url(url)))?;
                (pool.clone(), pool)
            }
        };
        Ok(Db {
            read,
            write,
            kind,
            url: url.to_owned(),
        })
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The URL with its password hidden.
    pub fn display_url(&self) -> String {
        redact_url(&self.url)
    }

    /// Pool for queries that only read.
    pub fn read(&self) -> &AnyPool {
        &self.read
    }

    /// Pool for statements that write (the single writer on SQLite).
    pub fn write(&self) -> &AnyPool {
        &self.write
    }

    /// Starts a write transaction. On SQLite it takes the file's write lock at once
    /// (`BEGIN IMMEDIATE`): when other processes share the file, a transaction that read
    /// first and then wrote could otherwise fail with `SQLITE_BUSY` instead of waiting.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        match self.kind {
            Kind::Sqlite => self.write.begin_with("BEGIN IMMEDIATE").await,
            Kind::Postgres => self.write.begin().await,
        }
    }

    /// Applies pending migrations for this backend.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        schema::migrator(self.kind)
            .run(&self.write)
            .await
            .context("applying migrations")?;
        Ok(())
    }

    /// A cheap round trip, for health checks.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.read)
            .await
            .map(|_| ())
    }

    /// Each connection pool with its open and idle connections: `read` and `write` on SQLite,
    /// one `shared` pool on PostgreSQL.
    pub fn pool_sizes(&self) -> Vec<PoolSize> {
        let of = |name, pool: &AnyPool| PoolSize {
            name,
            open: pool.size(),
            idle: pool.num_idle() as u32,
            max: pool.options().get_max_connections(),
        };
        match self.kind {
            Kind::Sqlite => vec![of("read", &self.read), of("write", &self.write)],
            Kind::Postgres => vec![of("shared", &self.write)],
        }
    }

    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}

/// A connection pool's size at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSize {
    pub name: &'static str,
    /// Connections open (idle or in use).
    pub open: u32,
    pub idle: u32,
    /// The most connections the pool opens.
    pub max: u32,
}

/// The settings of every SQLite connection.
pub(crate) const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;";

/// What a connection that writes adds: a page cache of 32 MiB (SQLite's default of 2 MiB
/// re-reads the pages of the usage indexes, whose inserts fall all over them, at every
/// commit), and statement journals (for triggers and upserts) in memory, not in temporary
/// files.
pub(crate) const WRITER_PRAGMAS: &str = "PRAGMA cache_size = -32768; PRAGMA temp_store = MEMORY;";

fn sqlite_pool(max: u32, extra: &'static str) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                conn.execute(SQLITE_PRAGMAS).await?;
                if !extra.is_empty() {
                    conn.execute(extra).await?;
                }
                Ok(())
            })
        })
}

/// If `e` is a unique-constraint violation, the constraint's name (PostgreSQL) or the
/// message naming its columns (SQLite), so that callers can map it to a domain error.
pub fn unique_violation(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(db) if db.is_unique_violation() => Some(
            db.constraint()
                .map(str::to_owned)
                .unwrap_or_else(|| db.message().to_owned()),
        ),
        _ => None,
    }
}

/// Unix milliseconds of a UTC time.
pub fn ms(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_millis()
}

/// The UTC time of Unix milliseconds read back from the store.
pub fn at(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}
