//! Throughput of the full metered call (`POST /v1/meter` with an API key: authentication,
//! plan rate limit, quota check, durable usage event) against a bare axum route answering the
//! same JSON, measured in the same run on the same machine. Prints both and their ratio.
//!
//! `cargo bench --no-default-features --bench meter_throughput`

mod common;

use axum::routing::post;
use axum::{Json, Router};
use common::serve;
use std::time::Duration;

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

fn main() {
    common::run(bench());
}

async fn bench() {
    let seconds: u64 = common::env_or("BENCH_SECONDS", 5);
    let connections: usize = common::env_or("BENCH_CONNECTIONS", 32);
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
    let engine = common::start_engine(&format!(
        "sqlite://{}",
        dir.path().join("bench.db").display()
    ))
    .await;
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
