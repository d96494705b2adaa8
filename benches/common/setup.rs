//! Set-up every benchmark shares: the runtime, knobs read from the environment, an engine
//! with fast password hashing, a served router, and percentiles.

use std::future::Future;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;
use tollgate::{Engine, Settings};

/// Runs the benchmark on a multi-threaded runtime, as `tollgate serve` does.
pub fn run<F: Future>(bench: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(bench)
}

/// A knob from the environment (`BENCH_…`), or its default when unset or unparsable.
pub fn env_or<T: FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// `BENCH_DATABASE_URL`, or a SQLite file in `dir`.
pub fn database_url(dir: &tempfile::TempDir) -> String {
    std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("bench.db").display()))
}

/// The secret every benchmark's engine and server share (keys are hashed with it).
pub const SECRET: &str = "benchmark-secret-0123456789";

/// An engine on `url` with a fixed secret (PostgreSQL needs one) and cheap password hashing,
/// so that set-up does not dominate the run.
pub async fn start_engine(url: &str) -> Engine {
    let mut settings = Settings::for_database(url);
    settings.secret = Some(tollgate::domain::SecretString::new(SECRET));
    settings.argon2.memory_kib = 1024;
    settings.argon2.iterations = 1;
    Engine::start(settings).await.expect("the engine starts")
}

/// Serves `router` on a free local port.
pub async fn serve(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let addr = listener.local_addr().expect("a local address");
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("the server runs");
    });
    addr
}

/// The `p` quantile (0 to 1) of `samples`, in milliseconds.
pub fn percentile(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort();
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i].as_secs_f64() * 1000.0
}

/// "PostgreSQL" or "SQLite", for the figures' heading.
pub fn backend(url: &str) -> &'static str {
    if url.starts_with("postgres") {
        "PostgreSQL"
    } else {
        "SQLite"
    }
}

/// Signs in over HTTP; answers the access token.
pub async fn sign_in(addr: SocketAddr, email: &str, password: &str) -> String {
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!("http://{addr}/v1/auth/login"))
        .json(&serde_json::json!({"email": email, "password": password}))
        .send()
        .await
        .expect("the server answers")
        .json()
        .await
        .expect("a JSON answer");
    answer["access_token"]
        .as_str()
        .expect("signed in")
        .to_owned()
}
