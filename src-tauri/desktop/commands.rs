//! The console's commands and their wire types. Each command is a few lines over the engine;
//! errors become a [`CommandError`] with a stable code here, in one place.

use super::embedded_api::{EmbeddedApi, SwitchError};
use crate::service::Engine;
use crate::store::Kind;
use serde::Serialize;
use specta::Type;
use std::net::SocketAddr;
use tauri::State;

/// What the console's status card shows.
#[derive(Debug, Clone, Serialize, Type)]
pub struct Status {
    /// The database URL with any password hidden.
    pub database: String,
    pub backend: Backend,
    /// Accounts that are not deleted.
    pub users: i64,
    pub api: ApiStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Type)]
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

/// The embedded HTTP API's switch.
#[derive(Debug, Clone, Serialize, Type)]
pub struct ApiStatus {
    pub running: bool,
    /// Where the API listens while it runs.
    pub addr: Option<String>,
    /// The address `start_api` uses when given none (`addr` in the settings, `TOLLGATE_ADDR`).
    pub default_addr: String,
}

/// A failed command. The UI switches on `code` and shows `message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Type, thiserror::Error)]
#[error("{message}")]
pub struct CommandError {
    pub code: ErrorCode,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The address is not `IP:PORT`.
    InvalidAddress,
    /// Another program already listens on the address.
    AddressInUse,
    /// The address is not one of this machine's, or the port needs privileges.
    AddressUnavailable,
    ApiAlreadyRunning,
    /// The server could not listen or stopped with an I/O error.
    ApiFailed,
    /// The engine failed (for example, the database did not answer).
    Internal,
}

impl CommandError {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl From<SwitchError> for CommandError {
    fn from(e: SwitchError) -> Self {
        use std::io::ErrorKind;
        let code = match &e {
            SwitchError::AlreadyRunning(_) => ErrorCode::ApiAlreadyRunning,
            SwitchError::Bind { source, .. } => match source.kind() {
                ErrorKind::AddrInUse => ErrorCode::AddressInUse,
                ErrorKind::AddrNotAvailable | ErrorKind::PermissionDenied => {
                    ErrorCode::AddressUnavailable
                }
                _ => ErrorCode::ApiFailed,
            },
            SwitchError::Failed(_) => ErrorCode::ApiFailed,
        };
        let message = match &e {
            SwitchError::Bind { addr, .. } if code == ErrorCode::AddressInUse => {
                format!(
                    "{addr} is already in use by another program: stop it or choose another port"
                )
            }
            _ => e.to_string(),
        };
        CommandError::new(code, message)
    }
}

impl From<crate::Error> for CommandError {
    fn from(e: crate::Error) -> Self {
        tracing::warn!(error = ?e, "console command failed");
        // The console runs on the operator's machine, so the causes are theirs to read.
        let mut message = e.to_string();
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            message = format!("{message}: {c}");
            cause = c.source();
        }
        CommandError::new(ErrorCode::Internal, message)
    }
}

/// `IP:PORT`, or the configured default when empty.
fn parse_addr(raw: Option<&str>, default: SocketAddr) -> Result<SocketAddr, CommandError> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(default),
        Some(s) => s.parse().map_err(|_| {
            CommandError::new(
                ErrorCode::InvalidAddress,
                format!("`{s}` is not an address like 127.0.0.1:8080"),
            )
        }),
    }
}

async fn api_status(engine: &Engine, api: &EmbeddedApi) -> ApiStatus {
    let addr = api.addr().await;
    ApiStatus {
        running: addr.is_some(),
        addr: addr.map(|a| a.to_string()),
        default_addr: engine.settings().addr.to_string(),
    }
}

#[tauri::command]
#[specta::specta]
pub async fn status(
    engine: State<'_, Engine>,
    api: State<'_, EmbeddedApi>,
) -> Result<Status, CommandError> {
    Ok(Status {
        database: engine.db().display_url(),
        backend: engine.db().kind().into(),
        users: engine.count_users().await?,
        api: api_status(&engine, &api).await,
    })
}

/// Turns the HTTP API on at `addr` (default: the configured address).
#[tauri::command]
#[specta::specta]
pub async fn start_api(
    addr: Option<String>,
    engine: State<'_, Engine>,
    api: State<'_, EmbeddedApi>,
) -> Result<ApiStatus, CommandError> {
    let addr = parse_addr(addr.as_deref(), engine.settings().addr)?;
    api.start(&engine, addr).await?;
    Ok(api_status(&engine, &api).await)
}

/// Turns the HTTP API off once in-flight requests have finished.
#[tauri::command]
#[specta::specta]
pub async fn stop_api(
    engine: State<'_, Engine>,
    api: State<'_, EmbeddedApi>,
) -> Result<ApiStatus, CommandError> {
    api.stop().await?;
    Ok(api_status(&engine, &api).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_ip_and_port_or_the_default() {
        let default: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert_eq!(parse_addr(None, default), Ok(default));
        assert_eq!(parse_addr(Some("  "), default), Ok(default));
        assert_eq!(
            parse_addr(Some("0.0.0.0:9000"), default).map(|a| a.to_string()),
            Ok("0.0.0.0:9000".to_owned())
        );
        let err = parse_addr(Some("localhost"), default).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidAddress);
    }
}
