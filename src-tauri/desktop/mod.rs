//! The desktop console (Tauri 2): a window over the same engine the HTTP API uses, with a
//! switch that serves the HTTP API from inside the app.

mod commands;
mod embedded_api;

pub use commands::{ApiStatus, Backend, CommandError, ErrorCode, Status};
pub use embedded_api::{EmbeddedApi, SwitchError};

use crate::config::Settings;
use crate::service::Engine;
use anyhow::Context;
use tokio::runtime::{Handle, RuntimeFlavor};

/// The console's commands, shared by the app and by the test that writes `ui/src/bindings.ts`.
pub fn specta_builder() -> tauri_specta::Builder<tauri::Wry> {
    tauri_specta::Builder::<tauri::Wry>::new()
        .commands(tauri_specta::collect_commands![
            commands::status,
            commands::start_api,
            commands::stop_api,
        ])
        // Counts, cents and millisecond times stay far below 2^53, so JSON numbers are exact.
        .dangerously_cast_bigints_to_number()
        // The wire types only travel Rust -> UI, so one TypeScript type each is enough.
        .disable_serde_phases()
}

/// Opens the console window and returns when it is closed.
///
/// The CLI calls this from inside its tokio runtime's `block_on`: the window's event loop takes
/// over this (main) thread, while commands and the embedded API run on that runtime.
pub fn run(settings: Settings) -> anyhow::Result<()> {
    let runtime = Handle::try_current().context("the desktop console needs a tokio runtime")?;
    anyhow::ensure!(
        runtime.runtime_flavor() == RuntimeFlavor::MultiThread,
        "the desktop console needs a multi-threaded tokio runtime"
    );
    // Without a display GTK panics deep inside the event loop; say what to do instead.
    #[cfg(any(
        target_os = "linux",
        target_os = "freebsd",
        target_os = "dragonfly",
        target_os = "netbsd",
        target_os = "openbsd"
    ))]
    anyhow::ensure!(
        std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some(),
        "no graphical display (DISPLAY and WAYLAND_DISPLAY are unset): \
         use `tollgate serve` to run the HTTP API, or see `tollgate --help`"
    );
    tokio::task::block_in_place(|| run_window(&runtime, settings))
}

fn run_window(runtime: &Handle, settings: Settings) -> anyhow::Result<()> {
    let engine = runtime.block_on(Engine::start(settings))?;
    // Commands must run where sqlx's pools were created.
    tauri::async_runtime::set(runtime.clone());
    let upkeep = {
        let _entered = runtime.enter();
        engine.spawn_upkeep()
    };
    let api = EmbeddedApi::default();

    let shown = show_window(&engine, &api);

    runtime.block_on(async {
        if let Err(e) = api.stop().await {
            tracing::warn!(error = %e, "stopping the HTTP API at exit");
        }
        upkeep.abort();
        engine.shutdown().await;
    });
    let exit_code = shown?;
    anyhow::ensure!(exit_code == 0, "the console exited with code {exit_code}");
    Ok(())
}

/// Runs the window's event loop until the window is closed; returns the exit code.
fn show_window(engine: &Engine, api: &EmbeddedApi) -> anyhow::Result<i32> {
    tracing::info!(database = %engine.db().display_url(), "opening the console");
    let builder = specta_builder();
    let app = tauri::Builder::default()
        .invoke_handler(builder.invoke_handler())
        .manage(engine.clone())
        .manage(api.clone())
        .setup(move |app| {
            builder.mount_events(app);
            Ok(())
        })
        .build(tauri::generate_context!())
        .context("opening the console window")?;
    Ok(app.run_return(|_, _| {}))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes the UI's typed bindings; CI fails when the checked-in file differs.
    #[test]
    fn export_bindings() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/ui/src/bindings.ts");
        specta_builder()
            .export(specta_typescript::Typescript::default(), path)
            .expect("exporting ui/src/bindings.ts");
        let written = std::fs::read_to_string(path).expect("reading the bindings");
        for command in ["status", "startApi", "stopApi"] {
            assert!(written.contains(command), "{command} is missing");
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_switch_serves_the_api_and_frees_the_port() {
        // Arrange
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("tollgate.db").display());
        let engine = Engine::start(Settings::for_database(&url))
            .await
            .expect("engine");
        let api = EmbeddedApi::default();

        // Act
        let addr = api
            .start(&engine, "127.0.0.1:0".parse().unwrap())
            .await
            .expect("starts");
        let health = reqwest::get(format!("http://{addr}/health"))
            .await
            .expect("health answers");

        // Assert
        assert_eq!(health.status(), 200);
        assert_eq!(api.addr().await, Some(addr));
        let again = api.start(&engine, addr).await.unwrap_err();
        assert_eq!(CommandError::from(again).code, ErrorCode::ApiAlreadyRunning);
        let other = EmbeddedApi::default();
        let taken = other.start(&engine, addr).await.unwrap_err();
        assert_eq!(CommandError::from(taken).code, ErrorCode::AddressInUse);

        api.stop().await.expect("stops");
        assert_eq!(api.addr().await, None);
        assert!(reqwest::get(format!("http://{addr}/health")).await.is_err());
        other
            .start(&engine, addr)
            .await
            .expect("the port is free again");
        other.stop().await.expect("stops");
        engine.shutdown().await;
    }
}
