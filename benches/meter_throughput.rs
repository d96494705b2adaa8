//! Throughput of the full metered call (`POST /v1/meter` with an API key: authentication,
//! plan rate limit, quota check, durable usage event) against a bare axum route answering the
//! same JSON, measured in the same run on the same machine. Prints both and their ratio.
//!
//! `cargo bench --no-default-features --bench meter_throughput`

mod common;

use axum::routing::post;
use axum::{Json, Router};
use std::net::SocketAddr;
use std::time::Duration;
use tollgate::{Engine, Settings};

const PLANS: &str = r#"
metrics = ["videos"]
[anonymous_rate_limits]
register = { requests = 1000000, window = "1h" }
[[plans]]
id = "free"
price = { amount = 0, interval = "month" }
quotas = { videos = { limit = 1000000000, per = "day" } }
rate_limits = { api = { requests = 1000000000, window = "1h" } }
"#;

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let connections: usize = std::env::var("BENCH_CONNECTIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(32);
    let duration = Duration::from_secs(seconds);

    // Reference: a bare axum route that parses the same body and answers a similar JSON.
    let bare = serve(Router::new().route(
        "/v1/meter",
        post(|Json(v): Json<serde_json::Value>| async move {
            Json(serde_json::json!({"allowed": true, "metric": v["metric"], "used": 1, "limit": 1000, "remaining": 999}))
        }),
    ))
    .await;
    let body = r#"{"metric": "videos"}"#;
    let _ = common::drive(
        bare,
        common::post("/v1/meter", bare, None, body),
        connections,
        Duration::from_millis(500),
    )
    .await;
    let (bare_n, bare_fail) = common::drive(
        bare,
        common::post("/v1/meter", bare, None, body),
        connections,
        duration,
    )
    .await;

    // Tollgate on a fresh SQLite file, as `tollgate serve` runs by default.
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::for_database(&format!(
        "sqlite://{}",
        dir.path().join("bench.db").display()
    ));
    settings.argon2.memory_kib = 1024;
    settings.argon2.iterations = 1;
    let engine = Engine::start(settings).await.unwrap();
    engine.apply_catalog(PLANS, Some("bench")).await.unwrap();
    let _upkeep = engine.spawn_upkeep();
    let app = serve(tollgate::http::router(engine.clone())).await;
    let reg: serde_json::Value = reqwest::Client::new()
        .post(format!("http://{app}/v1/auth/register"))
        .json(&serde_json::json!({"email": "bench@example.com", "password": "password1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = reg["api_key"].as_str().unwrap().to_owned();
    let request = common::post("/v1/meter", app, Some(&key), body);
    let _ = common::drive(
        app,
        request.clone(),
        connections,
        Duration::from_millis(500),
    )
    .await;
    let (meter_n, meter_fail) = common::drive(app, request, connections, duration).await;

    let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM usage_events")
        .fetch_one(engine.db().read())
        .await
        .unwrap();
    let bare_rps = bare_n as f64 / seconds as f64;
    let meter_rps = meter_n as f64 / seconds as f64;
    println!("connections: {connections}, {seconds} s each");
    println!("bare axum route:      {bare_rps:>10.0} requests/s ({bare_fail} non-2xx)");
    println!("full metered call:    {meter_rps:>10.0} requests/s ({meter_fail} non-2xx, {events} usage events stored)");
    println!("ratio metered / bare: {:.3}", meter_rps / bare_rps);
    engine.shutdown().await;
}
