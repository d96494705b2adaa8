//! Whether this instance should receive traffic (`GET /ready`): its database answers and has
//! every migration this build embeds. Redis is reported, never required: an instance whose
//! Redis is away limits rates locally and can still serve.

use super::rate_limits::RateLimitBackend;
use super::Engine;
use crate::store;
use serde::Serialize;
use std::time::Duration;

/// How long the database checks may take before the database counts as unreachable (load
/// balancers give a check a few seconds).
const DATABASE_CHECK_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Readiness {
    /// `ok` (send traffic) or `unavailable`.
    pub status: &'static str,
    /// `ok` or `unreachable`.
    pub database: &'static str,
    /// `ok`, `pending` (this build has migrations the database lacks: run `tollgate migrate`)
    /// or `unknown` (the database could not say).
    pub migrations: &'static str,
    /// Where rate limits are counted: `ok` (shared through Redis), `degraded` (Redis
    /// configured but not answering, counted by this instance alone) or `off` (no Redis
    /// configured). Never makes the instance unavailable.
    pub redis: RateLimitBackend,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.status == "ok"
    }
}

impl Engine {
    /// The readiness checks, database and Redis at once.
    pub async fn readiness(&self) -> Readiness {
        let (database, redis) = tokio::join!(
            tokio::time::timeout(DATABASE_CHECK_TIMEOUT, self.check_schema()),
            self.check_rate_limit_backend()
        );
        let (database, migrations) = database.unwrap_or(("unreachable", "unknown"));
        let ready = database == "ok" && migrations == "ok";
        Readiness {
            status: if ready { "ok" } else { "unavailable" },
            database,
            migrations,
            redis,
        }
    }

    /// (database, migrations)
    async fn check_schema(&self) -> (&'static str, &'static str) {
        if let Err(e) = self.db().ping().await {
            tracing::warn!(error = %e, "readiness: the database does not answer");
            return ("unreachable", "unknown");
        }
        match store::schema::missing_migrations(self.db()).await {
            Ok(missing) if missing.is_empty() => ("ok", "ok"),
            Ok(missing) => {
                tracing::warn!(
                    ?missing,
                    "readiness: the database lacks migrations of this build (run `tollgate migrate`)"
                );
                ("ok", "pending")
            }
            Err(e) => {
                tracing::warn!(error = %e, "readiness: could not read the applied migrations");
                ("ok", "unknown")
            }
        }
    }
}
