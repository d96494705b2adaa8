//! The connection screen: open or create a database, first-run set-up, demo data.

use super::error::CommandError;
use super::state::{Console, VIA};
use super::wire::{Backend, ConnectionState, DatabaseInfo, SeedProgress, SeedSummary, StaffMember};
use crate::service::accounts::Device;
use crate::service::permissions::Action;
use crate::service::Engine;
use tauri::State;
use tauri_specta::Event;

/// The password every demo account gets.
pub const DEMO_PASSWORD: &str = "seed-password";

impl Console {
    pub async fn connection_state(&self) -> Result<ConnectionState, CommandError> {
        // The window may not have existed when a database given at start-up was opened.
        self.retitle().await;
        let database = match self.engine().await {
            Some(engine) => Some(database_info(&engine).await?),
            None => None,
        };
        let staff = self
            .signed_in()
            .await
            .map(|(_, s)| super::session::staff_member(&s));
        Ok(ConnectionState {
            database,
            staff,
            recent: self.recent.list(),
            initial_error: self.initial_error(),
        })
    }

    /// Opens (or creates) the database at `url`, migrates it as `serve` does and makes it the
    /// console's database, closing the previous one.
    pub async fn connect(&self, url: &str) -> Result<DatabaseInfo, CommandError> {
        let url = url.trim();
        let mut settings = self.base.clone();
        settings.database_url = url.to_owned();
        let engine = Engine::start(settings)
            .await
            .map_err(CommandError::connect_failed)?;
        let info = database_info(&engine).await?;
        if let Err(e) = self
            .recent
            .remember(url, info.backend, crate::store::ms(engine.now()))
        {
            tracing::warn!(error = %e, "could not remember the connection");
        }
        self.install(engine).await;
        self.set_initial_error(None);
        Ok(info)
    }

    pub async fn disconnect(&self) -> Result<(), CommandError> {
        if let Some((engine, s)) = self.signed_in().await {
            let _ = engine
                .revoke_session(&s.user.id, s.session.as_str(), "signed_out")
                .await;
        }
        self.close().await;
        Ok(())
    }

    /// Creates the first admin of a database without staff and signs them in.
    pub async fn create_first_admin(
        &self,
        email: &str,
        password: &str,
    ) -> Result<StaffMember, CommandError> {
        let engine = self.connected().await?;
        engine.create_first_admin(email, password).await?;
        self.sign_in(email, password).await
    }

    /// Adds `users` demo customers (and twice as many usage events) to a database that has
    /// none, reporting progress (admins only).
    pub async fn seed_demo(
        &self,
        users: u32,
        progress: &(dyn Fn(SeedProgress) + Sync),
    ) -> Result<SeedSummary, CommandError> {
        let (engine, actor) = self.staff().await?;
        // Seeding creates accounts: as for managing staff, admins only.
        engine.authorize(&actor, Action::ManageStaff)?;
        if !(1..=100_000).contains(&users) {
            return Err(crate::Error::validation(
                "users",
                "out_of_range",
                "demo data has 1 to 100,000 users",
            )
            .into());
        }
        if engine.has_customers().await? {
            return Err(crate::Error::DatabaseNotEmpty.into());
        }
        let events = u64::from(users) * 2;
        let report = |stage: &str, done: u64, total: u64| {
            progress(SeedProgress {
                stage: stage.to_owned(),
                done,
                total,
            })
        };
        let seed = rand::random();
        engine.seed(u64::from(users), events, seed, &report).await?;
        // A quarter of the customers pay, with two years of invoices for the Revenue screen.
        engine
            .seed_revenue(u64::from(users) / 4, 24, seed, &report)
            .await?;
        Ok(SeedSummary {
            users: u64::from(users),
            events,
            password: DEMO_PASSWORD.to_owned(),
        })
    }
}

pub(crate) async fn database_info(engine: &Engine) -> Result<DatabaseInfo, CommandError> {
    Ok(DatabaseInfo {
        url: engine.db().display_url(),
        backend: Backend::from(engine.db().kind()),
        has_staff: engine.has_staff().await?,
        is_empty: !engine.has_customers().await?,
    })
}

/// Where a new SQLite database goes by default: `tollgate.db` in the documents folder (or
/// the home folder), as a `sqlite://` URL.
pub fn suggested_database_url() -> String {
    let dir = std::env::var_os("HOME")
        .map(std::path::PathBuf::from)
        .map(|home| {
            let docs = home.join("Documents");
            if docs.is_dir() {
                docs
            } else {
                home
            }
        })
        .unwrap_or_else(|| std::path::PathBuf::from("."));
    format!("sqlite://{}", dir.join("tollgate.db").display())
}

/// A console session is a device like any other.
pub(crate) fn console_device() -> Device {
    Device {
        user_agent: Some(VIA.to_owned()),
        ip: Some(VIA.to_owned()),
    }
}

#[tauri::command]
#[specta::specta]
pub async fn connection_state(
    console: State<'_, Console>,
) -> Result<ConnectionState, CommandError> {
    console.connection_state().await
}

/// Opens `sqlite://FILE` (created when missing) or `postgres://…`, running migrations.
#[tauri::command]
#[specta::specta]
pub async fn connect(
    url: String,
    console: State<'_, Console>,
) -> Result<DatabaseInfo, CommandError> {
    console.connect(&url).await
}

/// Signs out and closes the database.
#[tauri::command]
#[specta::specta]
pub async fn disconnect(console: State<'_, Console>) -> Result<(), CommandError> {
    console.disconnect().await
}

/// The suggested URL of a new SQLite database.
#[tauri::command]
#[specta::specta]
pub fn default_database_path() -> String {
    suggested_database_url()
}

/// First-run set-up: creates the first admin and signs them in.
#[tauri::command]
#[specta::specta]
pub async fn create_first_admin(
    email: String,
    password: String,
    console: State<'_, Console>,
) -> Result<StaffMember, CommandError> {
    console.create_first_admin(&email, &password).await
}

/// Adds demo data to an empty database, emitting `SeedProgress` as it goes.
#[tauri::command]
#[specta::specta]
pub async fn seed_demo(
    users: u32,
    app: tauri::AppHandle,
    console: State<'_, Console>,
) -> Result<SeedSummary, CommandError> {
    let progress = move |p: SeedProgress| {
        if let Err(e) = p.emit(&app) {
            tracing::debug!(error = %e, "could not report seeding progress");
        }
    };
    console.seed_demo(users, &progress).await
}
