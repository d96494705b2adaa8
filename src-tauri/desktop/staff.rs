//! Staff accounts (admins only), as `/v1/admin/staff`.

use super::error::CommandError;
use super::state::Console;
use crate::domain::{Role, User};
use tauri::State;

impl Console {
    pub async fn list_staff(&self) -> Result<Vec<User>, CommandError> {
        let (engine, actor) = self.staff().await?;
        Ok(engine.admin_list_staff(&actor).await?)
    }

    pub async fn set_staff_role(
        &self,
        email: &str,
        role: Role,
        reason: Option<&str>,
    ) -> Result<User, CommandError> {
        let (engine, actor) = self.staff().await?;
        Ok(engine.admin_set_role(&actor, email, role, reason).await?)
    }
}

#[tauri::command]
#[specta::specta]
pub async fn list_staff(console: State<'_, Console>) -> Result<Vec<User>, CommandError> {
    console.list_staff().await
}

/// Gives an existing account a role (`user` takes staff rights away).
#[tauri::command]
#[specta::specta]
pub async fn set_staff_role(
    email: String,
    role: Role,
    reason: Option<String>,
    console: State<'_, Console>,
) -> Result<User, CommandError> {
    console
        .set_staff_role(&email, role, reason.as_deref())
        .await
}
