//! The desktop console (Tauri 2): a window over the same engine the HTTP API uses. It starts
//! without a database unless one is given, signs staff in with a real session, and offers the
//! back office screen by screen (one file of commands per screen).

mod api;
mod audit;
mod connection;
mod decisions;
mod embedded_api;
mod error;
mod files;
mod home;
mod plans;
mod recent;
mod revenue;
mod session;
mod staff;
mod state;
mod stripe;
mod usage;
mod users;
mod wire;

pub use connection::{suggested_database_url, DEMO_PASSWORD};
pub use embedded_api::{EmbeddedApi, SwitchError};
pub use error::{CommandError, ErrorCode};
pub use recent::{without_password, RecentConnections};
pub use state::{Console, VIA};
pub use wire::*;

use crate::config::Settings;
use anyhow::Context;
use tauri::Manager;
use tokio::runtime::{Handle, RuntimeFlavor};

/// The console's commands and events, shared by the app and by the test that writes
/// `ui/src/bindings.ts`.
pub fn specta_builder() -> tauri_specta::Builder<tauri::Wry> {
    tauri_specta::Builder::<tauri::Wry>::new()
        .commands(tauri_specta::collect_commands![
            // Connection screen and first run.
            connection::connection_state,
            connection::connect,
            connection::disconnect,
            connection::default_database_path,
            connection::create_first_admin,
            connection::seed_demo,
            // Session.
            session::sign_in,
            session::sign_in_mfa,
            session::sign_out,
            session::permissions,
            // Home.
            home::home_stats,
            // Users.
            users::list_users,
            users::user_detail,
            users::list_plans,
            users::change_plan,
            users::grant_credits,
            users::reset_usage,
            users::clear_limits,
            users::suspend_user,
            users::reactivate_user,
            users::revoke_sessions,
            users::revoke_key,
            users::impersonate,
            users::delete_user,
            users::resend_verification,
            users::reset_two_factor,
            // Refusals explained, and their fixes.
            decisions::explain_decision,
            decisions::apply_fix,
            // Usage over time.
            usage::usage_series,
            // Audit log.
            audit::audit_log,
            // Revenue (finance).
            revenue::revenue_mrr,
            revenue::revenue_movements,
            revenue::revenue_by_plan,
            revenue::revenue_churn,
            revenue::export_revenue_csv,
            // Plans workbench.
            plans::plan_catalog,
            plans::check_plan_file,
            plans::diff_plan_file,
            plans::simulate_plan_file,
            plans::apply_plan_file,
            plans::migrate_plan_version,
            // Stripe events.
            stripe::stripe_events,
            stripe::stripe_event,
            stripe::replay_stripe_events,
            stripe::import_stripe_events,
            // Staff accounts (admins).
            staff::list_staff,
            staff::set_staff_role,
            // Status bar.
            api::status,
            api::start_api,
            api::stop_api,
            api::open_api_docs,
            api::api_listener,
        ])
        .events(tauri_specta::collect_events![wire::SeedProgress])
        // Counts, cents and millisecond times stay far below 2^53, so JSON numbers are exact.
        .dangerously_cast_bigints_to_number()
        // The wire types only travel Rust -> UI, so one TypeScript type each is enough.
        .disable_serde_phases()
}

/// Opens the console window and returns when it is closed. `database_url` (from
/// `--database-url` or `TOLLGATE_DATABASE_URL`) opens that database at once; without it the
/// console starts on its connection screen.
///
/// The CLI calls this from inside its tokio runtime's `block_on`: the window's event loop takes
/// over this (main) thread, while commands and the embedded API run on that runtime.
pub fn run(settings: Settings, database_url: Option<String>) -> anyhow::Result<()> {
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
    tokio::task::block_in_place(|| run_window(&runtime, settings, database_url))
}

fn run_window(
    runtime: &Handle,
    settings: Settings,
    database_url: Option<String>,
) -> anyhow::Result<()> {
    // Commands must run where sqlx's pools are created.
    tauri::async_runtime::set(runtime.clone());
    let builder = specta_builder();
    let app = tauri::Builder::default()
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_opener::init())
        .invoke_handler(builder.invoke_handler())
        .setup(move |app| {
            builder.mount_events(app);
            let recent = app
                .path()
                .app_config_dir()
                .ok()
                .map(|dir| dir.join("recent-connections.json"));
            let console = Console::new(settings, RecentConnections::new(recent));
            let handle = app.handle().clone();
            console.on_title(move |title| {
                if let Some(window) = handle.get_webview_window("main") {
                    let _ = window.set_title(&title);
                }
            });
            if let Some(url) = database_url {
                let opened = tauri::async_runtime::block_on(console.connect(&url));
                if let Err(e) = opened {
                    tracing::warn!(error = %e, "could not open the database given at start-up");
                    console.set_initial_error(Some(e.message));
                }
            }
            app.manage(console);
            Ok(())
        })
        .build(tauri::generate_context!())
        .context("opening the console window")?;
    let exit_code = app.run_return(|handle, event| {
        if let tauri::RunEvent::Exit = event {
            // Stop the embedded API, the upkeep and the database before the process ends.
            if let Some(console) = handle.try_state::<Console>() {
                tauri::async_runtime::block_on(console.close());
            }
        }
    });
    anyhow::ensure!(exit_code == 0, "the console exited with code {exit_code}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::Engine;

    /// Writes the UI's typed bindings; CI fails when the checked-in file differs.
    #[test]
    fn export_bindings() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/ui/src/bindings.ts");
        specta_builder()
            .export(specta_typescript::Typescript::default(), path)
            .expect("exporting ui/src/bindings.ts");
        let written = std::fs::read_to_string(path).expect("reading the bindings");
        for command in [
            "status",
            "startApi",
            "stopApi",
            "signIn",
            "listUsers",
            "auditLog",
        ] {
            assert!(written.contains(command), "{command} is missing");
        }
    }

    #[test]
    fn the_desktop_command_takes_a_database_url() {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from([
            "tollgate",
            "desktop",
            "--database-url",
            "sqlite://x.db",
        ])
        .expect("parses");
        assert!(matches!(
            cli.command,
            Some(crate::cli::Command::Desktop { database_url: Some(ref u) }) if u == "sqlite://x.db"
        ));
        let bare = crate::cli::Cli::try_parse_from(["tollgate", "desktop"]).expect("parses");
        assert!(matches!(
            bare.command,
            Some(crate::cli::Command::Desktop { database_url: None })
        ));
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
