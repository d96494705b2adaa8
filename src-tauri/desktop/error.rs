//! The one error every console command returns: a stable code the UI switches on, and a
//! message it shows. Engine errors keep the same codes as the HTTP API.

use super::embedded_api::SwitchError;
use serde::{Deserialize, Serialize};
use specta::Type;

/// A failed command. The UI switches on `code` and shows `message`; `field` names the input a
/// validation failure is about, and `fields` lists every one. `challenge` comes with
/// `mfa_required`: the signed login challenge that `sign_in_mfa` completes with a second factor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Type, thiserror::Error)]
#[error("{message}")]
pub struct CommandError {
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
    pub fields: Vec<crate::error::FieldError>,
    pub challenge: Option<String>,
}

/// Every code a command can fail with: the engine's codes (`crate::Error::code`, the same as
/// the HTTP API's) and the console's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    // The console's own codes.
    /// No database is open: connect first.
    NotConnected,
    /// Nobody is signed in, or the console's session was revoked or expired.
    NotSignedIn,
    /// The account is a customer's, not staff's.
    NotStaff,
    /// The database URL is neither `sqlite://…` nor `postgres://…`.
    InvalidDatabaseUrl,
    /// The database could not be opened or migrated (the message says why).
    ConnectFailed,
    /// The address is not `IP:PORT`.
    InvalidAddress,
    /// Another program already listens on the address.
    AddressInUse,
    /// The address is not one of this machine's, or the port needs privileges.
    AddressUnavailable,
    ApiAlreadyRunning,
    /// The server could not listen or stopped with an I/O error.
    ApiFailed,
    /// The API listener is off, so there is nothing to open.
    ApiStopped,
    /// No browser could be started to open a page (the message says why).
    BrowserUnavailable,
    /// A file the console was asked to open could not be read (missing, not text, no access).
    FileUnreadable,
    /// A file the console was asked to write could not be written.
    FileUnwritable,
    // The engine's codes.
    ValidationFailed,
    EmailTaken,
    InvalidCredentials,
    AccountSuspended,
    AccountDeleted,
    MissingCredentials,
    InvalidToken,
    TokenExpired,
    InvalidRefreshToken,
    RefreshTokenExpired,
    RefreshTokenReused,
    SessionRevoked,
    InvalidApiKey,
    ApiKeyExpired,
    ApiKeyRevoked,
    InsufficientScope,
    WrongPassword,
    NotFound,
    Forbidden,
    QuotaExceeded,
    InsufficientCredits,
    FeatureNotInPlan,
    RateLimited,
    TooManyLoginAttempts,
    UnknownMetric,
    UnknownPlan,
    InvalidCatalog,
    AlreadySubscribed,
    StaffExists,
    DatabaseNotEmpty,
    CatalogChangedConcurrently,
    IdempotencyKeyInUse,
    AlreadyReleased,
    DeletedAccountCannotBeReactivated,
    AccountNotActive,
    Misconfigured,
    StripeNotConfigured,
    StripeUnavailable,
    StripeError,
    NoBillingAccount,
    InvalidSignature,
    InvalidStripeEvent,
    PlanIsFree,
    PlanHasNoPrice,
    EmailUnverified,
    EmailAlreadyVerified,
    InvalidLinkToken,
    MfaRequired,
    InvalidMfaCode,
    MfaNotEnabled,
    MfaAlreadyEnabled,
    DatabaseUnavailable,
    /// The engine failed (for example, the database did not answer).
    Internal,
}

impl ErrorCode {
    /// The variant spelled `code` (an engine code); `None` for a code this enum lacks, which
    /// the test below rules out.
    pub fn from_code(code: &str) -> Option<ErrorCode> {
        serde_json::from_value(serde_json::Value::String(code.to_owned())).ok()
    }
}

impl CommandError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: None,
            fields: Vec::new(),
            challenge: None,
        }
    }

    pub fn not_connected() -> Self {
        Self::new(
            ErrorCode::NotConnected,
            "no database is open: connect to one first",
        )
    }

    pub fn not_signed_in(why: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotSignedIn, why)
    }
}

impl From<crate::Error> for CommandError {
    fn from(e: crate::Error) -> Self {
        let code = ErrorCode::from_code(e.code()).unwrap_or(ErrorCode::Internal);
        if code == ErrorCode::Internal {
            tracing::warn!(error = ?e, "console command failed");
        }
        let fields = match &e {
            crate::Error::Validation(list) => list.clone(),
            _ => Vec::new(),
        };
        // The console runs on the operator's machine, so the causes are theirs to read.
        let mut message = match fields.as_slice() {
            [] => e.to_string(),
            list => list
                .iter()
                .map(|f| f.message.as_str())
                .collect::<Vec<_>>()
                .join("; "),
        };
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            message = format!("{message}: {c}");
            cause = c.source();
        }
        let challenge = match &e {
            crate::Error::MfaRequired(challenge) => Some(challenge.clone()),
            _ => None,
        };
        CommandError {
            code,
            message,
            field: fields.first().map(|f| f.field.clone()),
            fields,
            challenge,
        }
    }
}

impl From<SwitchError> for CommandError {
    fn from(e: SwitchError) -> Self {
        use std::io::ErrorKind;
        let code = match &e {
            SwitchError::AlreadyRunning(_) => ErrorCode::ApiAlreadyRunning,
            SwitchError::Bind { source, .. } => match source.kind() {
                ErrorKind::AddrInUse => ErrorCode::AddressInUse,
                ErrorKind::AddrNotAvailable | ErrorKind::PermissionDenied => {
                    ErrorCode::AddressUnavailable
                }
                _ => ErrorCode::ApiFailed,
            },
            SwitchError::Failed(_) => ErrorCode::ApiFailed,
        };
        let message = match &e {
            SwitchError::Bind { addr, .. } if code == ErrorCode::AddressInUse => {
                format!(
                    "{addr} is already in use by another program: stop it or choose another port"
                )
            }
            _ => e.to_string(),
        };
        CommandError::new(code, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_engine_code_crosses_as_itself() {
        for code in crate::Error::codes() {
            let crossed = ErrorCode::from_code(code)
                .unwrap_or_else(|| panic!("the console has no error code `{code}`"));
            assert_eq!(serde_json::to_value(crossed).unwrap(), code);
        }
    }

    #[test]
    fn a_validation_error_names_its_field() {
        let e = CommandError::from(crate::Error::validation(
            "reason",
            "required",
            "give a reason",
        ));
        assert_eq!(e.code, ErrorCode::ValidationFailed);
        assert_eq!(e.field.as_deref(), Some("reason"));
        assert_eq!(e.message, "give a reason");
    }
}
