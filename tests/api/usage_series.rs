//! Usage over time: rollups kept in step with every usage event, equal to a recount after
//! random consumptions, releases, resets and plan changes; the series route and its failures.

use crate::helpers::new_user;
use crate::helpers::{staff_token, Backend, TestApp};
use crate::metering::meter;
use crate::on_both;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::Value;
use tollgate::domain::Role;
use tollgate::service::admin::Actor;
use tollgate::service::subscriptions::Effective;

const PLANS: &str = r#"
metrics = ["calls"]
[[plans]]
id = "free"
price = { amount = 0, interval = "month" }
quotas = { calls = { limit = 40, per = "day" } }
[[plans]]
id = "burst"
price = { amount = 500, interval = "month" }
stripe_price_ids = ["price_burst"]
quotas = { calls = { limit = 400, per = "day" } }
"#;

async fn get(app: &TestApp, path: &str, token: &str) -> (StatusCode, Value) {
    let res = app
        .http
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (res.status(), res.json().await.unwrap_or(Value::Null))
}

async fn scalar(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(app.engine.db().read())
        .await
        .unwrap()
}

fn sum(series: &Value, field: &str) -> i64 {
    series["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[field].as_i64().unwrap())
        .sum()
}

on_both!(rollups_equal_a_recount_after_random_usage);
async fn rollups_equal_a_recount_after_random_usage(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |s| s.argon2.memory_kib = 256).await else {
        return;
    };
    // Arrange
    app.engine.apply_catalog(PLANS, Some("test")).await.unwrap();
    let (admin, _) = app
        .engine
        .create_staff("ops@example.com", Role::Admin, None)
        .await
        .unwrap();
    let actor = Actor {
        user: admin,
        via: "test".into(),
    };
    let mut users = Vec::new();
    for i in 0..4 {
        users.push(new_user(&app, &format!("u{i}@example.com")).await.id);
    }
    let start = app.clock_now();

    // Act: random consumptions, releases, resets, plan changes, hours passing.
    let mut rng = StdRng::seed_from_u64(17);
    for _ in 0..150 {
        let user = &users[rng.gen_range(0..users.len())];
        match rng.gen_range(0..10) {
            0 => {
                let plan = ["free", "burst"][rng.gen_range(0..2)];
                let _ = app
                    .engine
                    .admin_change_plan(&actor, user, plan, Effective::Now, Some("test"))
                    .await;
            }
            1 => {
                let id: Option<String> = sqlx::query_scalar(
                    "SELECT MIN(id) FROM usage_events WHERE kind = 'consume' AND released = 0 AND user_id = $1",
                )
                .bind(user.as_str())
                .fetch_one(app.engine.db().read())
                .await
                .unwrap();
                if let Some(id) = id {
                    let _ = app.engine.release(user, Some(&id), None).await;
                }
            }
            2 => {
                let _ = app
                    .engine
                    .admin_reset_usage(&actor, user, "calls", Some("test"))
                    .await;
            }
            3 => app
                .clock
                .advance(chrono::Duration::hours(rng.gen_range(1..20))),
            _ => {
                let _ = meter(&app, user, "calls", rng.gen_range(1..4), None).await;
            }
        }
    }

    // Assert: every rollup row equals its recount from the events.
    let drifts = app
        .engine
        .verify_usage_rollups(false, "test")
        .await
        .unwrap();
    assert!(drifts.is_empty(), "{drifts:?}");
    assert!(
        scalar(
            &app,
            "SELECT COUNT(*) FROM usage_events WHERE kind = 'release'"
        )
        .await
            > 0
    );
    assert!(
        scalar(
            &app,
            "SELECT COUNT(*) FROM usage_events WHERE kind = 'reset'"
        )
        .await
            > 0
    );

    // The platform series shows what the events say, stacked by plan (signed in after the
    // clock moved, so that the token is fresh).
    let token = staff_token(&app, "root@example.com", Role::Admin).await;
    let from = start.date_naive();
    let to = app.clock_now().date_naive();
    let (s, platform) = get(
        &app,
        &format!("/v1/admin/usage/series?metric=calls&from={from}&to={to}"),
        &token,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{platform}");
    let consumed = scalar(
        &app,
        "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM usage_events WHERE kind = 'consume'",
    )
    .await;
    let released = -scalar(
        &app,
        "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM usage_events WHERE kind = 'release'",
    )
    .await;
    assert_eq!(sum(&platform, "consumed"), consumed);
    assert_eq!(sum(&platform, "released"), released);
    assert_eq!(sum(&platform, "net"), consumed - released);
    let stacked: i64 = platform["lines"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| l["net"].as_array().unwrap().iter())
        .map(|v| v.as_i64().unwrap())
        .sum();
    assert_eq!(stacked, consumed - released);
    let n = platform["buckets"].as_array().unwrap().len();
    assert_eq!(platform["rows"].as_array().unwrap().len(), n);

    // One user's series, per hour over two days.
    let user = users[0].as_str();
    let (s, one) = get(
        &app,
        &format!(
            "/v1/admin/usage/series?metric=calls&user_id={user}&from={}&to={}",
            to.pred_opt().unwrap(),
            to
        ),
        &token,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{one}");
    assert_eq!(one["grain"], "hour");
    assert_eq!(one["buckets"].as_array().unwrap().len(), 48);
    let since = tollgate::store::ms(
        to.pred_opt()
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc(),
    );
    assert_eq!(
        sum(&one, "consumed"),
        scalar(
            &app,
            &format!("SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM usage_events WHERE kind = 'consume' AND user_id = '{user}' AND at >= {since}")
        )
        .await
    );
}

on_both!(bad_ranges_are_refused_and_drifted_rollups_repaired);
async fn bad_ranges_are_refused_and_drifted_rollups_repaired(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |s| s.argon2.memory_kib = 256).await else {
        return;
    };
    app.engine.apply_catalog(PLANS, Some("test")).await.unwrap();
    let token = staff_token(&app, "root@example.com", Role::Support).await;
    let u = new_user(&app, "solo@example.com").await;
    for _ in 0..5 {
        meter(&app, &u.id, "calls", 2, None).await.unwrap();
    }
    for path in [
        "/v1/admin/usage/series?from=2026-03-10&to=2026-03-01",
        "/v1/admin/usage/series?from=2024-01-01&to=2026-01-01",
        "/v1/admin/usage/series?metric=nope",
    ] {
        let (s, body) = get(&app, path, &token).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {body}");
    }
    let (s, _) = get(
        &app,
        "/v1/admin/usage/series?user_id=usr_doesnotexist",
        &token,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, series) = get(&app, "/v1/admin/usage/series", &token).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(series["grain"], "day");
    assert_eq!(sum(&series, "consumed"), 10);

    // A lost update is reported, then repaired from the events.
    sqlx::query("UPDATE usage_daily SET amount = amount + 3")
        .execute(app.engine.db().write())
        .await
        .unwrap();
    let drifts = app
        .engine
        .verify_usage_rollups(false, "test")
        .await
        .unwrap();
    assert!(!drifts.is_empty());
    assert!(drifts.iter().all(|d| d.table == "usage_daily"));
    app.engine.verify_usage_rollups(true, "test").await.unwrap();
    assert!(app
        .engine
        .verify_usage_rollups(false, "test")
        .await
        .unwrap()
        .is_empty());
    let (_, series) = get(&app, "/v1/admin/usage/series", &token).await;
    assert_eq!(sum(&series, "consumed"), 10);
}

/// Rollup rows summed over their shards: the platform tables by (table, plan version, metric,
/// bucket, kind), the per-user table by (user number within its seed run, metric, day, kind).
async fn rollup_totals(
    app: &TestApp,
) -> std::collections::HashMap<(&'static str, String, String, i64, String), (i64, i64)> {
    use tollgate::store::usage_rollups::{stored, Rollup};
    let mut totals = std::collections::HashMap::new();
    for rollup in Rollup::ALL {
        for (owner, metric, bucket, kind, amount, events) in
            stored(app.engine.db().read(), rollup).await.unwrap()
        {
            // Seeded ids end with the user's number in its run.
            let owner = match rollup {
                Rollup::UserDaily => owner[owner.len() - 10..].to_owned(),
                _ => owner,
            };
            let t = totals
                .entry((rollup.table(), owner, metric, bucket, kind))
                .or_insert((0, 0));
            t.0 += amount;
            t.1 += events;
        }
    }
    totals
}

on_both!(the_bulk_seeder_leaves_the_rollups_the_triggers_would);
async fn the_bulk_seeder_leaves_the_rollups_the_triggers_would(backend: Backend) {
    use tollgate::service::seed::RollupUpkeep;
    let Some(app) = TestApp::spawn_with(backend, |s| s.argon2.memory_kib = 256).await else {
        return;
    };
    // Arrange: a small history through the per-row triggers.
    app.engine
        .seed_with(30, 900, 11, RollupUpkeep::Triggers, &|_, _, _| {})
        .await
        .unwrap();
    let by_triggers = rollup_totals(&app).await;
    assert!(by_triggers.len() > 30, "{}", by_triggers.len());

    // The same draws again would repeat the emails.
    sqlx::query("UPDATE users SET email = 'first.' || email WHERE role = 'user'")
        .execute(app.engine.db().write())
        .await
        .unwrap();

    // Act: the same draws again (new users and ids), with the set-based rollups.
    app.engine
        .seed_with(30, 900, 11, RollupUpkeep::Bulk, &|_, _, _| {})
        .await
        .unwrap();

    // Assert: every rollup row grew by exactly what the triggers had written.
    let both = rollup_totals(&app).await;
    assert_eq!(both.len(), by_triggers.len());
    for (key, (amount, events)) in &by_triggers {
        assert_eq!(both[key], (2 * amount, 2 * events), "{key:?}");
    }
    let drifts = app
        .engine
        .verify_usage_rollups(false, "test")
        .await
        .unwrap();
    assert!(drifts.is_empty(), "{drifts:?}");
    let counter_drifts = app.engine.verify_usage(false, "test").await.unwrap();
    assert!(counter_drifts.is_empty(), "{counter_drifts:?}");
    assert_eq!(
        scalar(&app, "SELECT COUNT(*) FROM usage_events").await,
        1800
    );

    // The trigger is back: an event recorded the usual way reaches the rollups.
    let metric = app.engine.catalog().await.unwrap().catalog.metrics[0].clone();
    let user = new_user(&app, "after-seed@example.com").await;
    meter(&app, &user.id, &metric, 1, None).await.unwrap();
    assert_eq!(
        scalar(&app, "SELECT CAST(SUM(events) AS BIGINT) FROM usage_hourly").await,
        1801
    );
    let drifts = app
        .engine
        .verify_usage_rollups(false, "test")
        .await
        .unwrap();
    assert!(drifts.is_empty(), "{drifts:?}");

    // A rollup that lost a row is caught.
    sqlx::query("DELETE FROM usage_daily WHERE day = (SELECT MIN(day) FROM usage_daily)")
        .execute(app.engine.db().write())
        .await
        .unwrap();
    let drifts = app
        .engine
        .verify_usage_rollups(false, "test")
        .await
        .unwrap();
    assert!(!drifts.is_empty());
}
