//! `/v1/keys`.

use super::auth::Caller;
use super::docs::ErrorBody;
use super::error::ApiError;
use super::json::{ApiJson, PathId};
use super::AppState;
use crate::domain::{KeyId, Scope};
use crate::service::api_keys::{ApiKeyInfo, NewKey};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_keys, create_key))
        .routes(routes!(revoke_key))
}

#[derive(Deserialize, ToSchema)]
#[schema(examples(json!({"name": "production", "scopes": ["meter"], "expires_at": null})))]
pub struct CreateKey {
    name: String,
    /// `meter`, `read`, `write`; all when left out.
    scopes: Option<Vec<String>>,
    expires_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedKey {
    key: ApiKeyInfo,
    /// The key itself, shown this once.
    api_key: String,
}

/// The caller's API keys (prefixes only).
#[utoipa::path(get, path = "/v1/keys", operation_id = "list_keys", tag = "keys", security(("bearer" = [])),
    responses((status = 200, body = Vec<ApiKeyInfo>, example = json!([{"id": "key_0355yUaHhfBmu1tcKPQpfL", "name": "production", "prefix": "sk_live_GhqQ", "scopes": ["meter"], "created_at": "2026-11-29T11:46:14.894Z", "last_used_at": null, "expires_at": null, "revoked_at": null}])), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn list_keys(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<ApiKeyInfo>>, ApiError> {
    let p = caller.require(Scope::Read)?;
    Ok(Json(state.engine.list_api_keys(&p.user.id).await?))
}

/// Create an API key; its plaintext is in this answer only.
#[utoipa::path(post, path = "/v1/keys", operation_id = "create_key", tag = "keys", security(("bearer" = [])), request_body = CreateKey,
    responses((status = 201, body = CreatedKey, example = json!({"key": {"id": "key_0355yUaHhfBmu1tcKPQpfL", "name": "production", "prefix": "sk_live_GhqQ", "scopes": ["meter"], "created_at": "2026-11-29T11:46:14.894Z", "last_used_at": null, "expires_at": null, "revoked_at": null}, "api_key": "sk_live_GhqQuTI94coJlCZnJXlDhITMWPZ4dfmSSlZup3LwoqX"})), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn create_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateKey>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let p = caller.require_write()?;
    let created = state
        .engine
        .create_api_key(
            &p.user.id,
            NewKey {
                name: &body.name,
                scopes: body.scopes.as_deref(),
                expires_at: body.expires_at,
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            api_key: created.plaintext.expose().to_owned(),
            key: created.info,
        }),
    ))
}

/// Revoke an API key at once.
#[utoipa::path(delete, path = "/v1/keys/{id}", operation_id = "revoke_key", tag = "keys", security(("bearer" = [])),
    params(("id" = String, Path, description = "key id (key_…)")),
    responses((status = 204, description = "revoked"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn revoke_key(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId<KeyId>,
) -> Result<StatusCode, ApiError> {
    let p = caller.require_write()?;
    state.engine.revoke_api_key(&p.user.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
