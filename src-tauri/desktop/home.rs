//! Home: the platform's figures at a glance.

use super::error::CommandError;
use super::state::Console;
use crate::service::admin::Stats;
use tauri::State;

/// Days of daily series on Home.
const DAYS: i64 = 30;

impl Console {
    pub async fn home_stats(&self) -> Result<Stats, CommandError> {
        let (engine, actor) = self.staff().await?;
        Ok(engine.admin_stats(&actor, DAYS).await?)
    }
}

/// Users by status and plan, signups and active users per day over 30 days.
#[tauri::command]
#[specta::specta]
pub async fn home_stats(console: State<'_, Console>) -> Result<Stats, CommandError> {
    console.home_stats().await
}
