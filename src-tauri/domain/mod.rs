//! Domain types: built only through checked constructors, so services never re-validate.

pub mod email;
pub mod ids;
pub mod role;
pub mod scope;
pub mod secret;
pub mod user;

pub use email::Email;
pub use ids::{
    AuditId, KeyId, MailId, PlanVersionId, SessionId, SubscriptionId, UsageEventId, UserId,
};
pub use role::{Role, UserStatus};
pub use scope::Scope;
pub use secret::{Password, PlaintextApiKey, RefreshToken, SecretString};
pub use user::User;
