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

/// The Redis server tests share, from `TOLLGATE_TEST_REDIS_URL` (set by `scripts/with-redis`).
/// Without it Redis tests are skipped locally and fail in CI.
pub fn redis_test_url() -> Option<String> {
    match std::env::var("TOLLGATE_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok() => {
            panic!("CI must set TOLLGATE_TEST_REDIS_URL (use scripts/with-redis)")
        }
        _ => {
            eprintln!("TOLLGATE_TEST_REDIS_URL is not set: skipping this Redis test");
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

// ---------------------------------------------------------------------------------------------
// Accounts

/// A user registered through `POST /v1/auth/register`: their tokens, API key and id.
pub struct Registered {
    pub access: String,
    #[allow(dead_code)]
    pub refresh: String,
    pub key: String,
    pub user_id: String,
}

pub async fn register(app: &TestApp, email: &str) -> Registered {
    let res = app
        .http
        .post(app.url("/v1/auth/register"))
        .json(&serde_json::json!({ "email": email, "password": "password1", "full_name": "Test User" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::CREATED);
    let b: serde_json::Value = res.json().await.unwrap();
    Registered {
        access: b["access_token"].as_str().unwrap().into(),
        refresh: b["refresh_token"].as_str().unwrap().into(),
        key: b["api_key"].as_str().unwrap().into(),
        user_id: b["user"]["id"].as_str().unwrap().into(),
    }
}

/// A user registered through the engine (no HTTP), with the password `password1`.
pub async fn new_user(app: &TestApp, email: &str) -> tollgate::domain::User {
    new_user_on(&app.engine, email).await
}

/// [`new_user`] on an engine of one's own.
pub async fn new_user_on(engine: &Engine, email: &str) -> tollgate::domain::User {
    engine
        .register(tollgate::service::accounts::Registration {
            email,
            password: "password1",
            full_name: None,
        })
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// HTTP

/// [`send`] with a bearer token, for tests that need only the status and the body.
pub async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> (reqwest::StatusCode, serde_json::Value) {
    let (status, _, value) = send(app, method, path, Some(token), body).await;
    (status, value)
}

/// One request, bearer `token` and JSON `body` when given: status, headers and body (JSON when
/// it parses, else the text, `null` when empty).
pub async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> (
    reqwest::StatusCode,
    reqwest::header::HeaderMap,
    serde_json::Value,
) {
    let mut req = app.http.request(method, app.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap();
    let value = if text.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
    };
    (status, headers, value)
}

/// The `error.code` of an error body.
pub fn error_code(v: &serde_json::Value) -> &str {
    v["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error body: {v}"))
}

// ---------------------------------------------------------------------------------------------
// Stripe

/// The webhook secret tests configure (`stripe_webhook_secret`).
pub const WEBHOOK_SECRET: &str = "whsec_test_current";

/// The Stripe event files: `single-events/` and the stories, as Stripe sends them.
pub fn events_dir() -> std::path::PathBuf {
    let dir = std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/stripe-events"
    ));
    assert!(
        dir.is_dir(),
        "the Stripe event fixtures are missing: expected them at {}",
        dir.display()
    );
    dir
}

/// One event file's bytes (`single-events/01-….json`).
pub fn event_file(rel: &str) -> Vec<u8> {
    let p = events_dir().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

/// A story's event files' bytes, in file-name order.
pub fn story(name: &str) -> Vec<Vec<u8>> {
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(events_dir().join(name))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// An event's `id`.
pub fn id_of(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    v["id"].as_str().unwrap().to_owned()
}

/// `Stripe-Signature` exactly as Stripe computes it: hex HMAC-SHA256 of `"{t}.{body}"`.
pub fn stripe_signature(body: &[u8], secret: &str, t: i64) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={t},v1={hex}")
}

/// Posts a webhook delivery with the given `Stripe-Signature` (none when `None`).
pub async fn post_webhook(
    app: &TestApp,
    body: &[u8],
    signature: Option<String>,
) -> (reqwest::StatusCode, serde_json::Value) {
    let mut req = app
        .http
        .post(app.url("/v1/stripe/webhook"))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(s) = signature {
        req = req.header("Stripe-Signature", s);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(serde_json::Value::Null))
}

/// Delivers an event signed with [`WEBHOOK_SECRET`] and waits until applying it has ended
/// (applied, ignored, failed, or pending after a try).
pub async fn deliver(app: &TestApp, body: &[u8]) -> tollgate::store::stripe::EventRow {
    let t = app.clock_now().timestamp();
    let (status, b) =
        post_webhook(app, body, Some(stripe_signature(body, WEBHOOK_SECRET, t))).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{b}");
    wait_tried(app, &id_of(body)).await
}

/// Waits until a stored event has been tried at least once.
pub async fn wait_tried(app: &TestApp, id: &str) -> tollgate::store::stripe::EventRow {
    for _ in 0..200 {
        if let Some(e) = tollgate::store::stripe::event(app.engine.db().read(), id)
            .await
            .unwrap()
        {
            if e.status != "pending" || e.attempts > 0 {
                return e;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("event {id} was not applied in time")
}

// ---------------------------------------------------------------------------------------------
// Mail

/// One mail as the SMTP server received it: envelope recipients and the raw message.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub to: Vec<String>,
    pub raw: String,
}

impl ReceivedMail {
    /// The message with quoted-printable soft breaks and escapes undone, so that links read
    /// as they were written.
    pub fn decoded(&self) -> String {
        let joined = self.raw.replace("=\r\n", "").replace("=\n", "");
        let bytes = joined.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'=' && i + 2 < bytes.len() {
                if let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                    out.push(b);
                    i += 3;
                    continue;
                }
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The token of the first link to `path` (`/verify-email`, `/reset-password`).
    pub fn token(&self, path: &str) -> String {
        let text = self.decoded();
        let at = text
            .find(&format!("{path}?token="))
            .unwrap_or_else(|| panic!("no {path} link in {text}"));
        text[at + path.len() + 7..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect()
    }
}

/// A real SMTP server on a loopback port (mailin-embedded), keeping every mail it receives.
#[derive(Clone)]
pub struct MailSink {
    pub port: u16,
    received: Arc<std::sync::Mutex<Vec<ReceivedMail>>>,
}

#[derive(Clone)]
struct SinkHandler {
    received: Arc<std::sync::Mutex<Vec<ReceivedMail>>>,
    to: Vec<String>,
    buf: Vec<u8>,
}

impl mailin_embedded::Handler for SinkHandler {
    fn data_start(
        &mut self,
        _domain: &str,
        _from: &str,
        _is8bit: bool,
        to: &[String],
    ) -> mailin_embedded::Response {
        self.to = to.to_vec();
        self.buf.clear();
        mailin_embedded::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.buf.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> mailin_embedded::Response {
        self.received.lock().unwrap().push(ReceivedMail {
            to: std::mem::take(&mut self.to),
            raw: String::from_utf8_lossy(&self.buf).into_owned(),
        });
        mailin_embedded::response::OK
    }
}

impl MailSink {
    pub fn start() -> MailSink {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind SMTP port");
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut server = mailin_embedded::Server::new(SinkHandler {
            received: received.clone(),
            to: Vec::new(),
            buf: Vec::new(),
        });
        server.with_num_threads(2).with_tcp_listener(listener);
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        MailSink { port, received }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn all(&self) -> Vec<ReceivedMail> {
        self.received.lock().unwrap().clone()
    }

    /// Mail received for `to`, oldest first.
    pub fn to(&self, to: &str) -> Vec<ReceivedMail> {
        self.all()
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t == to))
            .collect()
    }
}

/// An app whose mail goes to `sink`, with links under `https://tollgate.test`.
pub async fn spawn_with_mail(backend: Backend, sink: &MailSink) -> Option<TestApp> {
    let url = sink.url();
    TestApp::spawn_with(backend, move |s| {
        s.smtp_url = Some(tollgate::domain::SecretString::new(url));
        s.mail_from = "Tollgate <no-reply@tollgate.test>".into();
        s.public_url = "https://tollgate.test".into();
    })
    .await
}
