//! Revenue for finance: the same four tables as `/v1/admin/revenue/*` (the screen comes with
//! the console's second part; the commands are here so both transports offer the same).

use super::error::CommandError;
use super::state::Console;
use crate::service::revenue::{ChurnMonth, MovementMonth, MrrMonth, PlanMonth, Report};
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
