//! The one error type of the engine. Every variant has a stable `code` that transports
//! (HTTP, CLI, desktop) expose; clients switch on the code, never on the message.

use serde::Serialize;

/// One invalid field of a request.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
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

/// Details of a `quota_exceeded` refusal.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct QuotaExceeded {
    pub metric: String,
    pub plan: String,
    pub limit: i64,
    pub used: i64,
    pub remaining: i64,
    pub requested: i64,
    pub resets_at: chrono::DateTime<chrono::Utc>,
    pub upgrade_to: Option<String>,
}

/// Details of an `insufficient_credits` refusal.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct InsufficientCredits {
    pub metric: String,
    pub plan: String,
    pub needed: i64,
    pub balance: i64,
    pub renews_at: chrono::DateTime<chrono::Utc>,
    pub upgrade_to: Option<String>,
}

/// Details of a `feature_not_in_plan` refusal.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct FeatureNotInPlan {
    pub feature: String,
    pub plan: String,
    pub upgrade_to: Option<String>,
}

/// Details of a `rate_limited` refusal.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct RateLimited {
    pub scope: String,
    pub limit: i64,
    pub window_s: i64,
    pub retry_after_s: i64,
    pub resets_at: chrono::DateTime<chrono::Utc>,
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
    #[error("quota exceeded for `{}`", .0.metric)]
    QuotaExceeded(Box<QuotaExceeded>),
    #[error("not enough credits for `{}`: {} needed, {} left", .0.metric, .0.needed, .0.balance)]
    InsufficientCredits(Box<InsufficientCredits>),
    #[error("the feature `{}` is not in the `{}` plan", .0.feature, .0.plan)]
    FeatureNotInPlan(Box<FeatureNotInPlan>),
    #[error("too many requests for `{}`: retry in {} s", .0.scope, .0.retry_after_s)]
    RateLimited(Box<RateLimited>),
    #[error("unknown metric `{0}`")]
    UnknownMetric(String),
    #[error("unknown plan `{0}`")]
    UnknownPlan(String),
    #[error("the plan file has {} problem(s)", .0.len())]
    InvalidCatalog(Vec<crate::plans::Problem>),
    #[error("{0}")]
    Conflict(String),
    #[error("the server is misconfigured: {0}")]
    Config(String),
    #[error("billing is not set up on this server (no Stripe key or webhook secret)")]
    StripeNotConfigured,
    #[error("Stripe could not be reached: {0}")]
    StripeUnavailable(String),
    #[error("Stripe refused the request: {message}")]
    StripeError {
        status: u16,
        code: Option<String>,
        kind: Option<String>,
        message: String,
    },
    #[error("no billing account: subscribe to a plan first")]
    NoBillingAccount,
    #[error("the Stripe signature is not valid: {0}")]
    InvalidSignature(String),
    #[error("the Stripe event could not be read: {0}")]
    InvalidStripeEvent(String),
    #[error("the plan `{0}` is free: there is nothing to pay")]
    PlanIsFree(String),
    #[error("the plan `{0}` has no Stripe price")]
    PlanHasNoPrice(String),
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
        "quota_exceeded",
        "insufficient_credits",
        "feature_not_in_plan",
        "rate_limited",
        "unknown_metric",
        "unknown_plan",
        "invalid_catalog",
        "conflict",
        "misconfigured",
        "stripe_not_configured",
        "stripe_unavailable",
        "stripe_error",
        "no_billing_account",
        "invalid_signature",
        "invalid_stripe_event",
        "plan_is_free",
        "plan_has_no_price",
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
            Error::QuotaExceeded(_) => "quota_exceeded",
            Error::InsufficientCredits(_) => "insufficient_credits",
            Error::FeatureNotInPlan(_) => "feature_not_in_plan",
            Error::RateLimited(_) => "rate_limited",
            Error::UnknownMetric(_) => "unknown_metric",
            Error::UnknownPlan(_) => "unknown_plan",
            Error::InvalidCatalog(_) => "invalid_catalog",
            Error::Conflict(_) => "conflict",
            Error::Config(_) => "misconfigured",
            Error::StripeNotConfigured => "stripe_not_configured",
            Error::StripeUnavailable(_) => "stripe_unavailable",
            Error::StripeError { .. } => "stripe_error",
            Error::NoBillingAccount => "no_billing_account",
            Error::InvalidSignature(_) => "invalid_signature",
            Error::InvalidStripeEvent(_) => "invalid_stripe_event",
            Error::PlanIsFree(_) => "plan_is_free",
            Error::PlanHasNoPrice(_) => "plan_has_no_price",
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
