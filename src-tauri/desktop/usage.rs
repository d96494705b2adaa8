//! Usage over time: the platform's stacked by plan, or one user's, as
//! `/v1/admin/usage/series`.

use super::error::CommandError;
use super::state::Console;
use crate::service::usage_series::{UsageSeries, UsageSeriesQuery};
use tauri::State;

impl Console {
    pub async fn usage_series(
        &self,
        query: &UsageSeriesQuery,
    ) -> Result<UsageSeries, CommandError> {
        let (engine, actor) = self.staff().await?;
        Ok(engine.admin_usage_series(&actor, query).await?)
    }
}

/// A metric's usage per day (per hour under three days), with the table under the chart.
#[tauri::command]
#[specta::specta]
pub async fn usage_series(
    query: UsageSeriesQuery,
    console: State<'_, Console>,
) -> Result<UsageSeries, CommandError> {
    console.usage_series(&query).await
}
