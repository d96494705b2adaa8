use crate::error::Error;
use serde::{Deserialize, Serialize};

/// What an API key may do. A key created without scopes gets all of them.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    PartialOrd,
    Ord,
    utoipa::ToSchema,
)]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub enum Scope {
    /// Meter usage (`POST /v1/meter`, release) and check entitlements.
    #[serde(rename = "meter")]
    Meter,
    /// Read the account, its plan, usage and keys.
    #[serde(rename = "read")]
    Read,
    /// Change the account: profile, password, keys, billing.
    #[serde(rename = "write")]
    Write,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Meter, Scope::Read, Scope::Write];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Meter => "meter",
            Scope::Read => "read",
            Scope::Write => "write",
        }
    }

    pub fn parse(s: &str) -> Result<Scope, Error> {
        Self::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| {
                Error::validation(
                    "scopes",
                    "unknown_scope",
                    &format!("unknown scope `{s}`: use meter, read or write"),
                )
            })
    }

    /// Scopes as stored: space-separated.
    pub fn join(scopes: &[Scope]) -> String {
        scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn split(stored: &str) -> Vec<Scope> {
        stored
            .split_whitespace()
            .filter_map(|s| Scope::parse(s).ok())
            .collect()
    }
}
