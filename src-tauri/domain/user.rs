use super::{Email, Role, UserId, UserStatus};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// An account as the rest of the engine sees it (no password hash).
#[derive(Clone, Debug, Serialize, PartialEq, utoipa::ToSchema)]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub struct User {
    pub id: UserId,
    pub email: Email,
    pub full_name: Option<String>,
    pub role: Role,
    pub status: UserStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
