//! The database strategy's group commit on PostgreSQL: concurrent consumptions of one process
//! are decided in batches, and every batch keeps the guarantees of one request at a time.

use crate::helpers::{new_user_on, postgres_admin_url, test_settings, Backend, TestApp};
use chrono::Utc;
use sqlx::Connection;
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use tollgate::domain::{UsageEventId, UserId};
use tollgate::service::metering::{Consumption, MeterRequest, Strategy};
use tollgate::service::subscriptions::Effective;
use tollgate::{Engine, Error};

/// A catalog whose `ten` plan allows exactly 10 calls a day.
const TEN: &str = r#"
metrics = ["calls"]
[[plans]]
id = "free"
price = { amount = 0, interval = "month" }
quotas = { calls = { limit = 1, per = "day" } }
[[plans]]
id = "ten"
price = { amount = 500, interval = "month" }
stripe_price_ids = ["price_ten"]
quotas = { calls = { limit = 10, per = "day" } }
"#;

/// A PostgreSQL app with the `TEN` catalog and, beside it, `others` more engines on its
/// database (as more server processes would be).
async fn apps(others: usize) -> Option<(TestApp, Vec<Engine>)> {
    postgres_admin_url()?;
    let app = TestApp::spawn(Backend::Postgres).await?;
    assert_eq!(app.engine.meter_strategy(), Strategy::Database);
    app.engine.apply_catalog(TEN, Some("test")).await.unwrap();
    let mut engines = vec![app.engine.clone()];
    for _ in 0..others {
        let e = Engine::start(test_settings(&app.db.url)).await.unwrap();
        e.refresh_catalog().await.unwrap();
        engines.push(e);
    }
    Some((app, engines))
}

async fn users_on_ten(engine: &Engine, n: usize, tag: &str) -> Vec<UserId> {
    let mut ids = Vec::new();
    for i in 0..n {
        let u = new_user_on(engine, &format!("{tag}-{i}@example.com")).await;
        engine
            .change_plan(&u.id, "ten", Effective::Now)
            .await
            .unwrap();
        ids.push(u.id);
    }
    ids
}

async fn consume(
    engine: Engine,
    user: UserId,
    amount: i64,
    key: Option<String>,
) -> Result<Consumption, Error> {
    engine
        .check_and_consume(
            &user,
            MeterRequest {
                metric: "calls",
                amount,
                idempotency_key: key.as_deref(),
                request_id: None,
            },
        )
        .await
}

async fn scalar(engine: &Engine, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(engine.db().read())
        .await
        .unwrap()
}

/// `per_user` concurrent single calls for each user, spread over `engines`; answers how many
/// each user was allowed, after checking every refusal.
async fn race(engines: &[Engine], users: &[UserId], per_user: usize) -> HashMap<UserId, usize> {
    let mut tasks = Vec::new();
    for round in 0..per_user {
        for (i, u) in users.iter().enumerate() {
            let engine = engines[(round + i) % engines.len()].clone();
            let user = u.clone();
            tasks.push(tokio::spawn(async move {
                (user.clone(), consume(engine, user, 1, None).await)
            }));
        }
    }
    let mut allowed: HashMap<UserId, usize> = HashMap::new();
    for t in tasks {
        let (user, result) = t.await.unwrap();
        match result {
            Ok(c) => {
                assert!(c.used <= 10 && c.limit == Some(10), "{c:?}");
                *allowed.entry(user).or_default() += 1;
            }
            Err(Error::QuotaExceeded(d)) => {
                // Refused only once the counter is full.
                assert_eq!((d.used, d.limit, d.remaining), (10, 10, 0), "{d:?}");
            }
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }
    allowed
}

async fn assert_exactly_ten_each(engines: &[Engine], users: &[UserId]) {
    let allowed = race(engines, users, 40).await;
    for u in users {
        assert_eq!(allowed.get(u).copied(), Some(10), "user {u}");
    }
    let engine = &engines[0];
    let events = scalar(
        engine,
        "SELECT COUNT(*) FROM usage_events WHERE kind = 'consume'",
    )
    .await;
    assert_eq!(events, 10 * users.len() as i64);
    assert!(engine.verify_usage(false, "test").await.unwrap().is_empty());
    // The requests went through the group commit, several to a transaction.
    let mut batches = 0;
    let mut requests = 0;
    for e in engines {
        let t = e.gauges().meter_batches.expect("batching on PostgreSQL");
        batches += t.batches;
        requests += t.requests;
    }
    assert!(requests >= (40 * users.len()) as u64, "{requests}");
    assert!(
        batches < requests,
        "{batches} batches for {requests} requests"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_mixing_customers_allow_exactly_each_limit() {
    let Some((_app, engines)) = apps(0).await else {
        return;
    };
    let users = users_on_ten(&engines[0], 8, "mix").await;
    assert_exactly_ten_each(&engines, &users).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_batching_on_one_database_allow_exactly_each_limit() {
    let Some((_app, engines)) = apps(1).await else {
        return;
    };
    let users = users_on_ten(&engines[0], 6, "two").await;
    assert_exactly_ten_each(&engines, &users).await;
    engines[1].shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_repeats_of_one_key_record_one_event() {
    let Some((_app, engines)) = apps(1).await else {
        return;
    };
    let users = users_on_ten(&engines[0], 3, "idem").await;
    let mut tasks = Vec::new();
    for i in 0..30 {
        let engine = engines[i % 2].clone();
        // The repeats of one key, mixed with other users' calls in the same batches.
        let (user, key) = match i % 3 {
            0 => (users[0].clone(), Some("job-7".to_owned())),
            1 => (users[1].clone(), None),
            _ => (users[2].clone(), Some(format!("other-{i}"))),
        };
        tasks.push(tokio::spawn(async move {
            let repeat = key.as_deref() == Some("job-7");
            (repeat, consume(engine, user, 1, key).await)
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        let (repeat, result) = t.await.unwrap();
        let c = result.expect("10 per user fit the limit");
        if repeat {
            answers.push(c);
        }
    }
    assert_eq!(answers.len(), 10);
    let first = answers.iter().find(|c| !c.replayed).expect("one original");
    for c in &answers {
        assert_eq!(
            (&c.event_id, c.used, c.amount),
            (&first.event_id, 1, 1),
            "every repeat answers as the first"
        );
    }
    assert_eq!(answers.iter().filter(|c| !c.replayed).count(), 1);
    let events = scalar(
        &engines[0],
        "SELECT COUNT(*) FROM usage_events WHERE idempotency_key = 'job-7'",
    )
    .await;
    assert_eq!(events, 1);
    let summary = engines[0].usage_summary(&users[0]).await.unwrap();
    assert_eq!(summary.metrics["calls"].used, 1);
    assert!(engines[0]
        .verify_usage(false, "test")
        .await
        .unwrap()
        .is_empty());
    engines[1].shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_request_in_a_batch_answers_the_counter_it_saw() {
    let Some((_app, engines)) = apps(0).await else {
        return;
    };
    let engine = &engines[0];
    let users = users_on_ten(engine, 2, "refuse").await;
    let (a, b) = (users[0].clone(), users[1].clone());
    for _ in 0..8 {
        consume(engine.clone(), a.clone(), 1, None).await.unwrap();
    }
    // At 8 of 10: 5 more does not fit, nor does 11 (more than the limit itself); b's 3 does.
    let over = tokio::spawn(consume(engine.clone(), a.clone(), 5, None));
    let beyond = tokio::spawn(consume(engine.clone(), a.clone(), 11, None));
    let fits = tokio::spawn(consume(engine.clone(), b.clone(), 3, None));
    for (task, requested) in [(over, 5), (beyond, 11)] {
        match task.await.unwrap() {
            Err(Error::QuotaExceeded(d)) => {
                assert_eq!(
                    (d.used, d.limit, d.remaining, d.requested),
                    (8, 10, 2, requested)
                );
                assert_eq!(d.plan.as_str(), "ten");
            }
            other => panic!("expected quota_exceeded, got {other:?}"),
        }
    }
    let c = fits.await.unwrap().unwrap();
    assert_eq!((c.used, c.remaining), (3, Some(7)));
    // The refusals took nothing: 2 still fit exactly.
    let c = consume(engine.clone(), a.clone(), 2, None).await.unwrap();
    assert_eq!((c.used, c.remaining), (10, Some(0)));
    assert!(engine.verify_usage(false, "test").await.unwrap().is_empty());
}

/// Another instance commits a consumption under the same key while this one's batch is
/// between reading the stored answers and inserting its events: the batch is rolled back,
/// and its requests are decided one by one (the repeat replays the other's answer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_taken_by_another_instance_meanwhile_rolls_the_batch_back() {
    let Some((app, engines)) = apps(0).await else {
        return;
    };
    let engine = &engines[0];
    let users = users_on_ten(engine, 3, "taken").await;
    let u = users[0].clone();
    let first = consume(engine.clone(), u.clone(), 1, None).await.unwrap();
    let period_start = scalar(
        engine,
        &format!("SELECT period_start FROM usage_counters WHERE user_id = '{u}'"),
    )
    .await;

    // "Another instance" consumes under `job-9`, and holds its transaction open.
    let theirs = Consumption {
        event_id: UsageEventId::new().into(),
        used: 2,
        remaining: Some(8),
        ..first.clone()
    };
    let mut other = sqlx::postgres::PgConnection::connect(&app.db.url)
        .await
        .unwrap();
    let mut tx = other.begin().await.unwrap();
    sqlx::query("UPDATE usage_counters SET used = used + 1 WHERE user_id = $1")
        .bind(u.as_str())
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO usage_events (id, user_id, metric, kind, amount, at, period_start, idempotency_key, answer)
         VALUES ($1, $2, 'calls', 'consume', 1, $3, $4, 'job-9', $5)",
    )
    .bind(&theirs.event_id)
    .bind(u.as_str())
    .bind(Utc::now().timestamp_millis())
    .bind(period_start)
    .bind(serde_json::to_string(&theirs).unwrap())
    .execute(&mut *tx)
    .await
    .unwrap();

    // This instance: the same key, with other customers' calls.
    let before = engine.gauges().meter_batches.unwrap();
    let repeat = tokio::spawn(consume(engine.clone(), u.clone(), 1, Some("job-9".into())));
    let others: Vec<_> = users[1..]
        .iter()
        .map(|v| tokio::spawn(consume(engine.clone(), v.clone(), 1, None)))
        .collect();
    // Wait until the batch waits on the other transaction's row, then let that commit.
    let mut waited = false;
    for _ in 0..200 {
        let waiting = scalar(
            engine,
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .await;
        if waiting > 0 {
            waited = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(waited, "the batch never waited on the other transaction");
    tx.commit().await.unwrap();

    let c = repeat.await.unwrap().unwrap();
    assert!(c.replayed);
    assert_eq!((c.event_id.as_str(), c.used), (theirs.event_id.as_str(), 2));
    for t in others {
        let c = t.await.unwrap().unwrap();
        assert_eq!(c.used, 1);
    }
    let after = engine.gauges().meter_batches.unwrap();
    assert!(after.on_their_own > before.on_their_own, "{after:?}");
    // One consumption under the key, and the counter counts it once.
    let keyed = scalar(
        engine,
        "SELECT COUNT(*) FROM usage_events WHERE idempotency_key = 'job-9'",
    )
    .await;
    assert_eq!(keyed, 1);
    let summary = engine.usage_summary(&u).await.unwrap();
    assert_eq!(summary.metrics["calls"].used, 2);
    assert!(engine.verify_usage(false, "test").await.unwrap().is_empty());
}

/// A database error in a batch's transaction answers each of its requests with the error;
/// none is allowed without its commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_batch_answers_every_request_with_the_error() {
    let Some((_app, engines)) = apps(0).await else {
        return;
    };
    let engine = &engines[0];
    let users = users_on_ten(engine, 4, "failed").await;
    // Events of 7 units fail to insert.
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_sevens() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'sevens are refused'; END $$;
         CREATE TRIGGER refuse_sevens BEFORE INSERT ON usage_events
           FOR EACH ROW WHEN (NEW.amount = 7) EXECUTE FUNCTION refuse_sevens();",
    )
    .execute(engine.db().write())
    .await
    .unwrap();
    let mut tasks = Vec::new();
    for (i, u) in users.iter().enumerate() {
        let amount = if i == 0 { 7 } else { 1 };
        tasks.push(tokio::spawn(consume(
            engine.clone(),
            u.clone(),
            amount,
            None,
        )));
    }
    let mut allowed = HashSet::new();
    let mut failed = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(c) => {
                assert_eq!(c.used, 1);
                allowed.insert(c.event_id);
            }
            Err(e) => {
                assert_eq!(e.code(), "internal", "{e:?}");
                failed += 1;
            }
        }
    }
    assert!(failed >= 1, "the 7 fails");
    // What was answered allowed is stored; nothing of the failed batch is.
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT id FROM usage_events WHERE kind = 'consume'")
            .fetch_all(engine.db().read())
            .await
            .unwrap();
    assert_eq!(stored.into_iter().collect::<HashSet<_>>(), allowed);
    assert!(engine.verify_usage(false, "test").await.unwrap().is_empty());
    // The batcher goes on after a failed batch.
    let c = consume(engine.clone(), users[0].clone(), 2, None)
        .await
        .unwrap();
    assert_eq!(c.used, 2);
}

/// Shutting an engine down commits what its group commit holds: every request gets an
/// answer, and each one answered allowed is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_the_queue() {
    let Some((_app, engines)) = apps(1).await else {
        return;
    };
    let users = users_on_ten(&engines[0], 4, "drain").await;
    let other = engines[1].clone();
    // Warm `other`'s caches, so that the calls below reach its queue at once.
    let mut allowed = HashSet::new();
    for u in &users {
        let c = consume(other.clone(), u.clone(), 1, None).await.unwrap();
        allowed.insert(c.event_id);
    }
    let warmed = other.gauges().meter_batches.unwrap().requests;
    let tasks: Vec<_> = (0..40)
        .map(|i| tokio::spawn(consume(other.clone(), users[i % 4].clone(), 1, None)))
        .collect();
    // Shut down while batches are under way.
    while other.gauges().meter_batches.unwrap().requests == warmed {
        tokio::task::yield_now().await;
    }
    tokio::time::timeout(Duration::from_secs(30), other.shutdown())
        .await
        .expect("shutdown ends");
    let before = allowed.len();
    for t in tasks {
        let result = tokio::time::timeout(Duration::from_secs(30), t)
            .await
            .expect("every request is answered")
            .unwrap();
        match result {
            Ok(c) => {
                allowed.insert(c.event_id);
            }
            Err(Error::QuotaExceeded(d)) => assert_eq!(d.used, 10),
            // Requests that arrived after the drain find the database closed.
            Err(e) => assert_eq!(e.code(), "database_unavailable", "{e:?}"),
        }
    }
    assert!(allowed.len() > before, "the queued requests were committed");
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT id FROM usage_events WHERE kind = 'consume'")
            .fetch_all(engines[0].db().read())
            .await
            .unwrap();
    assert_eq!(stored.into_iter().collect::<HashSet<_>>(), allowed);
    assert!(engines[0]
        .verify_usage(false, "test")
        .await
        .unwrap()
        .is_empty());
}
