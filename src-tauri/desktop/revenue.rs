//! Revenue for finance: the same four tables as `/v1/admin/revenue/*`, and any of them written
//! as CSV to a path the UI picked with the save dialog.

use super::error::CommandError;
use super::files::write_text;
use super::state::Console;
use super::wire::ExportedFile;
use crate::service::revenue::{
    ChurnMonth, MovementMonth, MrrMonth, PlanMonth, Report, RevenueTable,
};
use tauri::State;

impl Console {
    pub async fn revenue_mrr(&self, months: Option<i64>) -> Result<Report<MrrMonth>, CommandError> {
        let (engine, actor) = self.staff().await?;
        Ok(engine.admin_revenue_mrr(&actor, months).await?)
    }

    pub async fn revenue_movements(
        &self,
        months: Option<i64>,
    ) -> Result<Report<MovementMonth>, CommandError> {
        let (engine, actor) = self.staff().await?;
        Ok(engine.admin_revenue_movements(&actor, months).await?)
    }

    pub async fn revenue_by_plan(
        &self,
        months: Option<i64>,
    ) -> Result<Report<PlanMonth>, CommandError> {
        let (engine, actor) = self.staff().await?;
        Ok(engine.admin_revenue_by_plan(&actor, months).await?)
    }

    pub async fn revenue_churn(
        &self,
        months: Option<i64>,
    ) -> Result<Report<ChurnMonth>, CommandError> {
        let (engine, actor) = self.staff().await?;
        Ok(engine.admin_revenue_churn(&actor, months).await?)
    }

    pub async fn export_revenue_csv(
        &self,
        table: RevenueTable,
        months: Option<i64>,
        path: &str,
    ) -> Result<ExportedFile, CommandError> {
        let (engine, actor) = self.staff().await?;
        let csv = engine.admin_revenue_csv(&actor, table, months).await?;
        let bytes = write_text(path, &csv)?;
        Ok(ExportedFile {
            path: path.to_owned(),
            rows: csv.lines().count().saturating_sub(1) as i64,
            bytes,
        })
    }
}

/// MRR, ARR, paying customers, ARPU per month and currency (`months`: 1 to 120, 12 default).
#[tauri::command]
#[specta::specta]
pub async fn revenue_mrr(
    months: Option<i64>,
    console: State<'_, Console>,
) -> Result<Report<MrrMonth>, CommandError> {
    console.revenue_mrr(months).await
}

/// MRR movements per month: new, expansion, contraction, churned, reactivation.
#[tauri::command]
#[specta::specta]
pub async fn revenue_movements(
    months: Option<i64>,
    console: State<'_, Console>,
) -> Result<Report<MovementMonth>, CommandError> {
    console.revenue_movements(months).await
}

/// Customers, MRR, collected and refunded money per plan and month.
#[tauri::command]
#[specta::specta]
pub async fn revenue_by_plan(
    months: Option<i64>,
    console: State<'_, Console>,
) -> Result<Report<PlanMonth>, CommandError> {
    console.revenue_by_plan(months).await
}

/// Customer and revenue churn per month.
#[tauri::command]
#[specta::specta]
pub async fn revenue_churn(
    months: Option<i64>,
    console: State<'_, Console>,
) -> Result<Report<ChurnMonth>, CommandError> {
    console.revenue_churn(months).await
}

/// Writes `table` as CSV (the same as `?format=csv`) to `path`, chosen with the save dialog.
#[tauri::command]
#[specta::specta]
pub async fn export_revenue_csv(
    table: RevenueTable,
    months: Option<i64>,
    path: String,
    console: State<'_, Console>,
) -> Result<ExportedFile, CommandError> {
    console.export_revenue_csv(table, months, &path).await
}
