//! Authentication and per-plan rate limiting for the routes that need a caller.
//!
//! The middleware authenticates `Authorization: Bearer <access token | sk_ key>`, counts the
//! request against the plan's `api` rate limit, and sets `RateLimit-*` headers on the answer.
//! Handlers take the caller with the [`Caller`] extractor.

use super::error::ApiError;
use super::AppState;
use crate::domain::Scope;
use crate::error::Error;
use crate::service::auth::Principal;
use crate::service::rate_limits::RateDecision;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Who the request is from; facts kept for explaining a refusal later.
#[derive(Debug, Clone, Default)]
pub struct DecisionContext {
    pub user_id: Option<crate::domain::UserId>,
    pub key_prefix: Option<String>,
    pub plan_version: Option<String>,
    pub subscription_status: Option<String>,
    pub limiter: Option<RateDecision>,
}

pub fn bearer(headers: &HeaderMap) -> Result<&str, Error> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or(Error::MissingCredentials)?;
    let value = value.to_str().map_err(|_| Error::InvalidToken)?;
    let (scheme, token) = value.split_once(' ').ok_or(Error::InvalidToken)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Error::InvalidToken);
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(Error::MissingCredentials);
    }
    Ok(token)
}

/// Route layer for authenticated routes.
pub async fn require_caller(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let principal = match bearer(req.headers()) {
        Ok(token) => state.engine.authenticate(token).await,
        Err(e) => Err(e),
    };
    let principal = match principal {
        Ok(p) => p,
        Err(e) => {
            let ctx = DecisionContext {
                key_prefix: key_prefix_of(req.headers()),
                ..Default::default()
            };
            return with_context(ApiError::from(e).into_response(), ctx);
        }
    };
    let user = principal.user.id.clone();
    let key_prefix = principal.key_prefix().map(str::to_owned);
    // Staff working in the back office are not customers: their plan's API limit does not
    // apply to them (an impersonation token is limited like the user it acts as).
    let impersonating = matches!(
        principal.credential,
        crate::service::auth::Credential::Session {
            impersonated_by: Some(_),
            ..
        }
    );
    let decision = if principal.user.role.is_staff() && !impersonating {
        Ok(None)
    } else {
        state
            .engine
            .check_rate_limit(&principal.user.id, "api")
            .await
    };
    let mut res = match decision {
        Ok(d) => {
            req.extensions_mut().insert(principal);
            let mut res = next.run(req).await;
            if let Some(d) = &d {
                set_rate_headers(res.headers_mut(), d, state.engine.now());
            }
            if !is_refusal(res.status()) {
                return res;
            }
            res.extensions_mut().insert(d);
            res
        }
        Err(e) => ApiError::from(e).into_response(),
    };
    // A refusal: gather the facts support will need to explain it.
    let mut ctx = DecisionContext {
        user_id: Some(user.clone()),
        key_prefix,
        limiter: res
            .extensions_mut()
            .remove::<Option<RateDecision>>()
            .flatten(),
        ..Default::default()
    };
    if let Ok(r) = state.engine.resolve_subscription(&user).await {
        ctx.plan_version = Some(r.effective.label());
        ctx.subscription_status = Some(r.status().as_str().to_owned());
    }
    with_context(res, ctx)
}

fn is_refusal(status: axum::http::StatusCode) -> bool {
    matches!(status.as_u16(), 401 | 402 | 403 | 429)
}

fn key_prefix_of(headers: &HeaderMap) -> Option<String> {
    let token = bearer(headers).ok()?;
    token
        .starts_with("sk_")
        .then(|| token.chars().take(12).collect())
}

fn with_context(mut res: Response, ctx: DecisionContext) -> Response {
    res.extensions_mut().insert(ctx);
    res
}

/// `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (seconds until the window resets).
pub fn set_rate_headers(
    headers: &mut HeaderMap,
    d: &RateDecision,
    now: chrono::DateTime<chrono::Utc>,
) {
    let pairs = [
        ("ratelimit-limit", d.limit.to_string()),
        ("ratelimit-remaining", d.remaining.to_string()),
        ("ratelimit-reset", d.reset_in(now).to_string()),
    ];
    for (name, value) in pairs {
        if let Ok(v) = value.parse() {
            headers.insert(name, v);
        }
    }
}

/// The authenticated caller of a route behind [`require_caller`].
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl Caller {
    /// Refuses API keys without `scope`; sessions may do what their user may.
    pub fn require(&self, scope: Scope) -> Result<&Principal, ApiError> {
        self.0.require_scope(scope)?;
        Ok(&self.0)
    }

    /// Refuses writes through an impersonation token.
    pub fn require_write(&self) -> Result<&Principal, ApiError> {
        if let crate::service::auth::Credential::Session {
            impersonated_by: Some(_),
            impersonation_can_write: false,
            ..
        } = &self.0.credential
        {
            return Err(ApiError::from(Error::Forbidden)
                .with_detail("reason", "impersonation tokens are read-only"));
        }
        self.require(Scope::Write)
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(Caller)
            .ok_or_else(|| ApiError::from(Error::MissingCredentials))
    }
}
