//! Rate limits shared through Redis (`TOLLGATE_REDIS_URL`): several instances together allow
//! what one would, an instance whose Redis goes away limits locally and says so, and it shares
//! again when Redis comes back.

use crate::helpers::{new_user_on, redis_test_url, test_settings, Backend, TestApp, TestDb};
use crate::on_both;
use crate::process::{start_server_with, tollgate_command, Server};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tollgate::config::RedisUrl;
use tollgate::domain::UserId;
use tollgate::service::api_keys::NewKey;
use tollgate::Engine;

/// Ten calls per hour on the `api` scope (every authenticated request counts).
const TEN_PER_HOUR: &str = r#"
metrics = ["calls"]
[[plans]]
id = "free"
price = { amount = 0, interval = "month" }
quotas = { calls = { limit = 1000000, per = "day" } }
rate_limits = { api = { requests = 10, window = "1h" } }
"#;

/// Customers with a key each, made through an engine of the test's own (no Redis).
async fn customer_keys(engine: &Engine, n: usize) -> Vec<(UserId, String)> {
    let mut keys = Vec::new();
    for i in 0..n {
        let user = new_user_on(engine, &format!("c{i}@example.com")).await;
        let key = engine
            .create_api_key(
                &user.id,
                NewKey {
                    name: "scale",
                    scopes: None,
                    expires_at: None,
                },
            )
            .await
            .unwrap();
        keys.push((user.id, key.plaintext.expose().to_owned()));
    }
    keys
}

/// `GET /v1/me` with `key`, `n` times at once, spread round-robin over `bases`; the statuses
/// each instance answered, in the order of `bases`.
async fn burst(http: &reqwest::Client, bases: &[String], key: &str, n: usize) -> Vec<Vec<u16>> {
    let mut tasks = Vec::new();
    for i in 0..n {
        let which = i % bases.len();
        let (http, base, key) = (http.clone(), bases[which].clone(), key.to_owned());
        tasks.push(tokio::spawn(async move {
            let res = http
                .get(format!("{base}/v1/me"))
                .bearer_auth(&key)
                .send()
                .await
                .expect("answered");
            (which, res.status().as_u16())
        }));
    }
    let mut by_instance = vec![Vec::new(); bases.len()];
    for t in tasks {
        let (i, status) = t.await.unwrap();
        by_instance[i].push(status);
    }
    by_instance
}

fn allowed(statuses: &[u16]) -> usize {
    statuses.iter().filter(|s| **s == 200).count()
}

/// The windows are an hour long and aligned to the hour: a burst must not straddle two.
async fn wait_for_room_in_the_hour() {
    let left = 3600 - chrono::Utc::now().timestamp().rem_euclid(3600);
    if left < 60 {
        tokio::time::sleep(Duration::from_secs(left as u64 + 1)).await;
    }
}

/// A redis-server of the test's own, on a free port, so that it can be stopped and started.
struct RedisServer {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    fn start() -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let mut server = RedisServer {
            port,
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        server.restart();
        server
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it (again) on its port, empty, and waits until it accepts connections.
    fn restart(&mut self) {
        // From PATH, else where Debian's package puts it (/usr/sbin is not always on PATH).
        let binary = std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|dir| dir.join("redis-server"))
            .find(|p| p.is_file())
            .unwrap_or_else(|| "/usr/bin/redis-server".into());
        let child = Command::new(binary)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server (scripts/install-deps installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: Redis is gone at once, as in a crash.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn get_json(http: &reqwest::Client, url: String) -> (u16, serde_json::Value) {
    let res = http.get(url).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or_default())
}

async fn degraded_gauge(http: &reqwest::Client, server: &Server) -> String {
    let text = http
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with("tollgate_rate_limit_degraded "))
        .unwrap_or_else(|| panic!("no degraded gauge in /metrics:\n{text}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_a_rate_limit_and_ride_out_redis_going_away() {
    // Arrange: one PostgreSQL database, one Redis, three `tollgate serve` processes.
    if redis_test_url().is_none() {
        return;
    }
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let mut redis = RedisServer::start();
    let keys = {
        let engine = Engine::start(test_settings(&db.url)).await.unwrap();
        engine
            .apply_catalog(TEN_PER_HOUR, Some("test"))
            .await
            .unwrap();
        let keys: Vec<String> = customer_keys(&engine, 3)
            .await
            .into_iter()
            .map(|(_, key)| key)
            .collect();
        engine.shutdown().await;
        keys
    };
    let redis_url = redis.url();
    let servers: Vec<Server> = (0..3)
        .map(|_| start_server_with(&db.url, &[("TOLLGATE_REDIS_URL", &redis_url)]))
        .collect();
    let bases: Vec<String> = servers.iter().map(|s| s.base.clone()).collect();
    let http = reqwest::Client::new();
    for s in &servers {
        let (status, body) = get_json(&http, format!("{}/ready", s.base)).await;
        assert_eq!((status, &body["redis"]), (200, &"ok".into()), "{body}");
        assert_eq!(
            degraded_gauge(&http, s).await,
            "tollgate_rate_limit_degraded 0"
        );
    }
    wait_for_room_in_the_hour().await;

    // Act/assert: 30 calls at once, ten to each instance: ten allowed in all, not ten each.
    let answers = burst(&http, &bases, &keys[0], 30).await;
    let total: usize = answers.iter().map(|a| allowed(a)).sum();
    assert_eq!(total, 10, "shared limit: {answers:?}");
    assert!(answers.iter().flatten().all(|s| *s == 200 || *s == 429));
    let res = http
        .get(format!("{}/v1/me", bases[1]))
        .bearer_auth(&keys[0])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(body["error"]["limit"], 10);
    assert_eq!(body["error"]["scope"], "api");

    // Redis dies: every call is still answered, limited by each instance alone (ten each).
    redis.stop();
    let answers = burst(&http, &bases, &keys[1], 45).await;
    assert!(
        answers.iter().flatten().all(|s| *s == 200 || *s == 429),
        "{answers:?}"
    );
    for (i, a) in answers.iter().enumerate() {
        assert_eq!(allowed(a), 10, "instance {i} limits alone: {answers:?}");
    }
    for s in &servers {
        let (status, body) = get_json(&http, format!("{}/ready", s.base)).await;
        assert_eq!(status, 200, "degraded is still ready: {body}");
        assert_eq!(body["redis"], "degraded");
        assert_eq!(
            degraded_gauge(&http, s).await,
            "tollgate_rate_limit_degraded 1"
        );
    }

    // Redis is back: within a few seconds every instance shares again.
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    for s in &servers {
        loop {
            let (_, body) = get_json(&http, format!("{}/ready", s.base)).await;
            if body["redis"] == "ok" {
                break;
            }
            assert!(Instant::now() < deadline, "still degraded: {body}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            degraded_gauge(&http, s).await,
            "tollgate_rate_limit_degraded 0"
        );
    }
    let answers = burst(&http, &bases, &keys[2], 30).await;
    let total: usize = answers.iter().map(|a| allowed(a)).sum();
    assert_eq!(total, 10, "shared again: {answers:?}");
}

on_both!(two_engines_count_one_window_through_redis);
async fn two_engines_count_one_window_through_redis(backend: Backend) {
    let Some(url) = redis_test_url() else {
        return;
    };
    let redis = RedisUrl::parse(&url).unwrap();
    let shared = redis.clone();
    let Some(app) = TestApp::spawn_with(backend, |s| s.redis_url = Some(shared)).await else {
        return;
    };
    app.engine
        .apply_catalog(TEN_PER_HOUR, Some("test"))
        .await
        .unwrap();
    // A second instance on the same database and Redis, at the same (frozen) time.
    let mut settings = test_settings(&app.db.url);
    settings.redis_url = Some(redis);
    let other = Engine::start_with_clock(settings, app.clock.clone())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other_base = format!("http://{}", listener.local_addr().unwrap());
    let serving = tokio::spawn(tollgate::http::serve(
        other.clone(),
        listener,
        std::future::pending(),
    ));
    let (user, key) = customer_keys(&app.engine, 1).await.remove(0);

    // Alternating instances: one count, the answers of one limiter.
    let bases = [app.base.clone(), other_base];
    let mut remaining = Vec::new();
    for i in 0..12 {
        let res = app
            .http
            .get(format!("{}/v1/me", bases[i % 2]))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        match res.status().as_u16() {
            200 => remaining.push(
                res.headers()["ratelimit-remaining"]
                    .to_str()
                    .unwrap()
                    .to_owned(),
            ),
            429 => {
                let body: serde_json::Value = res.json().await.unwrap();
                assert_eq!(body["error"]["code"], "rate_limited");
            }
            s => panic!("unexpected {s}"),
        }
    }
    assert_eq!(
        remaining,
        ["9", "8", "7", "6", "5", "4", "3", "2", "1", "0"],
        "one window across both"
    );

    // Clearing through one instance clears the shared window for the other.
    assert_eq!(app.engine.clear_rate_limits(&user).await, 1);
    let res = app
        .http
        .get(format!("{}/v1/me", bases[1]))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["ratelimit-remaining"], "9");
    serving.abort();
}

#[tokio::test]
async fn an_instance_whose_redis_is_away_serves_limited_locally_and_says_so() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let away = RedisUrl::parse(&format!("redis://127.0.0.1:{closed}")).unwrap();
    let app = TestApp::spawn_with(Backend::Sqlite, |s| s.redis_url = Some(away))
        .await
        .unwrap();
    app.engine
        .apply_catalog(TEN_PER_HOUR, Some("test"))
        .await
        .unwrap();
    let (_, key) = customer_keys(&app.engine, 1).await.remove(0);

    let (status, body) = get_json(&app.http, app.url("/ready")).await;
    assert_eq!(status, 200);
    assert_eq!(body["redis"], "degraded");
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("\ntollgate_rate_limit_degraded 1\n"),
        "{metrics}"
    );

    // Not open: the local count still refuses the eleventh call.
    let answers = burst(&app.http, std::slice::from_ref(&app.base), &key, 11).await;
    assert_eq!(allowed(&answers[0]), 10, "{answers:?}");
    assert_eq!(answers[0].iter().filter(|s| **s == 429).count(), 1);
}

#[test]
fn a_redis_url_that_does_not_parse_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let mut child = tollgate_command(&url)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("TOLLGATE_REDIS_URL", "redis://:hunter2@127.0.0.1:notaport")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("tollgate serve started with an unparseable TOLLGATE_REDIS_URL");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(!status.success());
    assert!(stderr.contains("TOLLGATE_REDIS_URL"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}
