//! The status bar: the open database and the embedded HTTP API's switch.

use super::error::{CommandError, ErrorCode};
use super::state::Console;
use super::wire::{ApiListener, ApiStatus, Backend, ConsoleStatus};
use crate::service::Engine;
use std::net::SocketAddr;
use tauri::State;

/// `IP:PORT`, or the configured default when empty.
pub(crate) fn parse_addr(
    raw: Option<&str>,
    default: SocketAddr,
) -> Result<SocketAddr, CommandError> {
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

impl Console {
    async fn api_status(&self, engine: &Engine) -> ApiStatus {
        let addr = self.api.addr().await;
        ApiStatus {
            running: addr.is_some(),
            addr: addr.map(|a| a.to_string()),
            default_addr: engine.settings().addr.to_string(),
        }
    }

    pub async fn status(&self) -> Result<ConsoleStatus, CommandError> {
        let engine = self.connected().await?;
        let staff = self
            .signed_in()
            .await
            .map(|(_, s)| super::session::staff_member(&s));
        Ok(ConsoleStatus {
            database: engine.db().display_url(),
            backend: Backend::from(engine.db().kind()),
            users: engine.count_users().await?,
            api: self.api_status(&engine).await,
            staff,
        })
    }

    /// Serves the HTTP API over the open database. Like every console action, it needs a
    /// signed-in staff member.
    pub async fn start_api(&self, addr: Option<&str>) -> Result<ApiStatus, CommandError> {
        let (engine, _) = self.staff().await?;
        let addr = parse_addr(addr, engine.settings().addr)?;
        self.api.start(&engine, addr).await?;
        Ok(self.api_status(&engine).await)
    }

    /// The switch, requests per second, error counts and the latest `limit` refusals.
    pub async fn api_listener(&self, limit: Option<i64>) -> Result<ApiListener, CommandError> {
        let (engine, actor) = self.staff().await?;
        let traffic = engine
            .admin_traffic(&actor, self.api.counts(), limit)
            .await?;
        Ok(ApiListener {
            status: self.api_status(&engine).await,
            traffic,
        })
    }

    /// The running listener's API reference page.
    pub async fn docs_url(&self) -> Result<String, CommandError> {
        self.staff().await?;
        match self.api.addr().await {
            Some(addr) => Ok(docs_page(addr)),
            None => Err(CommandError::new(
                ErrorCode::ApiStopped,
                "the API listener is off: switch it on to read its documentation",
            )),
        }
    }

    pub async fn stop_api(&self) -> Result<ApiStatus, CommandError> {
        let engine = self.connected().await?;
        self.api.stop().await?;
        Ok(self.api_status(&engine).await)
    }
}

/// The open database, the API switch and the signed-in staff member.
#[tauri::command]
#[specta::specta]
pub async fn status(console: State<'_, Console>) -> Result<ConsoleStatus, CommandError> {
    console.status().await
}

/// Turns the HTTP API on at `addr` (default: the configured address).
#[tauri::command]
#[specta::specta]
pub async fn start_api(
    addr: Option<String>,
    console: State<'_, Console>,
) -> Result<ApiStatus, CommandError> {
    console.start_api(addr.as_deref()).await
}

/// The API screen: address, state, requests per second, error counts by status and code (as
/// `/metrics` counts them) and the latest refusals (`limit`: 1 to 200, 20 default).
#[tauri::command]
#[specta::specta]
pub async fn api_listener(
    limit: Option<i64>,
    console: State<'_, Console>,
) -> Result<ApiListener, CommandError> {
    console.api_listener(limit).await
}

/// `http://ADDR/docs`, reachable from this machine even when the listener is on every
/// interface (`0.0.0.0` or `::`).
fn docs_page(addr: SocketAddr) -> String {
    let host = match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_owned(),
        ip if ip.is_unspecified() => "[::1]".to_owned(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    format!("http://{host}:{}/docs", addr.port())
}

/// Opens the running listener's `/docs` in the default browser; answers the URL it opened.
/// Only this URL can be opened: the window itself has no permission to open any.
#[tauri::command]
#[specta::specta]
pub async fn open_api_docs(
    app: tauri::AppHandle,
    console: State<'_, Console>,
) -> Result<String, CommandError> {
    use tauri_plugin_opener::OpenerExt;
    let url = console.docs_url().await?;
    app.opener()
        .open_url(url.as_str(), None::<&str>)
        .map_err(|e| {
            CommandError::new(
                ErrorCode::BrowserUnavailable,
                format!("could not open {url} in a browser: {e}"),
            )
        })?;
    Ok(url)
}

/// Turns the HTTP API off once in-flight requests have finished.
#[tauri::command]
#[specta::specta]
pub async fn stop_api(console: State<'_, Console>) -> Result<ApiStatus, CommandError> {
    console.stop_api().await
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

    #[test]
    fn the_docs_url_reaches_the_listener_from_this_machine() {
        let url = |a: &str| docs_page(a.parse().unwrap());
        assert_eq!(url("127.0.0.1:8080"), "http://127.0.0.1:8080/docs");
        assert_eq!(url("0.0.0.0:9000"), "http://127.0.0.1:9000/docs");
        assert_eq!(url("[::]:9000"), "http://[::1]:9000/docs");
        assert_eq!(url("[::1]:81"), "http://[::1]:81/docs");
        assert_eq!(url("192.168.1.4:80"), "http://192.168.1.4:80/docs");
    }
}
