//! Prefixed, typed identifiers (`usr_…`, `ses_…`, `key_…`, `sub_…`, `plv_…`, `use_…`, `aud_…`,
//! `mail_…`).
//!
//! Each id is a UUIDv7 encoded in base62 behind a short prefix, so that ids sort by creation
//! time, read well in logs and cannot be confused with one another.

use serde::{Deserialize, Serialize};
use std::fmt;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Encodes a 128-bit number as 22 base62 digits (fixed width keeps ids sortable).
pub fn base62_u128(mut n: u128) -> String {
    let mut out = [b'0'; 22];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out.to_vec()).expect("base62 is ascii")
}

fn is_base62(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

macro_rules! prefixed_id {
    ($(#[$meta:meta])* $name:ident, $prefix:literal) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "desktop", derive(specta::Type), specta(transparent))]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            pub fn new() -> Self {
                Self(format!("{}{}", $prefix, base62_u128(uuid::Uuid::now_v7().as_u128())))
            }

            pub fn parse(s: &str) -> Result<Self, crate::error::Error> {
                match s.strip_prefix($prefix) {
                    Some(rest) if is_base62(rest) && rest.len() <= 64 => Ok(Self(s.to_owned())),
                    _ => Err(crate::error::Error::invalid_id(stringify!($name), s)),
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

        }

        // Stored as text on both databases; a value read back is checked like any other input,
        // so a row never carries a malformed id into the engine.
        impl sqlx::Type<sqlx::Any> for $name {
            fn type_info() -> sqlx::any::AnyTypeInfo {
                <String as sqlx::Type<sqlx::Any>>::type_info()
            }

            fn compatible(ty: &sqlx::any::AnyTypeInfo) -> bool {
                <String as sqlx::Type<sqlx::Any>>::compatible(ty)
            }
        }

        impl<'r> sqlx::Decode<'r, sqlx::Any> for $name {
            fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                let text = <String as sqlx::Decode<'r, sqlx::Any>>::decode(value)?;
                Ok(Self::parse(&text)?)
            }
        }

        impl<'q> sqlx::Encode<'q, sqlx::Any> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut <sqlx::Any as sqlx::Database>::ArgumentBuffer<'q>,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <String as sqlx::Encode<'q, sqlx::Any>>::encode_by_ref(&self.0, buf)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .pattern(Some(concat!("^", $prefix, "[0-9A-Za-z]+$")))
                    .examples([concat!($prefix, "0Fz3kQ9dY2mXb8Lr4TqW1a")])
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = crate::error::Error;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        // Reading an id as text is always safe; only construction is checked.
        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        // Hashes as its text, so maps keyed by an id can be looked up with a `&str`.
        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl std::str::FromStr for $name {
            type Err = crate::error::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
    };
}

prefixed_id!(
    /// A user account.
    UserId,
    "usr_"
);
prefixed_id!(
    /// A login session (one per device), which owns a chain of refresh tokens.
    SessionId,
    "ses_"
);
prefixed_id!(
    /// An API key.
    KeyId,
    "key_"
);
prefixed_id!(
    /// A user's subscription (Tollgate's, not Stripe's `sub_…` ids, which are kept as text).
    SubscriptionId,
    "sub_"
);
prefixed_id!(
    /// A published, immutable version of a plan.
    PlanVersionId,
    "plv_"
);
prefixed_id!(
    /// A usage event (a consumption, a release, a grant...).
    UsageEventId,
    "use_"
);
prefixed_id!(
    /// An entry of the audit log.
    AuditId,
    "aud_"
);
prefixed_id!(
    /// A message in the outgoing mail queue.
    MailId,
    "mail_"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_prefix_and_parse_back() {
        let id = UserId::new();
        assert!(id.as_str().starts_with("usr_"));
        assert_eq!(UserId::parse(id.as_str()).unwrap(), id);
        assert!(UserId::parse("key_abc").is_err());
        assert!(UserId::parse("usr_").is_err());
        assert!(UserId::parse("usr_a-b").is_err());
    }

    #[test]
    fn each_kind_of_id_has_its_prefix() {
        assert!(SubscriptionId::new().as_str().starts_with("sub_"));
        assert!(PlanVersionId::new().as_str().starts_with("plv_"));
        assert!(UsageEventId::new().as_str().starts_with("use_"));
        assert!(PlanVersionId::parse(SubscriptionId::new().as_str()).is_err());
        assert!(UsageEventId::parse("use_").is_err());
    }

    #[test]
    fn ids_sort_by_creation() {
        let a = KeyId::new();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = KeyId::new();
        assert!(a < b);
    }
}
