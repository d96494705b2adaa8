//! Several `tollgate serve` processes on one database: three real server processes on
//! loopback, the CLI as a fourth process. Whatever one instance guarantees holds across all
//! three: quotas and idempotency keys are exact, a revoked key or a suspended user is refused
//! by every instance within a second although each had it cached, a webhook posted to all
//! three applies once, and the background work moves when its holder is killed.

use crate::helpers::{
    error_code, event_file, new_user_on, stripe_signature, test_settings, Backend, TestDb,
    WEBHOOK_SECRET,
};
use crate::on_both;
use crate::process::{start_server_with, tollgate_command, Server};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tollgate::service::api_keys::NewKey;
use tollgate::service::leases::UPKEEP_LEASE;
use tollgate::Engine;

const CATALOG: &str = r#"
metrics = ["calls", "pings"]
default_plan = "free"
[[plans]]
id = "free"
price = { amount = 0, interval = "month" }
quotas = { calls = { limit = 60, per = "day" }, pings = { limit = 1000000, per = "day" } }
rate_limits = { api = { requests = 1000000, window = "1h" } }
[[plans]]
id = "pro"
price = { amount = 1200, interval = "month" }
stripe_price_ids = ["price_pro_monthly"]
quotas = { calls = { limit = 1000000, per = "day" }, pings = { limit = 1000000, per = "day" } }
rate_limits = { api = { requests = 1000000, window = "1h" } }
"#;

/// The bound the issue sets on cross-instance invalidation.
const WITHIN: Duration = Duration::from_secs(1);
/// The background lease of the test's instances (short, so that a takeover is quick).
const LEASE_MS: &str = "3000";

struct Customer {
    id: String,
    email: String,
    /// Key ids and plaintexts.
    keys: Vec<(String, String)>,
}

/// Customers with two keys each, made through the engine (which then lets go of the
/// database).
async fn customers(url: &str, n: usize) -> Vec<Customer> {
    let engine = Engine::start(test_settings(url)).await.unwrap();
    engine.apply_catalog(CATALOG, Some("test")).await.unwrap();
    let mut out = Vec::new();
    for i in 0..n {
        let email = format!("scale{i}@example.com");
        let user = new_user_on(&engine, &email).await;
        let mut keys = Vec::new();
        for name in ["one", "two"] {
            let k = engine
                .create_api_key(
                    &user.id,
                    NewKey {
                        name,
                        scopes: None,
                        expires_at: None,
                    },
                )
                .await
                .unwrap();
            keys.push((k.info.id.to_string(), k.plaintext.expose().to_owned()));
        }
        out.push(Customer {
            id: user.id.to_string(),
            email,
            keys,
        });
    }
    engine.shutdown().await;
    out
}

fn start_instances(url: &str, n: usize) -> Vec<Server> {
    (0..n)
        .map(|_| {
            start_server_with(
                url,
                &[
                    ("TOLLGATE_STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET),
                    ("TOLLGATE_BACKGROUND__LEASE_MS", LEASE_MS),
                    // Several processes decide in the database (the memory strategy is for
                    // one process); PostgreSQL's `auto` is the same.
                    ("TOLLGATE_METERING", "database"),
                ],
            )
        })
        .collect()
}

async fn meter(
    http: &reqwest::Client,
    server: &Server,
    key: &str,
    body: Value,
) -> (StatusCode, Value) {
    let res = http
        .post(format!("{}/v1/meter", server.base))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn get_me(http: &reqwest::Client, server: &Server, key: &str) -> Value {
    let res = http
        .get(format!("{}/v1/me", server.base))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

/// A ping on every instance, so that each has the key and the subscription cached.
async fn warm(http: &reqwest::Client, servers: &[Server], key: &str) {
    for s in servers {
        let (status, body) = meter(http, s, key, json!({"metric": "pings"})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

/// Pings `key` on every instance until each refuses it with `code`; returns the slowest
/// instance's time, from `since`.
async fn until_refused_everywhere(
    http: &reqwest::Client,
    servers: &[&Server],
    key: &str,
    code: &str,
    since: Instant,
) -> Duration {
    let mut slowest = Duration::ZERO;
    for s in servers {
        loop {
            let (status, body) = meter(http, s, key, json!({"metric": "pings"})).await;
            if status != StatusCode::OK {
                assert_eq!(error_code(&body), code, "{body}");
                slowest = slowest.max(since.elapsed());
                break;
            }
            assert!(
                since.elapsed() < Duration::from_secs(10),
                "{} still allows the key",
                s.base
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    slowest
}

async fn scalar(engine: &Engine, sql: &str, bind: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(bind)
        .fetch_one(engine.db().read())
        .await
        .unwrap()
}

on_both!(three_instances_on_one_database_behave_as_one);
async fn three_instances_on_one_database_behave_as_one(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let people = customers(&db.url, 5).await;
    let servers = start_instances(&db.url, 3);
    let http = reqwest::Client::new();
    let engine = Engine::start(test_settings(&db.url)).await.unwrap();

    // Quotas: 90 concurrent calls, 30 through each instance, against a limit of 60.
    let quota_key = people[0].keys[0].1.clone();
    let mut calls = Vec::new();
    for i in 0..90 {
        let (http, base, key) = (http.clone(), servers[i % 3].base.clone(), quota_key.clone());
        calls.push(tokio::spawn(async move {
            let res = http
                .post(format!("{base}/v1/meter"))
                .bearer_auth(&key)
                .json(&json!({"metric": "calls"}))
                .send()
                .await
                .unwrap();
            let status = res.status();
            (status, res.json::<Value>().await.unwrap())
        }));
    }
    let (mut allowed, mut refused) = (0, 0);
    for c in calls {
        let (status, body) = c.await.unwrap();
        match status {
            StatusCode::OK => allowed += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert_eq!(error_code(&body), "quota_exceeded", "{body}");
                refused += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!((allowed, refused), (60, 30));
    assert_eq!(
        scalar(
            &engine,
            "SELECT CAST(SUM(used) AS BIGINT) FROM usage_counters WHERE user_id = $1 AND metric = 'calls'",
            &people[0].id
        )
        .await,
        60
    );

    // Idempotency: the same key sent to the three instances at the same moment consumes once,
    // and all three answers name the same event.
    let idem_key = people[1].keys[0].1.clone();
    for round in 0..5 {
        let body = json!({"metric": "pings", "idempotency_key": format!("job-{round}")});
        let (a, b, c) = tokio::join!(
            meter(&http, &servers[0], &idem_key, body.clone()),
            meter(&http, &servers[1], &idem_key, body.clone()),
            meter(&http, &servers[2], &idem_key, body.clone()),
        );
        for (status, answer) in [&a, &b, &c] {
            assert_eq!(*status, StatusCode::OK, "{answer}");
            assert_eq!(answer["event_id"], a.1["event_id"], "round {round}");
            assert_eq!(answer["used"], a.1["used"], "round {round}");
        }
        let first = [&a, &b, &c]
            .iter()
            .filter(|(_, v)| v["replayed"] == false)
            .count();
        assert_eq!(first, 1, "exactly one answer is the first, round {round}");
    }
    assert_eq!(
        scalar(
            &engine,
            "SELECT COUNT(*) FROM usage_events WHERE user_id = $1 AND kind = 'consume'",
            &people[1].id
        )
        .await,
        5
    );

    // A key revoked through one instance is refused by the others within a second, although
    // both had it cached (a cached key is used for minutes without being read again).
    let owner = &people[2];
    let (victim_id, victim) = owner.keys[0].clone();
    warm(&http, &servers, &victim).await;
    let res = http
        .delete(format!("{}/v1/keys/{victim_id}", servers[0].base))
        .bearer_auth(&owner.keys[1].1)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let revoked_at = Instant::now();
    let took = until_refused_everywhere(
        &http,
        &[&servers[1], &servers[2], &servers[0]],
        &victim,
        "api_key_revoked",
        revoked_at,
    )
    .await;
    assert!(
        took < WITHIN,
        "the revocation took {took:?} to reach every instance"
    );
    eprintln!("revocation refused everywhere after {took:?}");
    // The owner's other key is not affected.
    warm(&http, &servers, &owner.keys[1].1).await;

    // A user suspended from the CLI (its own process) is refused by all three within a second.
    let suspended = &people[3];
    warm(&http, &servers, &suspended.keys[0].1).await;
    let out = tollgate_command(&db.url)
        .args([
            "users",
            "suspend",
            &suspended.email,
            "--reason",
            "scale test",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let suspended_at = Instant::now();
    let all: Vec<&Server> = servers.iter().collect();
    let took = until_refused_everywhere(
        &http,
        &all,
        &suspended.keys[0].1,
        "account_suspended",
        suspended_at,
    )
    .await;
    assert!(
        took < WITHIN,
        "the suspension took {took:?} to reach every instance"
    );
    eprintln!("suspension refused everywhere after {took:?}");
    // Someone else's cached key still works everywhere.
    warm(&http, &servers, &people[1].keys[1].1).await;

    // An email verified and two-factor turned on by another process (here, plain SQL: the
    // triggers announce whoever writes) show in every instance's cached `/v1/me`.
    let account = &people[2];
    for s in &servers {
        let me = get_me(&http, s, &account.keys[1].1).await;
        assert_eq!(
            (me["email_verified"].clone(), me["mfa_enabled"].clone()),
            (json!(false), json!(false)),
            "{me}"
        );
    }
    sqlx::query("UPDATE users SET email_verified_at = $2 WHERE id = $1")
        .bind(&account.id)
        .bind(chrono::Utc::now().timestamp_millis())
        .execute(engine.db().write())
        .await
        .unwrap();
    sqlx::query("INSERT INTO mfa_totp (user_id, secret_enc, created_at, confirmed_at) VALUES ($1, 'x', $2, $2)")
        .bind(&account.id)
        .bind(chrono::Utc::now().timestamp_millis())
        .execute(engine.db().write())
        .await
        .unwrap();
    let changed_at = Instant::now();
    for s in &servers {
        loop {
            let me = get_me(&http, s, &account.keys[1].1).await;
            if me["email_verified"] == json!(true) && me["mfa_enabled"] == json!(true) {
                break;
            }
            assert!(
                changed_at.elapsed() < WITHIN,
                "{} still answers {me}",
                s.base
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    eprintln!(
        "account facts changed everywhere after {:?}",
        changed_at.elapsed()
    );

    // The same signed webhook posted to all three at once is stored and applied once.
    let buyer = &people[4];
    warm(&http, &servers, &buyer.keys[0].1).await;
    let body = checkout_for(&buyer.id, "evt_scale_checkout");
    let t = chrono::Utc::now().timestamp();
    let sig = stripe_signature(&body, WEBHOOK_SECRET, t);
    let post = |s: &Server, sig: String, body: Vec<u8>| {
        let req = http
            .post(format!("{}/v1/stripe/webhook", s.base))
            .header("content-type", "application/json")
            .header("Stripe-Signature", sig)
            .body(body);
        async move {
            let res = req.send().await.unwrap();
            let status = res.status();
            (status, res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let answers = tokio::join!(
        post(&servers[0], sig.clone(), body.clone()),
        post(&servers[1], sig.clone(), body.clone()),
        post(&servers[2], sig.clone(), body.clone()),
    );
    let answers = [answers.0, answers.1, answers.2];
    for (status, b) in &answers {
        assert_eq!(*status, StatusCode::OK, "{b}");
    }
    assert_eq!(
        answers
            .iter()
            .filter(|(_, b)| b["duplicate"] == false)
            .count(),
        1,
        "one instance stored the event, the others saw a duplicate: {answers:?}"
    );
    let event = wait_applied(&engine, "evt_scale_checkout").await;
    assert_eq!(event.attempts, 1, "applied once");
    assert_eq!(event.user_id.as_deref(), Some(buyer.id.as_str()));
    // Failure path: a delivery with a wrong signature is refused by every instance and stores
    // nothing.
    let forged = checkout_for(&buyer.id, "evt_scale_forged");
    let bad = stripe_signature(&forged, "whsec_not_ours", t);
    for s in &servers {
        let (status, b) = post(s, bad.clone(), forged.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{b}");
    }
    assert!(
        tollgate::store::stripe::event(engine.db().read(), "evt_scale_forged")
            .await
            .unwrap()
            .is_none()
    );
    // The plan change the event made reaches every instance's cached subscription within a
    // second: the buyer's calls are on pro's limit everywhere.
    let applied_at = Instant::now();
    for s in &servers {
        loop {
            let (status, b) = meter(
                &http,
                s,
                &buyer.keys[0].1,
                json!({"metric": "calls", "amount": 100}),
            )
            .await;
            if status == StatusCode::OK {
                break;
            }
            assert_eq!(error_code(&b), "quota_exceeded", "{b}");
            assert!(
                applied_at.elapsed() < WITHIN,
                "{} still applies the free plan: {b}",
                s.base
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    // The background work runs under one lease; killing its holder hands it to another.
    let mut servers = servers;
    let before = wait_lease(&engine, |_| true).await;
    let holder_at = servers
        .iter()
        .position(|s| before.holder.split(':').nth(1) == Some(&s.child.id().to_string()))
        .unwrap_or_else(|| panic!("lease held by {}, not one of the instances", before.holder));
    servers[holder_at].kill();
    let killed_at = Instant::now();
    // An event stored but not applied (as a crash right after storing leaves it): only the
    // lease holder applies those.
    insert_pending(&engine, &checkout_for(&people[0].id, "evt_scale_pending")).await;
    let after = wait_lease(&engine, |l| l.holder != before.holder).await;
    let took_over = killed_at.elapsed();
    assert!(
        servers.iter().enumerate().any(|(i, s)| i != holder_at
            && after.holder.split(':').nth(1) == Some(&s.child.id().to_string())),
        "lease taken by {}, not a surviving instance",
        after.holder
    );
    let event = wait_applied(&engine, "evt_scale_pending").await;
    assert_eq!(event.user_id.as_deref(), Some(people[0].id.as_str()));
    eprintln!("background lease moved {took_over:?} after SIGKILL");
    engine.shutdown().await;
}

/// The fixture's paid checkout, for `user`, under a new event id.
fn checkout_for(user: &str, event_id: &str) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&event_file(
        "single-events/01-checkout.session.completed.json",
    ))
    .unwrap();
    v["id"] = json!(event_id);
    v["data"]["object"]["client_reference_id"] = json!(user);
    v["data"]["object"]["metadata"]["user_id"] = json!(user);
    // Each buyer is their own Stripe customer.
    v["data"]["object"]["customer"] = json!(format!("cus_{}", &user[user.len() - 8..]));
    serde_json::to_vec_pretty(&v).unwrap()
}

async fn insert_pending(engine: &Engine, body: &[u8]) {
    let v: Value = serde_json::from_slice(body).unwrap();
    sqlx::query(
        "INSERT INTO stripe_events (id, type, created, livemode, payload, received_at, status, customer_id, attempts)
         VALUES ($1, $2, $3, 0, $4, 0, 'pending', $5, 0)",
    )
    .bind(v["id"].as_str().unwrap())
    .bind(v["type"].as_str().unwrap())
    .bind(v["created"].as_i64().unwrap() * 1000)
    .bind(String::from_utf8(body.to_vec()).unwrap())
    .bind(v["data"]["object"]["customer"].as_str().unwrap())
    .execute(engine.db().write())
    .await
    .unwrap();
}

async fn wait_applied(engine: &Engine, id: &str) -> tollgate::store::stripe::EventRow {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(e) = tollgate::store::stripe::event(engine.db().read(), id)
            .await
            .unwrap()
        {
            if e.status == "applied" {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "{id} stays {}: {:?}",
                e.status,
                e.error
            );
        }
        assert!(Instant::now() < deadline, "{id} was not stored");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn wait_lease(
    engine: &Engine,
    wanted: impl Fn(&tollgate::service::leases::Lease) -> bool,
) -> tollgate::service::leases::Lease {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(l) = engine.lease(UPKEEP_LEASE).await.unwrap() {
            if wanted(&l) {
                return l;
            }
        }
        assert!(Instant::now() < deadline, "the lease did not change hands");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

on_both!(a_lease_is_held_by_one_until_it_expires);
async fn a_lease_is_held_by_one_until_it_expires(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let mut settings = test_settings(&db.url);
    settings.background.lease_ms = 400;
    let first = Engine::start(settings.clone()).await.unwrap();
    let second = Engine::start(settings).await.unwrap();
    assert_ne!(first.lease_holder_name(), second.lease_holder_name());

    assert!(first.hold_upkeep_lease().await.unwrap());
    // Failure path: a live holder's lease cannot be taken, however often one asks.
    for _ in 0..3 {
        assert!(!second.hold_upkeep_lease().await.unwrap());
    }
    assert!(first.hold_upkeep_lease().await.unwrap(), "renewed");
    assert!(first.runs_background_work() && !second.runs_background_work());

    // The holder stops renewing (as a dead process does): once expired, the other takes it.
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert!(second.hold_upkeep_lease().await.unwrap());
    assert!(!first.hold_upkeep_lease().await.unwrap(), "lost for good");
    let lease = second.lease(UPKEEP_LEASE).await.unwrap().unwrap();
    assert_eq!(lease.holder, second.lease_holder_name());

    // A clean shutdown gives the lease up at once.
    second.shutdown().await;
    assert!(first.hold_upkeep_lease().await.unwrap());
    first.shutdown().await;
}
