//! An allowed answer is a promise: the server process is killed (SIGKILL) in the middle of a
//! metering load, restarted on the same database, and every consumption it acknowledged is
//! still there, exactly once.

use crate::helpers::{test_settings, Backend, TestDb};
use crate::on_both;
use crate::process::{start_server, tollgate_command, Server};
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

/// 16 clients, each a stream of consumptions with their own idempotency keys, until the
/// server stops answering; every 200 goes into `acks`.
fn load(server: &Server, keys: &[String], acks: &Acks) -> Vec<tokio::task::JoinHandle<()>> {
    let http = reqwest::Client::new();
    (0..16)
        .map(|c| {
            let (http, acks, base) = (http.clone(), acks.clone(), server.base.clone());
            let key = keys[c % keys.len()].clone();
            tokio::spawn(async move {
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
            })
        })
        .collect()
}

/// Waits until the server has acknowledged `n` consumptions.
async fn acknowledged(acks: &Acks, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while acks.lock().unwrap().len() < n {
        assert!(Instant::now() < deadline, "the load did not get going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Every acknowledged consumption replays its first answer from a server started anew.
async fn every_ack_replays(url: &str, acked: &[(String, String, serde_json::Value)]) {
    let http = reqwest::Client::new();
    let mut server = start_server(url);
    for (key, idem, first) in acked {
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
}

on_both!(acknowledged_consumptions_survive_sigkill_exactly_once);
async fn acknowledged_consumptions_survive_sigkill_exactly_once(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let keys = customers(&db.url).await;
    let mut server = start_server(&db.url);
    let acks: Acks = Arc::default();
    let clients = load(&server, &keys, &acks);
    // Kill the server once it has acknowledged a good number of consumptions.
    acknowledged(&acks, 300).await;
    server.kill(); // SIGKILL
    for c in clients {
        c.await.unwrap();
    }
    let acked = acks.lock().unwrap().clone();
    assert!(acked.len() >= 300);
    every_ack_replays(&db.url, &acked).await;

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

    usage_verify_is_clean(&db.url);
}

/// Another process that opens the server's SQLite database and closes it again (the CLI beside
/// the console does) takes nothing from the server. SQLite tells whether it is the last
/// connection by whether it can lock the file exclusively, and the server's lock on it is a
/// POSIX lock, which the server itself drops if it ever closes any descriptor of that file:
/// the other process would then checkpoint, and delete the log under the running server, and
/// what the server acknowledged after that would be written to a log nobody reads.
#[tokio::test(flavor = "multi_thread")]
async fn other_processes_opening_the_database_take_nothing_from_the_server() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let keys = customers(&db.url).await;
    let mut server = start_server(&db.url);
    let acks: Acks = Arc::default();
    let clients = load(&server, &keys, &acks);
    acknowledged(&acks, 200).await;
    // CLI processes come and go, each after a checkpoint period (200 ms) of the server.
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let migrate = tokio::process::Command::from(tollgate_command(&db.url))
            .arg("migrate")
            .output()
            .await
            .unwrap();
        assert!(
            migrate.status.success(),
            "{}",
            String::from_utf8_lossy(&migrate.stderr)
        );
        let gone = open_but_deleted(&server, &db.url);
        assert!(
            gone.is_empty(),
            "the server writes to files gone from disk: {gone:?}"
        );
        let before = acks.lock().unwrap().len();
        acknowledged(&acks, before + 100).await;
    }
    server.kill();
    for c in clients {
        c.await.unwrap();
    }
    let acked = acks.lock().unwrap().clone();
    every_ack_replays(&db.url, &acked).await;
    usage_verify_is_clean(&db.url);
}

/// `tollgate usage verify` finds every counter and rollup equal to the events.
fn usage_verify_is_clean(url: &str) {
    let verify = tollgate_command(url)
        .args(["usage", "verify"])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "usage verify: {}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

/// The server's open files of the database at `url` (the database, its log) that are no
/// longer on disk, from `/proc` (empty where there is no `/proc`).
fn open_but_deleted(server: &Server, url: &str) -> Vec<String> {
    let name = url.rsplit('/').next().unwrap().split('?').next().unwrap();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{}/fd", server.child.id())) else {
        return Vec::new();
    };
    fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .map(|target| target.display().to_string())
        .filter(|target| target.contains(name) && target.ends_with(" (deleted)"))
        .collect()
}
