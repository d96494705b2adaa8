//! Staff sign-in: a real session row (device `console`) through the same account service as
//! the HTTP login, so it is listed among the staff member's sessions and can be revoked.

use super::connection::console_device;
use super::error::{CommandError, ErrorCode};
use super::state::{Console, SignedIn};
use super::wire::StaffMember;
use crate::service::mfa::SecondFactor;
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

fn refuse_customers(user: &crate::domain::User) -> Result<(), CommandError> {
    if user.role.is_staff() {
        Ok(())
    } else {
        Err(CommandError::new(
            ErrorCode::NotStaff,
            "this is a customer account: the console is for support, finance and admin staff",
        ))
    }
}

impl Console {
    /// Signs a support, finance or admin account in; a customer's account gets `not_staff`
    /// and no session. With two-factor on, the answer is `mfa_required` carrying a challenge
    /// (as the HTTP login's is) and no session is opened until [`Console::sign_in_mfa`].
    pub async fn sign_in(&self, email: &str, password: &str) -> Result<StaffMember, CommandError> {
        let engine = self.connected().await?;
        let user = engine.verify_login(email, password).await?;
        refuse_customers(&user)?;
        if engine.mfa_enabled(&user.id).await? {
            return Err(crate::Error::MfaRequired(engine.mfa_challenge(&user.id)).into());
        }
        let pair = engine.open_session(&user, &console_device()).await?;
        self.keep_session(user, pair.session_id).await
    }

    /// Completes a sign-in that answered `mfa_required`, with a code or a recovery code,
    /// through the engine's `login_mfa` (the one `POST /v1/auth/login/mfa` uses).
    pub async fn sign_in_mfa(
        &self,
        challenge: &str,
        code: Option<&str>,
        recovery_code: Option<&str>,
    ) -> Result<StaffMember, CommandError> {
        let factor = match (code, recovery_code) {
            (Some(c), None) => SecondFactor::Code(c),
            (None, Some(r)) => SecondFactor::RecoveryCode(r),
            _ => {
                return Err(crate::Error::validation(
                    "code",
                    "one_of",
                    "give either a code or a recovery code",
                )
                .into())
            }
        };
        let engine = self.connected().await?;
        let (user, pair) = engine
            .login_mfa(challenge, factor, console_device())
            .await?;
        if let Err(e) = refuse_customers(&user) {
            // A challenge from a customer's HTTP login: close the session it just opened.
            let _ = engine
                .revoke_session(&user.id, pair.session_id.as_str(), "signed_out")
                .await;
            return Err(e);
        }
        self.keep_session(user, pair.session_id).await
    }

    /// Remembers a freshly opened session as the console's, revoking the one it replaces.
    async fn keep_session(
        &self,
        user: crate::domain::User,
        session: crate::domain::SessionId,
    ) -> Result<StaffMember, CommandError> {
        let signed_in = SignedIn { user, session };
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

/// Completes a sign-in that answered `mfa_required`: the error's `challenge` and either a
/// 6-digit code from the authenticator app or a recovery code.
#[tauri::command]
#[specta::specta]
pub async fn sign_in_mfa(
    challenge: String,
    code: Option<String>,
    recovery_code: Option<String>,
    console: State<'_, Console>,
) -> Result<StaffMember, CommandError> {
    console
        .sign_in_mfa(&challenge, code.as_deref(), recovery_code.as_deref())
        .await
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
