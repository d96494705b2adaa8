//! Secret-bearing types. None of them prints its content through `Debug` or `Display`.

use crate::error::{Error, FieldError};
use serde::Deserialize;
use std::fmt;

/// A configuration secret (server secret, Stripe keys). Debug prints `***`.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A password as typed by a user: 8 to 256 characters. Never printed, never serialized.
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_CHARS: usize = 256;

    pub fn parse(raw: &str, field: &str) -> Result<Self, Error> {
        let n = raw.chars().count();
        if n < Self::MIN_CHARS {
            return Err(Error::Validation(vec![FieldError::new(
                field,
                "too_short",
                &format!("password must be at least {} characters", Self::MIN_CHARS),
            )]));
        }
        if n > Self::MAX_CHARS {
            return Err(Error::Validation(vec![FieldError::new(
                field,
                "too_long",
                &format!("password must be at most {} characters", Self::MAX_CHARS),
            )]));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// An API key in plaintext, as returned once at creation. It has no `Debug` that shows the
/// key and no `Serialize`: the transport copies it out explicitly with [`PlaintextApiKey::expose`].
pub struct PlaintextApiKey(String);

impl PlaintextApiKey {
    pub const PREFIX: &'static str = "sk_live_";
    /// Characters of the key kept for display (`sk_live_` plus four).
    pub const DISPLAY_LEN: usize = 12;

    pub(crate) fn new(s: String) -> Self {
        Self(s)
    }

    /// Accepts anything shaped like one of our keys; whether it exists is for the store to say.
    pub fn parse(raw: &str) -> Option<Self> {
        let rest = raw.strip_prefix(Self::PREFIX)?;
        (rest.len() >= 32 && rest.len() <= 128 && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
            .then(|| Self(raw.to_owned()))
    }

    pub fn display_prefix(&self) -> &str {
        &self.0[..Self::DISPLAY_LEN]
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PlaintextApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PlaintextApiKey({}***)", self.display_prefix())
    }
}

/// An opaque refresh token as handed to a client.
pub struct RefreshToken(String);

impl RefreshToken {
    pub const PREFIX: &'static str = "rt_";

    pub(crate) fn new(s: String) -> Self {
        Self(s)
    }
    pub fn from_client(s: &str) -> Self {
        Self(s.to_owned())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshToken(***)")
    }
}
