//! Refusals explained by request id, and the fixes support may apply, as
//! `/v1/admin/decisions/*`.

use super::error::CommandError;
use super::state::Console;
use crate::service::admin::{Explanation, Fix};
use tauri::State;

impl Console {
    pub async fn explain_decision(&self, request_id: &str) -> Result<Explanation, CommandError> {
        let (engine, actor) = self.staff().await?;
        Ok(engine.admin_explain(&actor, request_id.trim()).await?)
    }

    /// Applies a fix the explanation offers; returns the explanation again.
    pub async fn apply_fix(
        &self,
        request_id: &str,
        fix: Fix,
        reason: Option<&str>,
    ) -> Result<Explanation, CommandError> {
        let (engine, actor) = self.staff().await?;
        engine
            .admin_apply_fix(&actor, request_id.trim(), fix, reason)
            .await?;
        Ok(engine.admin_explain(&actor, request_id.trim()).await?)
    }
}

/// Why a request was refused, in plain words, with the fixes support may apply.
#[tauri::command]
#[specta::specta]
pub async fn explain_decision(
    request_id: String,
    console: State<'_, Console>,
) -> Result<Explanation, CommandError> {
    console.explain_decision(&request_id).await
}

#[tauri::command]
#[specta::specta]
pub async fn apply_fix(
    request_id: String,
    fix: Fix,
    reason: Option<String>,
    console: State<'_, Console>,
) -> Result<Explanation, CommandError> {
    console.apply_fix(&request_id, fix, reason.as_deref()).await
}
