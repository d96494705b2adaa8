//! The plans workbench: the catalog and its versions, and a plan file (opened by path with the
//! dialog plugin) checked, diffed, simulated, applied; subscribers migrated between versions.
//! The same service functions as `/v1/admin/plans/*`.

use super::error::CommandError;
use super::files::read_text;
use super::state::Console;
use crate::service::catalog::{ApplyOutcome, PlanChange};
use crate::service::plans_admin::{Migration, PlanCatalog, PlanCheck, SimulationReport};
use tauri::State;

impl Console {
    pub async fn plan_catalog(&self) -> Result<PlanCatalog, CommandError> {
        let (engine, actor) = self.staff().await?;
        Ok(engine.admin_plan_catalog(&actor).await?)
    }

    pub async fn check_plan_file(&self, path: &str) -> Result<PlanCheck, CommandError> {
        let (engine, actor) = self.staff().await?;
        Ok(engine.admin_check_plans(&actor, &read_text(path)?)?)
    }

    pub async fn diff_plan_file(&self, path: &str) -> Result<Vec<PlanChange>, CommandError> {
        let (engine, actor) = self.staff().await?;
        Ok(engine.admin_diff_plans(&actor, &read_text(path)?).await?)
    }

    pub async fn simulate_plan_file(
        &self,
        path: &str,
        events_path: &str,
    ) -> Result<SimulationReport, CommandError> {
        let (engine, actor) = self.staff().await?;
        let (source, events) = (read_text(path)?, read_text(events_path)?);
        Ok(engine.admin_simulate_plans(&actor, &source, &events)?)
    }

    pub async fn apply_plan_file(
        &self,
        path: &str,
        reason: Option<&str>,
    ) -> Result<ApplyOutcome, CommandError> {
        let (engine, actor) = self.staff().await?;
        Ok(engine
            .admin_apply_plans(&actor, &read_text(path)?, reason)
            .await?)
    }

    pub async fn migrate_plan_version(
        &self,
        from: &str,
        to: &str,
        reason: Option<&str>,
    ) -> Result<Migration, CommandError> {
        let (engine, actor) = self.staff().await?;
        Ok(engine.admin_migrate_plans(&actor, from, to, reason).await?)
    }
}

/// The current catalog and every plan version with its subscriber count.
#[tauri::command]
#[specta::specta]
pub async fn plan_catalog(console: State<'_, Console>) -> Result<PlanCatalog, CommandError> {
    console.plan_catalog().await
}

/// `plans check` of the file at `path`: problems with line, column and the line's text.
#[tauri::command]
#[specta::specta]
pub async fn check_plan_file(
    path: String,
    console: State<'_, Console>,
) -> Result<PlanCheck, CommandError> {
    console.check_plan_file(&path).await
}

/// `plans diff` of the file at `path` against the current catalog, with subscriber counts.
#[tauri::command]
#[specta::specta]
pub async fn diff_plan_file(
    path: String,
    console: State<'_, Console>,
) -> Result<Vec<PlanChange>, CommandError> {
    console.diff_plan_file(&path).await
}

/// `plans simulate`: the JSON-lines events file at `events_path` against the plan file at
/// `path`.
#[tauri::command]
#[specta::specta]
pub async fn simulate_plan_file(
    path: String,
    events_path: String,
    console: State<'_, Console>,
) -> Result<SimulationReport, CommandError> {
    console.simulate_plan_file(&path, &events_path).await
}

/// Publishes the file at `path` as the new catalog (admins; audited).
#[tauri::command]
#[specta::specta]
pub async fn apply_plan_file(
    path: String,
    reason: Option<String>,
    console: State<'_, Console>,
) -> Result<ApplyOutcome, CommandError> {
    console.apply_plan_file(&path, reason.as_deref()).await
}

/// Moves every subscriber of `from` (`pro@1`) to `to` (`pro@2`) (admins; audited).
#[tauri::command]
#[specta::specta]
pub async fn migrate_plan_version(
    from: String,
    to: String,
    reason: Option<String>,
    console: State<'_, Console>,
) -> Result<Migration, CommandError> {
    console
        .migrate_plan_version(&from, &to, reason.as_deref())
        .await
}
