//! An allowed answer is a promise: the server process is killed (SIGKILL) in the middle of a
//! metering load, restarted on the same database, and every consumption it acknowledged is
//! still there, exactly once.

use crate::helpers::{test_settings, Backend, TestDb};
use crate::on_both;
use crate::process::{start_server, tollgate_command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tollgate::service::api_keys::NewKey;
use tollgate::Engine;

const CATALOG: &str = r#"
metrics = ["calls"]
[[plans]]
id = "free"
price = { amount = 0, interval = "month" }
quotas = { calls = { limit = 1000000, per = "day" } }
rate_limits = { api = { requests = 1000000, window = "1h" } }
"#;

/// Ten customers with a key each (made through the engine, which then lets go of the database).
pub(crate) async fn customers(url: &str) -> Vec<String> {
    let engine = Engine::start(test_settings(url)).await.unwrap();
    engine.apply_catalog(CATALOG, Some("test")).await.unwrap();
    let mut keys = Vec::new();
    for i in 0..10 {
        let user = crate::helpers::new_user_on(&engine, &format!("c{i}@example.com")).await;
        let key = engine
            .create_api_key(
                &user.id,
                NewKey {
                    name: "load",
                    scopes: None,
                    expires_at: None,
                },
            )
            .await
            .unwrap();
        keys.push(key.plaintext.expose().to_owned());
    }
    engine.shutdown().await;
    keys
}

/// (key, idempotency key, answer) of every 200 the clients received.
type Acks = Arc<Mutex<Vec<(String, String, serde_json::Value)>>>;

on_both!(acknowledged_consumptions_survive_sigkill_exactly_once);
async fn acknowledged_consumptions_survive_sigkill_exactly_once(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let keys = customers(&db.url).await;
    let mut server = start_server(&db.url);

    // Load: 16 clients, each a stream of consumptions with their own idempotency keys.
    let acks: Acks = Arc::default();
    let http = reqwest::Client::new();
    let mut clients = Vec::new();
    for c in 0..16 {
        let (http, acks, base) = (http.clone(), acks.clone(), server.base.clone());
        let key = keys[c % keys.len()].clone();
        clients.push(tokio::spawn(async move {
            for i in 0.. {
                let idem = format!("job-{c}-{i}");
                let res = http
                    .post(format!("{base}/v1/meter"))
                    .bearer_auth(&key)
                    .json(&serde_json::json!({"metric": "calls", "idempotency_key": idem}))
                    .send()
                    .await;
                let Ok(res) = res else { break };
                if res.status() != 200 {
                    break;
                }
                let Ok(body) = res.json::<serde_json::Value>().await else {
                    break;
                };
                assert_eq!(body["allowed"], true);
                acks.lock().unwrap().push((key.clone(), idem, body));
            }
        }));
    }
    // Kill the server once it has acknowledged a good number of consumptions.
    let deadline = Instant::now() + Duration::from_secs(30);
    while acks.lock().unwrap().len() < 300 {
        assert!(Instant::now() < deadline, "the load did not get going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill(); // SIGKILL
    for c in clients {
        c.await.unwrap();
    }
    let acked = acks.lock().unwrap().clone();
    assert!(acked.len() >= 300);

    // Restart: every acknowledged consumption replays its first answer.
    let mut server = start_server(&db.url);
    for (key, idem, first) in &acked {
        let res = http
            .post(format!("{}/v1/meter", server.base))
            .bearer_auth(key)
            .json(&serde_json::json!({"metric": "calls", "idempotency_key": idem}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let again: serde_json::Value = res.json().await.unwrap();
        assert_eq!(again["replayed"], true, "{idem} was acknowledged but lost");
        assert_eq!(again["event_id"], first["event_id"], "{idem}");
        assert_eq!(again["used"], first["used"], "{idem}");
    }
    server.kill();

    // None counted twice: each counter equals its consume events, and holds at least the
    // acknowledged ones (at most one unanswered request per client was in flight).
    let engine = Engine::start(test_settings(&db.url)).await.unwrap();
    let (counted, events): (i64, i64) = (
        sqlx::query_scalar("SELECT CAST(SUM(used) AS BIGINT) FROM usage_counters")
            .fetch_one(engine.db().read())
            .await
            .unwrap(),
        sqlx::query_scalar("SELECT COUNT(*) FROM usage_events WHERE kind = 'consume'")
            .fetch_one(engine.db().read())
            .await
            .unwrap(),
    );
    assert_eq!(counted, events);
    let acked = acked.len() as i64;
    assert!(
        (acked..=acked + 16).contains(&counted),
        "{counted} counted for {acked} acknowledged"
    );
    let keys_in_events: i64 = sqlx::query_scalar(
        "SELECT COUNT(DISTINCT idempotency_key) FROM usage_events WHERE kind = 'consume'",
    )
    .fetch_one(engine.db().read())
    .await
    .unwrap();
    assert_eq!(
        keys_in_events, events,
        "an idempotency key was consumed twice"
    );
    engine.shutdown().await;

    let verify = tollgate_command(&db.url)
        .args(["usage", "verify"])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "usage verify: {}",
        String::from_utf8_lossy(&verify.stdout)
    );
}
