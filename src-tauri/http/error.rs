//! Every error answer has one shape: `{"error": {"code", "message", "request_id", ...details}}`.
//! Handlers return [`ApiError`]; the status code of each engine error is decided here, once.

use crate::error::Error;
use crate::service::decisions::RefusalDetail;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

/// An error on its way out. It travels as a response extension until [`render`] adds the
/// request id and writes the body.
#[derive(Debug, Clone)]
pub struct ErrorPayload {
    pub code: String,
    pub message: String,
    pub details: Map<String, Value>,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub payload: ErrorPayload,
    pub headers: Vec<(axum::http::HeaderName, String)>,
    /// The typed facts of the engine error behind a refusal, for the decision record.
    pub refusal: Option<Box<RefusalDetail>>,
}

impl ApiError {
    /// An answer with `code`, which must be one of [`Error::codes`] or [`TRANSPORT_CODES`]
    /// (tests check every answer's code against the document).
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            payload: ErrorPayload {
                code: code.to_owned(),
                message: message.into(),
                details: Map::new(),
            },
            headers: Vec::new(),
            refusal: None,
        }
    }

    /// Adds every field of a serializable struct as a detail.
    pub fn with_details(mut self, details: &impl serde::Serialize) -> Self {
        if let Ok(Value::Object(map)) = serde_json::to_value(details) {
            self.payload.details.extend(map);
        }
        self
    }

    pub fn with_detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.payload.details.insert(key.to_owned(), value.into());
        self
    }
}

/// Codes the HTTP layer answers with on its own, before or around the engine (unknown route,
/// unreadable body, timeout...). With [`Error::codes`] they make the closed set of codes the
/// OpenAPI document lists.
pub const TRANSPORT_CODES: &[&str] = &[
    "route_not_found",
    "method_not_allowed",
    "body_too_large",
    "timeout",
    "unsupported_media_type",
    "bad_request",
    "invalid_json",
    "request_failed",
];

/// Every `error.code` an answer can carry, in the OpenAPI document's error schema.
pub fn error_code_schema() -> utoipa::openapi::schema::Object {
    let mut codes: Vec<&str> = Error::codes().collect();
    codes.extend(
        TRANSPORT_CODES
            .iter()
            .filter(|c| !codes.contains(c))
            .collect::<Vec<_>>(),
    );
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .description(Some("Stable, documented code to switch on."))
        .enum_values(Some(codes))
        .build()
}

pub fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
        Error::EmailTaken => StatusCode::CONFLICT,
        Error::InvalidCredentials
        | Error::MissingCredentials
        | Error::InvalidToken
        | Error::TokenExpired
        | Error::InvalidRefreshToken
        | Error::RefreshTokenExpired
        | Error::RefreshTokenReused
        | Error::SessionRevoked
        | Error::InvalidApiKey
        | Error::ApiKeyExpired
        | Error::ApiKeyRevoked
        | Error::MfaRequired(_)
        | Error::InvalidMfaCode => StatusCode::UNAUTHORIZED,
        Error::EmailUnverified(_) => StatusCode::FORBIDDEN,
        Error::InvalidLinkToken => StatusCode::UNPROCESSABLE_ENTITY,
        Error::EmailAlreadyVerified | Error::MfaNotEnabled | Error::MfaAlreadyEnabled => {
            StatusCode::CONFLICT
        }
        Error::AccountSuspended
        | Error::AccountDeleted
        | Error::InsufficientScope(_)
        | Error::Forbidden => StatusCode::FORBIDDEN,
        Error::WrongPassword => StatusCode::UNPROCESSABLE_ENTITY,
        Error::QuotaExceeded(_) | Error::RateLimited(_) | Error::TooManyLoginAttempts(_) => {
            StatusCode::TOO_MANY_REQUESTS
        }
        Error::InsufficientCredits(_) => StatusCode::PAYMENT_REQUIRED,
        Error::FeatureNotInPlan(_) => StatusCode::FORBIDDEN,
        Error::UnknownMetric(_) | Error::UnknownPlan(_) | Error::InvalidCatalog(_) => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Error::AlreadySubscribed
        | Error::StaffExists
        | Error::DatabaseNotEmpty
        | Error::CatalogChangedConcurrently
        | Error::IdempotencyKeyInUse
        | Error::AlreadyReleased
        | Error::DeletedAccountCannotBeReactivated
        | Error::AccountNotActive(_) => StatusCode::CONFLICT,
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::Config(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        Error::StripeNotConfigured | Error::DatabaseUnavailable(_) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        Error::StripeUnavailable(_) | Error::StripeError { .. } => StatusCode::BAD_GATEWAY,
        Error::NoBillingAccount => StatusCode::NOT_FOUND,
        Error::InvalidSignature(_) | Error::InvalidStripeEvent(_) => StatusCode::BAD_REQUEST,
        Error::PlanIsFree(_) | Error::PlanHasNoPrice(_) => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let status = status_of(&e);
        let message = if let Error::StripeError { message, .. } = &e {
            // Stripe's own words (e.g. "Your card was declined."), meant to be shown.
            format!("Stripe refused the request: {message}")
        } else if let Error::StripeUnavailable(why) = &e {
            tracing::warn!(error = %why, "Stripe call failed");
            "Stripe could not be reached; nothing was changed, try again later".to_owned()
        } else if let Error::DatabaseUnavailable(why) = &e {
            tracing::error!(error = %why, "database unavailable");
            "the database is unavailable; nothing was changed, try again shortly".to_owned()
        } else if status.is_server_error() {
            tracing::error!(error = ?e, "request failed");
            "something went wrong on our side; quote the request id when you report it".to_owned()
        } else {
            e.to_string()
        };
        let mut err = ApiError::new(status, e.code(), message);
        err.refusal = Some(Box::new(RefusalDetail::of(&e)));
        match &e {
            Error::Validation(fields) => {
                err = err.with_detail("fields", serde_json::to_value(fields).unwrap_or_default());
            }
            Error::InsufficientScope(scope) => err = err.with_detail("scope", scope.as_str()),
            Error::NotFound(what) => err = err.with_detail("resource", *what),
            Error::QuotaExceeded(d) => {
                // Retrying is useful once the window resets.
                let wait = (d.resets_at - chrono::Utc::now()).num_seconds().max(1);
                err.headers
                    .push((axum::http::header::RETRY_AFTER, wait.to_string()));
                err = err.with_details(d.as_ref());
            }
            Error::InsufficientCredits(d) => err = err.with_details(d.as_ref()),
            Error::FeatureNotInPlan(d) => err = err.with_details(d.as_ref()),
            Error::RateLimited(d) | Error::TooManyLoginAttempts(d) => {
                err.headers
                    .push((axum::http::header::RETRY_AFTER, d.retry_after_s.to_string()));
                err = err.with_details(d.as_ref());
            }
            Error::UnknownMetric(m) => err = err.with_detail("metric", m.as_str()),
            Error::EmailUnverified(hint) => err = err.with_detail("hint", hint.as_str()),
            // The challenge a code completes, beside the code (`POST /v1/auth/login/mfa`).
            Error::MfaRequired(challenge) => err = err.with_detail("challenge", challenge.as_str()),
            Error::AccountNotActive(status) => err = err.with_detail("status", status.as_str()),
            Error::UnknownPlan(p) | Error::PlanIsFree(p) | Error::PlanHasNoPrice(p) => {
                err = err.with_detail("plan", p.as_str())
            }
            Error::StripeError {
                status, code, kind, ..
            } => {
                // Our code stays `stripe_error`; Stripe's own (`card_declined`,
                // `resource_missing`) travels as a detail.
                err = err
                    .with_detail("stripe_status", *status)
                    .with_detail("stripe_code", code.clone())
                    .with_detail("stripe_type", kind.clone());
            }
            Error::InvalidCatalog(problems) => {
                err = err.with_detail(
                    "problems",
                    serde_json::to_value(problems).unwrap_or_default(),
                );
            }
            _ => {}
        }
        if status == StatusCode::UNAUTHORIZED {
            err.headers.push((
                axum::http::header::WWW_AUTHENTICATE,
                format!("Bearer error=\"{}\"", e.code()),
            ));
        }
        err
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = self.status.into_response();
        for (name, value) in self.headers {
            if let Ok(v) = value.parse() {
                res.headers_mut().insert(name, v);
            }
        }
        res.extensions_mut().insert(self.payload);
        if let Some(refusal) = self.refusal {
            res.extensions_mut().insert(*refusal);
        }
        res
    }
}

/// Writes the body of an error answer, with the request's id, and turns the bare answers
/// axum and tower give on their own (unknown route, wrong method, timeout, body too large)
/// into the same shape.
pub fn render(mut res: Response, request_id: &str) -> Response {
    let status = res.status();
    let payload = match res.extensions_mut().remove::<ErrorPayload>() {
        Some(p) => p,
        None if status.is_client_error() || status.is_server_error() => {
            let is_json = res
                .headers()
                .get(axum::http::header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
            if is_json {
                return res;
            }
            let (code, message) = match status {
                StatusCode::NOT_FOUND => ("route_not_found", "no such route"),
                StatusCode::METHOD_NOT_ALLOWED => (
                    "method_not_allowed",
                    "this route does not accept that method",
                ),
                StatusCode::PAYLOAD_TOO_LARGE => {
                    ("body_too_large", "the request body is larger than allowed")
                }
                StatusCode::REQUEST_TIMEOUT => ("timeout", "the request took too long"),
                StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                    "unsupported_media_type",
                    "send Content-Type: application/json",
                ),
                StatusCode::BAD_REQUEST => ("bad_request", "the request could not be read"),
                s if s.is_server_error() => ("internal", "something went wrong on our side"),
                _ => ("request_failed", "the request failed"),
            };
            ErrorPayload {
                code: code.into(),
                message: message.into(),
                details: Map::new(),
            }
        }
        None => return res,
    };
    let mut inner = Map::new();
    inner.insert("code".into(), Value::String(payload.code));
    inner.insert("message".into(), Value::String(payload.message));
    inner.insert("request_id".into(), Value::String(request_id.to_owned()));
    for (k, v) in payload.details {
        inner.entry(k).or_insert(v);
    }
    let body = json!({ "error": Value::Object(inner) });
    let (mut parts, _) = res.into_parts();
    parts.headers.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn documented_codes() -> Vec<String> {
        let doc = serde_json::to_value(crate::http::openapi()).unwrap();
        let code = &doc["components"]["schemas"]["ErrorDetail"]["properties"]["code"];
        code["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("the error schema lists no codes: {code}"))
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn every_error_code_is_documented_in_the_openapi_error_schema() {
        let documented = documented_codes();
        for (variant, code) in Error::VARIANTS {
            assert!(
                documented.iter().any(|d| d == code),
                "{variant}'s code `{code}` is not in the OpenAPI error schema"
            );
        }
        for code in TRANSPORT_CODES {
            assert!(documented.iter().any(|d| d == code), "{code}");
        }
        let mut unique = documented.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), documented.len(), "a code documented twice");
    }

    #[test]
    fn a_stripe_refusal_keeps_our_code_and_carries_stripes() {
        let e = ApiError::from(Error::StripeError {
            status: 402,
            code: Some("card_declined".into()),
            kind: Some("card_error".into()),
            message: "Your card was declined.".into(),
        });
        assert_eq!(e.status, StatusCode::BAD_GATEWAY);
        assert_eq!(e.payload.code, "stripe_error");
        assert_eq!(e.payload.details["stripe_code"], "card_declined");
    }
}
