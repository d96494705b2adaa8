//! Stripe events: the stored webhook events, one event's raw JSON, replay (or its dry run) and
//! the import of an events file, as `/v1/admin/stripe/events/*`.

use super::error::CommandError;
use super::files::read_text;
use super::state::Console;
use crate::service::stripe_events::admin::{
    ImportReport, ReplayReport, ReplayRequest, StripeEventDetail, StripeEventImport,
    StripeEventPage, StripeEventQuery,
};
use tauri::State;

impl Console {
    pub async fn stripe_events(
        &self,
        query: &StripeEventQuery,
    ) -> Result<StripeEventPage, CommandError> {
        let (engine, actor) = self.staff().await?;
        Ok(engine.admin_stripe_events(&actor, query).await?)
    }

    pub async fn stripe_event(&self, id: &str) -> Result<StripeEventDetail, CommandError> {
        let (engine, actor) = self.staff().await?;
        Ok(engine.admin_stripe_event(&actor, id).await?)
    }

    pub async fn replay_stripe_events(
        &self,
        request: &ReplayRequest,
    ) -> Result<ReplayReport, CommandError> {
        let (engine, actor) = self.staff().await?;
        Ok(engine.admin_replay_stripe_events(&actor, request).await?)
    }

    /// Reads the file at `path` (picked with the open dialog) and stores its events as pending.
    pub async fn import_stripe_events(
        &self,
        path: &str,
        unsigned_local_test_data: bool,
        reason: Option<&str>,
    ) -> Result<ImportReport, CommandError> {
        let (engine, actor) = self.staff().await?;
        let events = read_text(path)?;
        Ok(engine
            .admin_import_stripe_events(
                &actor,
                &StripeEventImport {
                    events,
                    unsigned_local_test_data,
                    reason: reason.map(str::to_owned),
                },
            )
            .await?)
    }
}

/// Stored events, newest first, by type, status and customer or user.
#[tauri::command]
#[specta::specta]
pub async fn stripe_events(
    query: StripeEventQuery,
    console: State<'_, Console>,
) -> Result<StripeEventPage, CommandError> {
    console.stripe_events(&query).await
}

/// One stored event with its raw JSON.
#[tauri::command]
#[specta::specta]
pub async fn stripe_event(
    id: String,
    console: State<'_, Console>,
) -> Result<StripeEventDetail, CommandError> {
    console.stripe_event(&id).await
}

/// Applies events again (audited), or with `dry_run` shows each user's state before and after.
#[tauri::command]
#[specta::specta]
pub async fn replay_stripe_events(
    request: ReplayRequest,
    console: State<'_, Console>,
) -> Result<ReplayReport, CommandError> {
    console.replay_stripe_events(&request).await
}

/// Stores the events of a file as pending; files carry no signature, so
/// `unsigned_local_test_data` must be set.
#[tauri::command]
#[specta::specta]
pub async fn import_stripe_events(
    path: String,
    unsigned_local_test_data: bool,
    reason: Option<String>,
    console: State<'_, Console>,
) -> Result<ImportReport, CommandError> {
    console
        .import_stripe_events(&path, unsigned_local_test_data, reason.as_deref())
        .await
}
