//! The console's own wire types. The engine's types (users, subscriptions, audit entries…)
//! cross as they are, deriving `specta::Type` where they are defined.

use crate::domain::{Email, Role, SessionId, UserId};
use crate::service::admin::{Impersonation, UserDetail};
use crate::store::Kind;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use specta::Type;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl From<Kind> for Backend {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::Sqlite => Backend::Sqlite,
            Kind::Postgres => Backend::Postgres,
        }
    }
}

/// What the status bar shows.
#[derive(Debug, Clone, Serialize, Type)]
pub struct ConsoleStatus {
    /// The database URL with any password hidden.
    pub database: String,
    pub backend: Backend,
    /// Accounts that are not deleted.
    pub users: i64,
    pub api: ApiStatus,
    pub staff: Option<StaffMember>,
}

/// The embedded HTTP API's switch.
#[derive(Debug, Clone, Serialize, Type)]
pub struct ApiStatus {
    pub running: bool,
    /// Where the API listens while it runs.
    pub addr: Option<String>,
    /// The address `start_api` uses when given none (`addr` in the settings, `TOLLGATE_ADDR`).
    pub default_addr: String,
}

/// A file the console wrote.
#[derive(Debug, Clone, Serialize, Type)]
pub struct ExportedFile {
    pub path: String,
    /// Data rows (without the header).
    pub rows: i64,
    pub bytes: i64,
}

/// The API screen: the switch, and what the server has been answering.
#[derive(Debug, Clone, Serialize, Type)]
pub struct ApiListener {
    pub status: ApiStatus,
    /// Counters of the server running, or of the one last run (zero before the first start);
    /// the latest refusals recorded in the database (by this or any server).
    pub traffic: crate::service::traffic::Traffic,
}

/// The open database.
#[derive(Debug, Clone, Serialize, Type)]
pub struct DatabaseInfo {
    /// The URL with any password hidden.
    pub url: String,
    pub backend: Backend,
    /// False on a new database: the console offers to create the first admin.
    pub has_staff: bool,
    /// No customer accounts yet: the console offers demo data.
    pub is_empty: bool,
}

/// A database opened before, most recent first. Never holds a password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct RecentConnection {
    pub url: String,
    pub backend: Backend,
    pub last_used_ms: i64,
}

/// Everything the connection screen needs.
#[derive(Debug, Clone, Serialize, Type)]
pub struct ConnectionState {
    /// Set when a database is open (at start-up with `--database-url` or
    /// `TOLLGATE_DATABASE_URL`, or after `connect`).
    pub database: Option<DatabaseInfo>,
    pub staff: Option<StaffMember>,
    pub recent: Vec<RecentConnection>,
    /// Why the database given at start-up could not be opened.
    pub initial_error: Option<String>,
}

/// The signed-in staff member.
#[derive(Debug, Clone, Serialize, Type)]
pub struct StaffMember {
    pub user_id: UserId,
    pub email: Email,
    pub full_name: Option<String>,
    pub role: Role,
    /// The console's session: listed among the staff member's sessions (device `console`).
    pub session_id: SessionId,
}

/// What `seed_demo` added.
#[derive(Debug, Clone, Serialize, Type)]
pub struct SeedSummary {
    pub users: u64,
    pub events: u64,
    /// The password of every demo account.
    pub password: String,
}

/// Emitted while `seed_demo` runs.
#[derive(Debug, Clone, Serialize, Deserialize, Type, tauri_specta::Event)]
pub struct SeedProgress {
    /// `users`, then `events`.
    pub stage: String,
    pub done: u64,
    pub total: u64,
}

/// A plan new subscribers can be put on (the change-plan choice).
#[derive(Debug, Clone, Serialize, Type)]
pub struct PlanSummary {
    /// `pro`: what `change_plan` takes.
    pub plan_id: String,
    /// `pro@2`.
    pub label: String,
    pub name: String,
    pub description: String,
    /// Cents per interval.
    pub price: i64,
    pub currency: String,
    pub interval: crate::plans::Interval,
    pub is_default: bool,
}

/// A time-boxed token acting as the user, with the refreshed detail.
#[derive(Debug, Clone, Serialize, Type)]
pub struct Impersonated {
    pub impersonation: Impersonation,
    pub expires_at: DateTime<Utc>,
    pub detail: UserDetail,
}
