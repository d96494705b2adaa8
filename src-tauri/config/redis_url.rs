//! `TOLLGATE_REDIS_URL`: where rate-limit windows are shared between instances.

use crate::domain::SecretString;
use serde::{Deserialize, Deserializer};
use std::fmt;

/// A Redis URL checked at load time (`redis://[user:password@]host:port[/db]` or
/// `redis+unix:///path/to/socket`). It may carry a password, so `Debug` shows only where it
/// points.
#[derive(Clone)]
pub struct RedisUrl {
    url: SecretString,
    shown: String,
}

impl RedisUrl {
    pub fn parse(raw: &str) -> Result<RedisUrl, String> {
        let raw = raw.trim();
        // redis' own parser, so that whatever passes here is what the client connects to.
        let info = ::redis::IntoConnectionInfo::into_connection_info(raw).map_err(|e| {
            format!(
                "TOLLGATE_REDIS_URL is not a Redis URL (expected redis://[user:password@]host:port[/db]): {}",
                e.detail().unwrap_or("unreadable")
            )
        })?;
        let shown = match url::Url::parse(raw) {
            Ok(u) if u.host_str().is_some() => format!(
                "{}://{}:{}{}",
                u.scheme(),
                u.host_str().unwrap_or_default(),
                u.port().unwrap_or(6379),
                u.path()
            ),
            _ => info.addr().to_string(),
        };
        Ok(RedisUrl {
            url: SecretString::new(raw),
            shown,
        })
    }

    pub fn expose(&self) -> &str {
        self.url.expose()
    }

    /// Where it points, without user or password, for logs.
    pub fn display(&self) -> &str {
        &self.shown
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({})", self.shown)
    }
}

/// An empty value counts as unset, so that `TOLLGATE_REDIS_URL=` turns sharing off.
pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<RedisUrl>, D::Error> {
    match Option::<String>::deserialize(d)? {
        Some(s) if !s.trim().is_empty() => RedisUrl::parse(&s)
            .map(Some)
            .map_err(serde::de::Error::custom),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_hide_their_password() {
        let u = RedisUrl::parse("redis://:hunter2@10.0.0.5:6380/2").unwrap();
        assert_eq!(u.display(), "redis://10.0.0.5:6380/2");
        assert!(!format!("{u:?}").contains("hunter2"));
        assert_eq!(u.expose(), "redis://:hunter2@10.0.0.5:6380/2");
        assert_eq!(
            RedisUrl::parse("redis://127.0.0.1").unwrap().display(),
            "redis://127.0.0.1:6379"
        );
    }

    #[test]
    fn what_is_not_a_redis_url_is_refused() {
        for bad in [
            "not a url",
            "http://127.0.0.1:6379",
            "redis://:pw@127.0.0.1/x",
        ] {
            let err = RedisUrl::parse(bad).unwrap_err();
            assert!(err.contains("TOLLGATE_REDIS_URL"), "{bad}: {err}");
            assert!(!err.contains("pw@"), "{err}");
        }
    }
}
