use crate::error::Error;

string_enum! {
    /// What an API key may do. A key created without scopes gets all of them.
    pub enum Scope {
        /// Meter usage (`POST /v1/meter`, release) and check entitlements.
        Meter = "meter",
        /// Read the account, its plan, usage and keys.
        Read = "read",
        /// Change the account: profile, password, keys, billing.
        Write = "write",
    }
}

impl Scope {
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
