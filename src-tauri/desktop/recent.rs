//! Recent connections, kept as JSON in the app's config folder. A URL is stored without its
//! password: reconnecting to a PostgreSQL server that needs one asks for it again.

use super::wire::{Backend, RecentConnection};
use std::path::PathBuf;

/// How many connections the list keeps.
const KEEP: usize = 10;

pub struct RecentConnections {
    /// `None`: nothing is remembered (no config folder).
    file: Option<PathBuf>,
}

/// A database URL with any password removed.
pub fn without_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(None);
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

impl RecentConnections {
    pub fn new(file: Option<PathBuf>) -> Self {
        Self { file }
    }

    /// Most recent first; an unreadable file is an empty list.
    pub fn list(&self) -> Vec<RecentConnection> {
        let Some(file) = &self.file else {
            return Vec::new();
        };
        std::fs::read(file)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Puts `url` (without its password) first.
    pub fn remember(&self, url: &str, backend: Backend, now_ms: i64) -> std::io::Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let url = without_password(url);
        let mut list = self.list();
        list.retain(|r| r.url != url);
        list.insert(
            0,
            RecentConnection {
                url,
                backend,
                last_used_ms: now_ms,
            },
        );
        list.truncate(KEEP);
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = file.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&list)?)?;
        std::fs::rename(tmp, file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_is_never_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let recent = RecentConnections::new(Some(dir.path().join("recent.json")));
        recent
            .remember(
                "postgres://app:s3cret@db:5432/tollgate",
                Backend::Postgres,
                1,
            )
            .unwrap();
        recent
            .remember("sqlite://a.db", Backend::Sqlite, 2)
            .unwrap();
        recent
            .remember(
                "postgres://app:other@db:5432/tollgate",
                Backend::Postgres,
                3,
            )
            .unwrap();

        let stored = std::fs::read_to_string(dir.path().join("recent.json")).unwrap();
        assert!(!stored.contains("s3cret") && !stored.contains("other"));
        let list = recent.list();
        assert_eq!(list.len(), 2, "the same database is listed once");
        assert_eq!(list[0].url, "postgres://app@db:5432/tollgate");
        assert_eq!(list[0].last_used_ms, 3);
        assert_eq!(list[1].url, "sqlite://a.db");
    }
}
