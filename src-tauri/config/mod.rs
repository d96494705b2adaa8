//! Layered configuration: built-in defaults, then `tollgate.toml` (or `--config FILE`), then
//! `TOLLGATE_`-prefixed environment variables (nested keys with `__`, e.g.
//! `TOLLGATE_ARGON2__MEMORY_KIB`).

mod cidr;
mod redis_url;

pub use cidr::{parse_trusted, Cidr};
pub use redis_url::RedisUrl;

use crate::domain::SecretString;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::Path;

#[derive(Clone, Debug, Deserialize)]
pub struct Settings {
    /// `sqlite://FILE` (created on first run) or `postgres://…`.
    pub database_url: String,
    /// Server secret for key hashing and token signing. Generated and stored in the database on
    /// first run with SQLite; required with PostgreSQL.
    pub secret: Option<SecretString>,
    /// Listen address of the HTTP API.
    pub addr: SocketAddr,
    /// A plan catalog applied at start when it differs from the current version.
    pub plans: Option<String>,
    /// `TOLLGATE_TRUSTED_PROXIES`: comma-separated CIDRs of proxies whose `X-Forwarded-For`
    /// is believed. Empty: the socket peer is the client. A malformed block fails loading.
    #[serde(default, deserialize_with = "cidr::deserialize_trusted")]
    pub trusted_proxies: Vec<Cidr>,
    pub argon2: Argon2Settings,
    pub tokens: TokenSettings,
    pub http: HttpSettings,
    /// How consumptions are decided: `auto` (memory on SQLite, database on PostgreSQL),
    /// `memory` (one process only) or `database`.
    pub metering: MeteringStrategy,
    /// Background work shared by the instances on one database (`[background]`).
    #[serde(default)]
    pub background: BackgroundSettings,
    /// Stripe secret API key (`TOLLGATE_STRIPE_SECRET_KEY`); billing calls fail without it.
    pub stripe_secret_key: Option<SecretString>,
    /// Webhook signing secret(s) (`TOLLGATE_STRIPE_WEBHOOK_SECRET`); several, separated by
    /// commas, while rotating.
    pub stripe_webhook_secret: Option<SecretString>,
    /// Base URL of Stripe's API (`TOLLGATE_STRIPE_API_BASE`); tests point it at a mock server.
    pub stripe_api_base: String,
    pub stripe: StripeSettings,
    /// `TOLLGATE_SMTP_URL`: `smtp://host:port` (plain; add `?tls=required` for STARTTLS) or
    /// `smtps://host:port` (TLS), with optional `user:password@`. Without it mail stays in the
    /// outbox (`tollgate mail list`).
    pub smtp_url: Option<SecretString>,
    /// `TOLLGATE_MAIL_FROM`: the sender of every mail, e.g. `Tollgate <no-reply@example.com>`.
    pub mail_from: String,
    /// `TOLLGATE_PUBLIC_URL`: the base of links in mail (verification, password reset).
    pub public_url: String,
    /// `TOLLGATE_PRODUCT_NAME`: the name mail and authenticator apps show.
    pub product_name: String,
    /// `TOLLGATE_REDIS_URL`: rate-limit windows live in this Redis, shared by every instance
    /// that names it. Without it each instance counts alone. A URL that does not parse fails
    /// loading.
    #[serde(default, deserialize_with = "redis_url::deserialize")]
    pub redis_url: Option<RedisUrl>,
}

/// Which strategy decides consumptions (`TOLLGATE_METERING`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MeteringStrategy {
    /// Memory for SQLite, database for PostgreSQL.
    Auto,
    Memory,
    Database,
}

/// Work that runs in one instance at a time (`[background]`,
/// `TOLLGATE_BACKGROUND__LEASE_MS`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct BackgroundSettings {
    /// How long the instance running the background work holds it without renewing (it
    /// renews every third of this); another instance takes over this long after it dies.
    pub lease_ms: u64,
}

impl Default for BackgroundSettings {
    fn default() -> Self {
        Self { lease_ms: 15_000 }
    }
}

/// Stripe billing options other than the keys (`[stripe]`, `TOLLGATE_STRIPE__GRACE_DAYS`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StripeSettings {
    /// Days a past-due subscription keeps its plan before limits drop to the free plan.
    pub grace_days: i64,
    /// Time an outgoing Stripe call may take.
    pub timeout_ms: u64,
    /// Where Checkout sends the user after paying, unless the request says otherwise.
    pub success_url: String,
    /// Where Checkout sends the user who gives up.
    pub cancel_url: String,
    /// Where the billing portal sends the user back to.
    pub portal_return_url: String,
}

impl Default for StripeSettings {
    fn default() -> Self {
        Self {
            grace_days: 7,
            timeout_ms: 10_000,
            success_url: "http://localhost:8080/billing/success?session_id={CHECKOUT_SESSION_ID}"
                .into(),
            cancel_url: "http://localhost:8080/billing/cancelled".into(),
            portal_return_url: "http://localhost:8080/billing".into(),
        }
    }
}

pub const STRIPE_API_BASE: &str = "https://api.stripe.com";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Argon2Settings {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TokenSettings {
    pub access_ttl_secs: i64,
    pub refresh_ttl_days: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HttpSettings {
    /// Largest accepted request body, in bytes.
    pub body_limit_bytes: usize,
    /// Time a request may take before it is answered with 408.
    pub timeout_secs: u64,
    /// Origins allowed by CORS (`*` allows any).
    pub cors_origins: Vec<String>,
    /// Send `Strict-Transport-Security` (only behind TLS).
    pub hsts: bool,
}

/// The defaults, as a value figment can merge the other layers over.
#[derive(Serialize)]
struct Defaults {
    database_url: &'static str,
    addr: &'static str,
    argon2: Argon2Settings,
    tokens: TokenSettings,
    http: HttpSettings,
    metering: MeteringStrategy,
    stripe_api_base: &'static str,
    stripe: StripeSettings,
    mail_from: &'static str,
    public_url: &'static str,
    product_name: &'static str,
}

pub const MAIL_FROM: &str = "Tollgate <no-reply@localhost>";
pub const PUBLIC_URL: &str = "http://127.0.0.1:8080";
pub const PRODUCT_NAME: &str = "Tollgate";

impl Default for Argon2Settings {
    fn default() -> Self {
        // OWASP's recommended argon2id minimum: 19 MiB, 2 passes, 1 lane.
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            access_ttl_secs: 15 * 60,
            refresh_ttl_days: 30,
        }
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            body_limit_bytes: 64 * 1024,
            timeout_secs: 30,
            cors_origins: Vec::new(),
            hsts: false,
        }
    }
}

pub const DEFAULT_CONFIG_FILE: &str = "tollgate.toml";

impl Settings {
    /// Loads the layers. `file` is `--config`; without it `tollgate.toml` is read if present.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Settings> {
        let mut fig = Figment::from(Serialized::defaults(Defaults {
            database_url: "sqlite://tollgate.db",
            addr: "127.0.0.1:8080",
            argon2: Argon2Settings::default(),
            tokens: TokenSettings::default(),
            http: HttpSettings::default(),
            metering: MeteringStrategy::Auto,
            stripe_api_base: STRIPE_API_BASE,
            stripe: StripeSettings::default(),
            mail_from: MAIL_FROM,
            public_url: PUBLIC_URL,
            product_name: PRODUCT_NAME,
        }));
        match file {
            Some(path) => {
                anyhow::ensure!(
                    path.exists(),
                    "config file {} does not exist",
                    path.display()
                );
                fig = fig.merge(Toml::file(path));
            }
            None => fig = fig.merge(Toml::file(DEFAULT_CONFIG_FILE)),
        }
        fig = fig.merge(
            Env::prefixed("TOLLGATE_")
                .split("__")
                .ignore(&["test_postgres_url", "test_redis_url"]),
        );
        Ok(fig.extract()?)
    }

    /// Settings for tests and embedded use: defaults with the given database.
    pub fn for_database(database_url: &str) -> Settings {
        Settings {
            database_url: database_url.to_owned(),
            secret: None,
            addr: "127.0.0.1:0".parse().expect("valid address"),
            plans: None,
            trusted_proxies: Vec::new(),
            argon2: Argon2Settings::default(),
            tokens: TokenSettings::default(),
            http: HttpSettings::default(),
            metering: MeteringStrategy::Auto,
            background: BackgroundSettings::default(),
            stripe_secret_key: None,
            stripe_webhook_secret: None,
            stripe_api_base: STRIPE_API_BASE.into(),
            stripe: StripeSettings::default(),
            smtp_url: None,
            mail_from: MAIL_FROM.into(),
            public_url: PUBLIC_URL.into(),
            product_name: PRODUCT_NAME.into(),
            redis_url: None,
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://")
    }
}

#[cfg(test)]
// figment's Jail closures return its (large) error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn layers_file_then_env() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "tollgate.toml",
                "addr = \"0.0.0.0:9000\"\nsecret = \"from-file\"\n[argon2]\nmemory_kib = 4096\n",
            )?;
            jail.set_env("TOLLGATE_DATABASE_URL", "postgres://db/x");
            jail.set_env("TOLLGATE_ARGON2__ITERATIONS", "3");
            jail.set_env("TOLLGATE_TRUSTED_PROXIES", "10.0.0.0/8,192.168.0.1");
            jail.set_env("TOLLGATE_METERING", "database");
            let s = Settings::load(None).expect("loads");
            assert_eq!(s.addr.to_string(), "0.0.0.0:9000");
            assert_eq!(s.database_url, "postgres://db/x");
            assert_eq!(s.argon2.memory_kib, 4096);
            assert_eq!(s.argon2.iterations, 3);
            assert_eq!(
                s.trusted_proxies,
                parse_trusted("10.0.0.0/8,192.168.0.1").unwrap()
            );
            assert_eq!(s.metering, MeteringStrategy::Database);
            assert_eq!(s.secret.as_ref().map(|x| x.expose()), Some("from-file"));
            Ok(())
        });
    }

    #[test]
    fn a_bad_trusted_proxy_list_is_refused() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("TOLLGATE_TRUSTED_PROXIES", "10.0.0.0/99");
            let err = Settings::load(None).unwrap_err().to_string();
            assert!(err.contains("TOLLGATE_TRUSTED_PROXIES"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn stripe_variables_have_the_names_the_docs_give() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("TOLLGATE_STRIPE_SECRET_KEY", "sk_test_abc");
            jail.set_env("TOLLGATE_STRIPE_WEBHOOK_SECRET", "whsec_a,whsec_b");
            jail.set_env("TOLLGATE_STRIPE_API_BASE", "http://127.0.0.1:1234");
            jail.set_env("TOLLGATE_STRIPE__GRACE_DAYS", "3");
            let s = Settings::load(None).expect("loads");
            assert_eq!(
                s.stripe_secret_key.as_ref().map(|x| x.expose()),
                Some("sk_test_abc")
            );
            assert_eq!(
                s.stripe_webhook_secret.as_ref().map(|x| x.expose()),
                Some("whsec_a,whsec_b")
            );
            assert_eq!(s.stripe_api_base, "http://127.0.0.1:1234");
            assert_eq!(s.stripe.grace_days, 3);
            let shown = format!("{s:?}");
            assert!(!shown.contains("sk_test_abc") && !shown.contains("whsec_a"));
            Ok(())
        });
    }

    #[test]
    fn mail_variables_have_the_names_the_docs_give() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("TOLLGATE_SMTP_URL", "smtp://mailer:hunter2@127.0.0.1:2525");
            jail.set_env("TOLLGATE_MAIL_FROM", "Acme <no-reply@acme.test>");
            jail.set_env("TOLLGATE_PUBLIC_URL", "https://api.acme.test");
            let s = Settings::load(None).expect("loads");
            assert_eq!(
                s.smtp_url.as_ref().map(|x| x.expose()),
                Some("smtp://mailer:hunter2@127.0.0.1:2525")
            );
            assert_eq!(s.mail_from, "Acme <no-reply@acme.test>");
            assert_eq!(s.public_url, "https://api.acme.test");
            assert_eq!(s.product_name, PRODUCT_NAME);
            assert!(!format!("{s:?}").contains("hunter2"));
            Ok(())
        });
    }

    #[test]
    fn the_redis_url_is_read_checked_and_hidden() {
        figment::Jail::expect_with(|jail| {
            let s = Settings::load(None).expect("loads");
            assert!(s.redis_url.is_none());
            jail.set_env("TOLLGATE_REDIS_URL", "redis://:hunter2@127.0.0.1:6390/1");
            let s = Settings::load(None).expect("loads");
            let url = s.redis_url.as_ref().expect("set");
            assert_eq!(url.display(), "redis://127.0.0.1:6390/1");
            assert!(!format!("{s:?}").contains("hunter2"));
            jail.set_env("TOLLGATE_REDIS_URL", "");
            assert!(Settings::load(None).expect("loads").redis_url.is_none());
            jail.set_env("TOLLGATE_REDIS_URL", "127.0.0.1:6379");
            let err = Settings::load(None).unwrap_err().to_string();
            assert!(err.contains("TOLLGATE_REDIS_URL"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn secrets_do_not_reach_debug_output() {
        let mut s = Settings::for_database("sqlite://x.db");
        s.secret = Some(SecretString::new("hunter2-super-secret"));
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("***"));
    }
}
