//! The one error type of the engine. Every variant has a stable `code` that transports
//! (HTTP, CLI, desktop) expose; clients switch on the code, never on the message.

use serde::Serialize;

/// One invalid field of a request.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub code: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, code: &str, message: &str) -> Self {
        Self {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the request is not valid")]
    Validation(Vec<FieldError>),
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("email or password is wrong")]
    InvalidCredentials,
    #[error("the account is suspended")]
    AccountSuspended,
    #[error("the account has been deleted")]
    AccountDeleted,
    #[error("no credentials were given")]
    MissingCredentials,
    #[error("the access token is not valid")]
    InvalidToken,
    #[error("the access token has expired")]
    TokenExpired,
    #[error("the refresh token is not valid")]
    InvalidRefreshToken,
    #[error("the refresh token has expired")]
    RefreshTokenExpired,
    #[error("the refresh token was already used; the session has been revoked")]
    RefreshTokenReused,
    #[error("the session has been revoked")]
    SessionRevoked,
    #[error("the API key is not valid")]
    InvalidApiKey,
    #[error("the API key has expired")]
    ApiKeyExpired,
    #[error("the API key has been revoked")]
    ApiKeyRevoked,
    #[error("the API key lacks the scope `{0}`")]
    InsufficientScope(String),
    #[error("the current password is wrong")]
    WrongPassword,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("not allowed")]
    Forbidden,
    #[error("the server is misconfigured: {0}")]
    Config(String),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl Error {
    /// Every code any variant can produce; a test keeps them unique.
    pub const CODES: &'static [&'static str] = &[
        "validation_failed",
        "email_taken",
        "invalid_credentials",
        "account_suspended",
        "account_deleted",
        "missing_credentials",
        "invalid_token",
        "token_expired",
        "invalid_refresh_token",
        "refresh_token_expired",
        "refresh_token_reused",
        "session_revoked",
        "invalid_api_key",
        "api_key_expired",
        "api_key_revoked",
        "insufficient_scope",
        "wrong_password",
        "not_found",
        "forbidden",
        "misconfigured",
        "internal",
    ];

    pub fn code(&self) -> &'static str {
        match self {
            Error::Validation(_) => "validation_failed",
            Error::EmailTaken => "email_taken",
            Error::InvalidCredentials => "invalid_credentials",
            Error::AccountSuspended => "account_suspended",
            Error::AccountDeleted => "account_deleted",
            Error::MissingCredentials => "missing_credentials",
            Error::InvalidToken => "invalid_token",
            Error::TokenExpired => "token_expired",
            Error::InvalidRefreshToken => "invalid_refresh_token",
            Error::RefreshTokenExpired => "refresh_token_expired",
            Error::RefreshTokenReused => "refresh_token_reused",
            Error::SessionRevoked => "session_revoked",
            Error::InvalidApiKey => "invalid_api_key",
            Error::ApiKeyExpired => "api_key_expired",
            Error::ApiKeyRevoked => "api_key_revoked",
            Error::InsufficientScope(_) => "insufficient_scope",
            Error::WrongPassword => "wrong_password",
            Error::NotFound(_) => "not_found",
            Error::Forbidden => "forbidden",
            Error::Config(_) => "misconfigured",
            Error::Internal(_) => "internal",
        }
    }

    pub fn validation(field: &str, code: &str, message: &str) -> Self {
        Error::Validation(vec![FieldError::new(field, code, message)])
    }

    pub fn invalid_id(kind: &str, raw: &str) -> Self {
        let shown: String = raw.chars().take(40).collect();
        Error::validation(
            "id",
            "invalid_id",
            &format!("`{shown}` is not a valid {kind}"),
        )
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::Internal(anyhow::Error::new(e))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::Error;
    use std::collections::HashSet;

    #[test]
    fn error_codes_are_unique() {
        let set: HashSet<_> = Error::CODES.iter().collect();
        assert_eq!(set.len(), Error::CODES.len());
    }
}
