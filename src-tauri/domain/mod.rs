//! Domain types: built only through checked constructors, so services never re-validate.

/// An enum sent and stored as fixed strings: the derives every such enum needs, `ALL` (every
/// variant, in declaration order) and `as_str`. Each variant names its text, which serde,
/// the OpenAPI schema and the bindings all use. (`$text` is a `tt`, not a `literal`: utoipa does
/// not read a rename whose value comes wrapped as a `literal` fragment, and falls back to the
/// variant name.)
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident = $text:tt,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Clone,
            Copy,
            Debug,
            PartialEq,
            Eq,
            Hash,
            PartialOrd,
            Ord,
            serde::Serialize,
            serde::Deserialize,
            utoipa::ToSchema,
        )]
        #[cfg_attr(feature = "desktop", derive(specta::Type))]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            pub const ALL: [$name; [$($text),+].len()] = [$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }
    };
}
pub(crate) use string_enum;

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_string_enum_speaks_its_texts_in_json_and_in_openapi() {
        let scope = serde_json::to_value(<Scope as utoipa::PartialSchema>::schema()).unwrap();
        assert_eq!(scope["enum"], json!(["meter", "read", "write"]));
        let role = serde_json::to_value(<Role as utoipa::PartialSchema>::schema()).unwrap();
        assert_eq!(role["enum"], json!(["user", "support", "finance", "admin"]));
        assert_eq!(
            serde_json::to_value(Role::Finance).unwrap(),
            json!("finance")
        );
        assert_eq!(Scope::ALL.map(Scope::as_str), ["meter", "read", "write"]);
        assert!(serde_json::from_value::<UserStatus>(json!("Active")).is_err());
    }
}
