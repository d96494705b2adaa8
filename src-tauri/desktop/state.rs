//! What the console holds between commands: the open database (an engine, or none yet), the
//! signed-in staff member, the embedded API's switch and the recent connections.
//!
//! Every command is a thin Tauri wrapper over a method here, so that tests drive the same code
//! without a window.

use super::embedded_api::EmbeddedApi;
use super::error::{CommandError, ErrorCode};
use super::recent::RecentConnections;
use crate::config::Settings;
use crate::domain::{SessionId, User};
use crate::service::admin::Actor;
use crate::service::Engine;
use std::sync::OnceLock;
use tokio::sync::RwLock;
use tokio::task::JoinHandle;

/// How the console appears in the audit log and on its sessions.
pub const VIA: &str = "console";

/// The console's state, managed by Tauri.
pub struct Console {
    /// Settings from the file and environment; `connect` swaps only the database URL.
    pub(crate) base: Settings,
    pub(crate) api: EmbeddedApi,
    pub(crate) recent: RecentConnections,
    pub(crate) open: RwLock<Option<Connection>>,
    /// Why the database given at start-up could not be opened.
    pub(crate) initial_error: std::sync::Mutex<Option<String>>,
    /// Called with the window title whenever the database or the staff member changes.
    title: OnceLock<Box<dyn Fn(String) + Send + Sync>>,
}

pub(crate) struct Connection {
    pub(crate) engine: Engine,
    upkeep: JoinHandle<()>,
    pub(crate) staff: Option<SignedIn>,
}

#[derive(Clone)]
pub(crate) struct SignedIn {
    pub(crate) user: User,
    pub(crate) session: SessionId,
}

impl Console {
    /// A console with no database open. `recent` is where recent connections are kept.
    pub fn new(base: Settings, recent: RecentConnections) -> Console {
        Console {
            base,
            api: EmbeddedApi::default(),
            recent,
            open: RwLock::new(None),
            initial_error: std::sync::Mutex::new(None),
            title: OnceLock::new(),
        }
    }

    /// Where the window title goes (set once, by the app).
    pub fn on_title(&self, sink: impl Fn(String) + Send + Sync + 'static) {
        let _ = self.title.set(Box::new(sink));
    }

    pub fn api(&self) -> &EmbeddedApi {
        &self.api
    }

    /// The open engine, if any (tests and the status bar).
    pub async fn engine(&self) -> Option<Engine> {
        self.open.read().await.as_ref().map(|c| c.engine.clone())
    }

    /// Makes `engine` the open database: stops the embedded API and the old engine first.
    pub(crate) async fn install(&self, engine: Engine) {
        let upkeep = engine.spawn_upkeep();
        let old = {
            let mut open = self.open.write().await;
            self.close_current().await;
            open.replace(Connection {
                engine,
                upkeep,
                staff: None,
            })
        };
        if let Some(old) = old {
            old.upkeep.abort();
            old.engine.shutdown().await;
        }
        self.retitle().await;
    }

    /// Stops the embedded API (it serves the engine being replaced).
    async fn close_current(&self) {
        if let Err(e) = self.api.stop().await {
            tracing::warn!(error = %e, "stopping the HTTP API");
        }
    }

    /// Closes the open database, if any.
    pub async fn close(&self) {
        self.close_current().await;
        let old = self.open.write().await.take();
        if let Some(old) = old {
            old.upkeep.abort();
            old.engine.shutdown().await;
        }
        self.retitle().await;
    }

    /// The open engine, or `not_connected`.
    pub(crate) async fn connected(&self) -> Result<Engine, CommandError> {
        self.engine().await.ok_or_else(CommandError::not_connected)
    }

    /// The open engine and the signed-in staff member as an actor. The session is checked on
    /// every call, so revoking it (or suspending the account) signs the console out.
    pub(crate) async fn staff(&self) -> Result<(Engine, Actor), CommandError> {
        let (engine, signed_in) = {
            let open = self.open.read().await;
            let c = open.as_ref().ok_or_else(CommandError::not_connected)?;
            let s = c
                .staff
                .clone()
                .ok_or_else(|| CommandError::not_signed_in("sign in with a staff account first"))?;
            (c.engine.clone(), s)
        };
        let why = match engine
            .session_user(&signed_in.user.id, &signed_in.session)
            .await
        {
            Ok(user) if user.role.is_staff() => {
                let actor = Actor {
                    user,
                    via: VIA.to_owned(),
                };
                return Ok((engine, actor));
            }
            Ok(_) => "signed out: the account no longer has a staff role".to_owned(),
            Err(e @ crate::Error::Internal(_)) => return Err(e.into()),
            Err(e) => format!("signed out: {e}"),
        };
        self.forget_staff(&signed_in.session).await;
        Err(CommandError::not_signed_in(why))
    }

    /// Records the signed-in staff member on the open connection.
    pub(crate) async fn remember_staff(&self, user: User, session: SessionId) -> bool {
        let done = {
            let mut open = self.open.write().await;
            match open.as_mut() {
                Some(c) => {
                    c.staff = Some(SignedIn { user, session });
                    true
                }
                None => false,
            }
        };
        self.retitle().await;
        done
    }

    /// Forgets the signed-in staff member if it is still the one with `session`.
    pub(crate) async fn forget_staff(&self, session: &SessionId) {
        {
            let mut open = self.open.write().await;
            if let Some(c) = open.as_mut() {
                if c.staff.as_ref().is_some_and(|s| &s.session == session) {
                    c.staff = None;
                }
            }
        }
        self.retitle().await;
    }

    pub(crate) async fn signed_in(&self) -> Option<(Engine, SignedIn)> {
        let open = self.open.read().await;
        let c = open.as_ref()?;
        Some((c.engine.clone(), c.staff.clone()?))
    }

    /// "Tollgate — sqlite://tollgate.db — ada@example.com (support)".
    pub async fn title(&self) -> String {
        let open = self.open.read().await;
        let mut parts = vec!["Tollgate".to_owned()];
        if let Some(c) = open.as_ref() {
            parts.push(c.engine.db().display_url());
            if let Some(s) = &c.staff {
                parts.push(format!("{} ({})", s.user.email, s.user.role));
            }
        }
        parts.join(" — ")
    }

    pub(crate) async fn retitle(&self) {
        if let Some(sink) = self.title.get() {
            sink(self.title().await);
        }
    }

    pub(crate) fn set_initial_error(&self, e: Option<String>) {
        *self.initial_error.lock().expect("initial error lock") = e;
    }

    pub(crate) fn initial_error(&self) -> Option<String> {
        self.initial_error
            .lock()
            .expect("initial error lock")
            .clone()
    }
}

impl CommandError {
    /// A failed `connect`: a bad URL, or a database that could not be opened or migrated.
    pub(crate) fn connect_failed(e: anyhow::Error) -> Self {
        let message = format!("{e:#}");
        let code = if message.contains("unsupported database URL") {
            ErrorCode::InvalidDatabaseUrl
        } else {
            ErrorCode::ConnectFailed
        };
        CommandError::new(code, message)
    }
}
