//! One way to start Tollgate for a test: a fresh database (a temporary SQLite file, or a
//! uniquely named PostgreSQL database), the real engine, and the real router on port 0.

use chrono::Utc;
use std::sync::Arc;
use tollgate::service::clock::ManualClock;
use tollgate::{Engine, Settings};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server tests use, from `TOLLGATE_TEST_POSTGRES_URL` (set by
/// `scripts/with-postgres`). Without it PostgreSQL tests are skipped locally and fail in CI.
pub fn postgres_admin_url() -> Option<String> {
    match std::env::var("TOLLGATE_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok() => {
            panic!("CI must set TOLLGATE_TEST_POSTGRES_URL (use scripts/with-postgres)")
        }
        _ => {
            eprintln!(
                "TOLLGATE_TEST_POSTGRES_URL is not set: skipping the PostgreSQL run of this test"
            );
            None
        }
    }
}

/// A database that exists for one test and is removed after it.
pub struct TestDb {
    pub url: String,
    #[allow(dead_code)]
    pub backend: Backend,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<(String, String)>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("tollgate.db").display());
                Some(TestDb {
                    url,
                    backend,
                    _dir: Some(dir),
                    pg_name: None,
                })
            }
            Backend::Postgres => {
                let admin = postgres_admin_url()?;
                let name = format!("tollgate_test_{}", uuid::Uuid::new_v4().simple());
                use sqlx::Connection;
                let mut conn = sqlx::postgres::PgConnection::connect(&admin)
                    .await
                    .expect("connect to test postgres");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                conn.close().await.ok();
                let mut url = url::Url::parse(&admin).expect("admin url");
                url.set_path(&name);
                Some(TestDb {
                    url: url.to_string(),
                    backend,
                    _dir: None,
                    pg_name: Some((admin, name)),
                })
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg_name.take() {
            // Drop runs outside async code: a short-lived runtime on its own thread.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async {
                    use sqlx::Connection;
                    if let Ok(mut conn) = sqlx::postgres::PgConnection::connect(&admin).await {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&mut conn)
                                .await;
                    }
                });
            })
            .join();
        }
    }
}

/// Settings a test starts from: cheap argon2 so that tests stay fast, a fixed secret.
pub fn test_settings(url: &str) -> Settings {
    let mut s = Settings::for_database(url);
    s.secret = Some(tollgate::domain::SecretString::new(
        "test-secret-0123456789abcdef",
    ));
    s.argon2.memory_kib = 1024;
    s.argon2.iterations = 1;
    s
}

pub struct TestApp {
    pub engine: Engine,
    pub clock: Arc<ManualClock>,
    pub base: String,
    pub http: reqwest::Client,
    /// Kept so that the database outlives the app.
    #[allow(dead_code)]
    pub db: TestDb,
    server: tokio::task::JoinHandle<()>,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        Self::spawn_with(backend, |_| {}).await
    }

    pub async fn spawn_with(
        backend: Backend,
        tweak: impl FnOnce(&mut Settings),
    ) -> Option<TestApp> {
        let db = TestDb::new(backend).await?;
        let mut settings = test_settings(&db.url);
        tweak(&mut settings);
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let engine = Engine::start_with_clock(settings, clock.clone())
            .await
            .expect("engine starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind port 0");
        let base = format!("http://{}", listener.local_addr().expect("local addr"));
        let e = engine.clone();
        let server = tokio::spawn(async move {
            tollgate::http::serve(e, listener, std::future::pending())
                .await
                .expect("server runs");
        });
        Some(TestApp {
            engine,
            clock,
            base,
            http: reqwest::Client::new(),
            db,
            server,
        })
    }

    pub fn clock_now(&self) -> chrono::DateTime<Utc> {
        use tollgate::service::clock::Clock;
        self.clock.now()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Runs an async test body once on SQLite and once on PostgreSQL:
/// `on_both!(name);` next to `async fn name(backend: Backend)`.
#[macro_export]
macro_rules! on_both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if $crate::helpers::postgres_admin_url().is_some() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            }
        }
    };
}

/// A staff account with `role`, signed in: its access token.
pub async fn staff_token(app: &TestApp, email: &str, role: tollgate::domain::Role) -> String {
    app.engine
        .create_staff(email, role, Some("staff-password"))
        .await
        .unwrap();
    let res: serde_json::Value = app
        .http
        .post(app.url("/v1/auth/login"))
        .json(&serde_json::json!({"email": email, "password": "staff-password"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    res["access_token"].as_str().unwrap().to_owned()
}
