//! Staff sign-in: a real session row (device `console`) through the same account service as
//! the HTTP login, so it is listed among the staff member's sessions and can be revoked.

use super::connection::console_device;
use super::error::{CommandError, ErrorCode};
use super::state::{Console, SignedIn};
use super::wire::StaffMember;
use crate::service::permissions::{allows, Action};
use tauri::State;

pub(crate) fn staff_member(s: &SignedIn) -> StaffMember {
    StaffMember {
        user_id: s.user.id.clone(),
        email: s.user.email.clone(),
        full_name: s.user.full_name.clone(),
        role: s.user.role,
        session_id: s.session.clone(),
    }
}

impl Console {
    /// Signs a support, finance or admin account in; a customer's account gets `not_staff`
    /// and no session.
    pub async fn sign_in(&self, email: &str, password: &str) -> Result<StaffMember, CommandError> {
        let engine = self.connected().await?;
        let user = engine.verify_login(email, password).await?;
        if !user.role.is_staff() {
            return Err(CommandError::new(
                ErrorCode::NotStaff,
                "this is a customer account: the console is for support, finance and admin staff",
            ));
        }
        let pair = engine.open_session(&user, &console_device()).await?;
        let signed_in = SignedIn {
            user,
            session: pair.session_id,
        };
        let previous = self.signed_in().await;
        if !self
            .remember_staff(signed_in.user.clone(), signed_in.session.clone())
            .await
        {
            return Err(CommandError::not_connected());
        }
        if let Some((engine, old)) = previous {
            let _ = engine
                .revoke_session(&old.user.id, old.session.as_str(), "signed_out")
                .await;
        }
        Ok(staff_member(&signed_in))
    }

    /// Revokes the console's session.
    pub async fn sign_out(&self) -> Result<(), CommandError> {
        let Some((engine, s)) = self.signed_in().await else {
            return Ok(());
        };
        self.forget_staff(&s.session).await;
        match engine
            .revoke_session(&s.user.id, s.session.as_str(), "signed_out")
            .await
        {
            // Already revoked elsewhere: signed out all the same.
            Ok(()) | Err(crate::Error::NotFound(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The back-office actions the signed-in role may take (the permission table).
    pub async fn permissions(&self) -> Result<Vec<Action>, CommandError> {
        let (_, actor) = self.staff().await?;
        Ok(Action::ALL
            .into_iter()
            .filter(|a| allows(actor.user.role, *a))
            .collect())
    }
}

/// Signs a staff member in with email and password.
#[tauri::command]
#[specta::specta]
pub async fn sign_in(
    email: String,
    password: String,
    console: State<'_, Console>,
) -> Result<StaffMember, CommandError> {
    console.sign_in(&email, &password).await
}

#[tauri::command]
#[specta::specta]
pub async fn sign_out(console: State<'_, Console>) -> Result<(), CommandError> {
    console.sign_out().await
}

/// What the signed-in role may do; the UI disables the rest (commands check anyway).
#[tauri::command]
#[specta::specta]
pub async fn permissions(console: State<'_, Console>) -> Result<Vec<Action>, CommandError> {
    console.permissions().await
}
