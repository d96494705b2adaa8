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
    /// Too many failed logins for one account: from this client address, or from everywhere
    /// for an address the account never signed in from. Ends with the window.
    #[error("too many failed logins for this account: retry in {} s", .0.retry_after_s)]
    TooManyLoginAttempts(Box<RateLimited>),
    #[error("unknown metric `{0}`")]
    UnknownMetric(String),
    #[error("unknown plan `{0}`")]
    UnknownPlan(String),
    #[error("the plan file has {} problem(s)", .0.len())]
    InvalidCatalog(Vec<crate::plans::Problem>),
    #[error("you already have a subscription: change plans in the billing portal")]
    AlreadySubscribed,
    #[error("this database already has staff: sign in instead")]
    StaffExists,
    #[error("this database already has customers: demo data goes into an empty one")]
    DatabaseNotEmpty,
    #[error("another catalog was applied at the same time; check and apply again")]
    CatalogChangedConcurrently,
    #[error("the idempotency key is in use by a request still running")]
    IdempotencyKeyInUse,
    #[error("this consumption was already released")]
    AlreadyReleased,
    #[error("a deleted account cannot be reactivated")]
    DeletedAccountCannotBeReactivated,
    #[error("the account is {0}")]
    AccountNotActive(String),
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
    #[error("verify your email address first: {0}")]
    EmailUnverified(String),
    #[error("the email address is already verified")]
    EmailAlreadyVerified,
    #[error("the link is not valid, has expired or was already used")]
    InvalidLinkToken,
    #[error("two-factor authentication is on: complete the login with a code")]
    MfaRequired(String),
    #[error("the two-factor code is wrong, was already used, or the challenge has expired")]
    InvalidMfaCode,
    #[error("two-factor authentication is not on")]
    MfaNotEnabled,
    #[error("two-factor authentication is already on")]
    MfaAlreadyEnabled,
    /// The database did not answer (down, unreachable, locked by another process).
    #[error("the database is unavailable: {0}")]
    DatabaseUnavailable(String),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

/// Declares each variant's stable code, one line a variant. The match in `code()` is
/// exhaustive, so a new variant does not compile until it has a line here, and `VARIANTS`
/// (which the uniqueness and documentation tests read) is generated from the same lines.
macro_rules! error_codes {
    ($($variant:ident => $code:literal,)*) => {
        impl Error {
            /// Every variant's name and code, in the order declared.
            pub const VARIANTS: &'static [(&'static str, &'static str)] =
                &[$((stringify!($variant), $code)),*];

            /// The stable code clients switch on (HTTP `error.code`, CLI, desktop console).
            pub fn code(&self) -> &'static str {
                match self {
                    $(Error::$variant { .. } => $code,)*
                }
            }
        }
    };
}

error_codes! {
    Validation => "validation_failed",
    EmailTaken => "email_taken",
    InvalidCredentials => "invalid_credentials",
    AccountSuspended => "account_suspended",
    AccountDeleted => "account_deleted",
    MissingCredentials => "missing_credentials",
    InvalidToken => "invalid_token",
    TokenExpired => "token_expired",
    InvalidRefreshToken => "invalid_refresh_token",
    RefreshTokenExpired => "refresh_token_expired",
    RefreshTokenReused => "refresh_token_reused",
    SessionRevoked => "session_revoked",
    InvalidApiKey => "invalid_api_key",
    ApiKeyExpired => "api_key_expired",
    ApiKeyRevoked => "api_key_revoked",
    InsufficientScope => "insufficient_scope",
    WrongPassword => "wrong_password",
    NotFound => "not_found",
    Forbidden => "forbidden",
    QuotaExceeded => "quota_exceeded",
    InsufficientCredits => "insufficient_credits",
    FeatureNotInPlan => "feature_not_in_plan",
    RateLimited => "rate_limited",
    TooManyLoginAttempts => "too_many_login_attempts",
    UnknownMetric => "unknown_metric",
    UnknownPlan => "unknown_plan",
    InvalidCatalog => "invalid_catalog",
    AlreadySubscribed => "already_subscribed",
    StaffExists => "staff_exists",
    DatabaseNotEmpty => "database_not_empty",
    CatalogChangedConcurrently => "catalog_changed_concurrently",
    IdempotencyKeyInUse => "idempotency_key_in_use",
    AlreadyReleased => "already_released",
    DeletedAccountCannotBeReactivated => "deleted_account_cannot_be_reactivated",
    AccountNotActive => "account_not_active",
    Config => "misconfigured",
    StripeNotConfigured => "stripe_not_configured",
    StripeUnavailable => "stripe_unavailable",
    StripeError => "stripe_error",
    NoBillingAccount => "no_billing_account",
    InvalidSignature => "invalid_signature",
    InvalidStripeEvent => "invalid_stripe_event",
    PlanIsFree => "plan_is_free",
    PlanHasNoPrice => "plan_has_no_price",
    EmailUnverified => "email_unverified",
    EmailAlreadyVerified => "email_already_verified",
    InvalidLinkToken => "invalid_link_token",
    MfaRequired => "mfa_required",
    InvalidMfaCode => "invalid_mfa_code",
    MfaNotEnabled => "mfa_not_enabled",
    MfaAlreadyEnabled => "mfa_already_enabled",
    DatabaseUnavailable => "database_unavailable",
    Internal => "internal",
}

impl Error {
    /// Every code a variant can produce.
    pub fn codes() -> impl Iterator<Item = &'static str> {
        Self::VARIANTS.iter().map(|(_, code)| *code)
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
        if database_unavailable(&e) {
            return Error::DatabaseUnavailable(e.to_string());
        }
        Error::Internal(anyhow::Error::new(e))
    }
}

/// Whether a database error says the database cannot be reached or used right now (a 503 the
/// client may retry), rather than that the request or the code is wrong.
fn database_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // SQLITE_BUSY and SQLITE_LOCKED, and their extended codes: another process
                // held the lock past the busy timeout.
                code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6))
            } else {
                // PostgreSQL: class 08 (connection exception), the server shutting down or
                // starting (57P01 to 57P03), too many connections (53300).
                code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300")
            }
        }
        _ => false,
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::Error;
    use std::collections::HashSet;

    #[test]
    fn every_variant_has_its_own_code() {
        let names: HashSet<_> = Error::VARIANTS.iter().map(|(n, _)| n).collect();
        let codes: HashSet<_> = Error::codes().collect();
        assert_eq!(names.len(), Error::VARIANTS.len(), "a variant listed twice");
        assert_eq!(
            codes.len(),
            Error::VARIANTS.len(),
            "two variants share a code"
        );
        assert!(Error::codes()
            .all(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
    }

    #[test]
    fn code_answers_the_declared_code() {
        assert_eq!(Error::AlreadyReleased.code(), "already_released");
        assert_eq!(Error::NotFound("user").code(), "not_found");
        let stripe = Error::StripeError {
            status: 402,
            code: Some("card_declined".into()),
            kind: None,
            message: "declined".into(),
        };
        assert_eq!(
            stripe.code(),
            "stripe_error",
            "Stripe's code is a detail, not ours"
        );
    }
}
