//! Home: the platform's figures at a glance.

use super::error::CommandError;
use super::state::Console;
use crate::service::admin::{Count, Stats};
use tauri::State;

/// Days of daily series on Home.
const DAYS: i64 = 30;

impl Console {
    pub async fn home_stats(&self) -> Result<Stats, CommandError> {
        let (engine, actor) = self.staff().await?;
        Ok(engine.admin_stats(&actor, DAYS).await?)
    }

    /// Refused requests since midnight (UTC), per error code.
    pub async fn refusals_today(&self) -> Result<Vec<Count>, CommandError> {
        let (engine, actor) = self.staff().await?;
        let midnight = engine
            .now()
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc();
        Ok(engine.admin_refusals_by_code(&actor, midnight).await?)
    }
}

/// Users by status and plan, signups and active users per day over 30 days.
#[tauri::command]
#[specta::specta]
pub async fn home_stats(console: State<'_, Console>) -> Result<Stats, CommandError> {
    console.home_stats().await
}

/// Refused requests since midnight (UTC) per error code, most frequent first.
#[tauri::command]
#[specta::specta]
pub async fn refusals_today(console: State<'_, Console>) -> Result<Vec<Count>, CommandError> {
    console.refusals_today().await
}
