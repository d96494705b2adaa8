//! The home figures: counts kept in step with every change, equal to a recount after random
//! operations, and `usage verify`'s check and repair when they drift.

use crate::helpers::register;
use crate::helpers::{staff_token, Backend, TestApp};
use crate::on_both;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tollgate::domain::{Role, UserId};
use tollgate::service::admin::Actor;
use tollgate::service::subscriptions::Effective;

async fn stats(app: &TestApp, token: &str) -> Value {
    let res = app
        .http
        .get(app.url("/v1/admin/stats"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

async fn scalar(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(app.engine.db().read())
        .await
        .unwrap()
}

on_both!(home_counts_equal_a_recount_after_random_operations);
async fn home_counts_equal_a_recount_after_random_operations(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |s| s.argon2.memory_kib = 256).await else {
        return;
    };
    // Arrange: seeded users and events, a few registered users with keys, an admin.
    let (admin, _) = app
        .engine
        .create_staff("ops@example.com", Role::Admin, None)
        .await
        .unwrap();
    let actor = Actor {
        user: admin,
        via: "test".into(),
    };
    app.engine.seed(40, 120, 3, &|_, _, _| {}).await.unwrap();
    let mut people = Vec::new();
    for i in 0..6 {
        let email = format!("person{i}@example.com");
        people.push((email.clone(), register(&app, &email).await));
    }

    // Act: random changes of every kind the figures count.
    let mut rng = StdRng::seed_from_u64(11);
    for step in 0..80 {
        let (email, who) = &people[rng.gen_range(0..people.len())];
        let id = UserId::parse(&who.user_id).unwrap();
        let r = Some("random operation");
        match rng.gen_range(0..9) {
            0 => {
                let _ = app.engine.admin_suspend(&actor, &id, r).await;
            }
            1 => {
                let _ = app.engine.admin_reactivate(&actor, &id, r).await;
            }
            2 => {
                let plan = ["free", "pro", "business"][rng.gen_range(0..3)];
                let _ = app
                    .engine
                    .admin_change_plan(&actor, &id, plan, Effective::Now, r)
                    .await;
            }
            3 => {
                let role = [Role::User, Role::Support, Role::Finance][rng.gen_range(0..3)];
                let _ = app.engine.admin_set_role(&actor, email, role, r).await;
            }
            4 if step % 5 == 0 => {
                let _ = app.engine.admin_delete_user(&actor, &id, r).await;
            }
            5 => {
                let email = format!("late{step}@example.com");
                people.push((email.clone(), register(&app, &email).await));
            }
            6 => app
                .clock
                .advance(chrono::Duration::hours(rng.gen_range(1..30))),
            _ => {
                // Consumptions; past the plan's quota or rate limit they become refusals.
                app.http
                    .post(app.url("/v1/meter"))
                    .bearer_auth(&who.key)
                    .json(&json!({"metric": "videos"}))
                    .send()
                    .await
                    .unwrap();
            }
        }
    }
    // Refusals are recorded off the request path: wait until they are all in.
    let mut refusals = -1;
    for _ in 0..50 {
        let n = scalar(&app, "SELECT COUNT(*) FROM decisions").await;
        if n == refusals {
            break;
        }
        refusals = n;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // Assert: every stored figure equals its recount, and the route shows the recount.
    let drifts = app.engine.verify_stats(false, "test").await.unwrap();
    assert!(drifts.is_empty(), "{drifts:?}");
    // Signed in after the clock moved, so that the token is fresh; the new account counts too.
    let token = staff_token(&app, "root@example.com", Role::Admin).await;
    let s = stats(&app, &token).await;
    assert_eq!(
        s["users_total"],
        scalar(&app, "SELECT COUNT(*) FROM users").await
    );
    assert_eq!(
        s["users_suspended"],
        scalar(
            &app,
            "SELECT COUNT(*) FROM users WHERE status = 'suspended'"
        )
        .await
    );
    let per_plan: i64 = s["users_per_plan"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["count"].as_i64().unwrap())
        .sum();
    assert_eq!(
        per_plan,
        scalar(&app, "SELECT COUNT(*) FROM users WHERE status <> 'deleted'").await
    );
    let staff: i64 = s["users_per_role"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] != "user")
        .map(|c| c["count"].as_i64().unwrap())
        .sum();
    assert_eq!(
        staff,
        scalar(
            &app,
            "SELECT COUNT(*) FROM users WHERE role <> 'user' AND status <> 'deleted'"
        )
        .await
    );
    let today = tollgate::store::ms(app.clock_now()) / 86_400_000 * 86_400_000;
    let refused_today: i64 = s["refusals_today"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["count"].as_i64().unwrap())
        .sum();
    assert_eq!(
        refused_today,
        scalar(
            &app,
            &format!("SELECT COUNT(*) FROM decisions WHERE at >= {today}")
        )
        .await
    );
    let active: i64 = s["active_users_per_day"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["count"].as_i64().unwrap())
        .sum();
    assert!(active > 0, "{s}");
}

on_both!(drifted_counts_are_reported_and_repaired);
async fn drifted_counts_are_reported_and_repaired(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |s| s.argon2.memory_kib = 256).await else {
        return;
    };
    let token = staff_token(&app, "root@example.com", Role::Admin).await;
    app.engine.seed(25, 50, 5, &|_, _, _| {}).await.unwrap();
    let before = stats(&app, &token).await;
    assert!(app
        .engine
        .verify_stats(false, "test")
        .await
        .unwrap()
        .is_empty());

    // A lost update and a lost active day, as a bug or a hand edit would leave them.
    let db = app.engine.db().write();
    // One row of the count: on PostgreSQL a count is spread over several shard rows.
    sqlx::query(
        "UPDATE stat_counts SET count = count + 5 WHERE (stat, key, day, shard) IN (
           SELECT stat, key, day, shard FROM stat_counts
           WHERE stat = 'users_status' AND key = 'active' LIMIT 1)",
    )
    .execute(db)
    .await
    .unwrap();
    sqlx::query(
        "DELETE FROM user_active_days WHERE user_id = (SELECT MIN(user_id) FROM user_active_days)",
    )
    .execute(db)
    .await
    .unwrap();
    assert_ne!(
        stats(&app, &token).await["users_active"],
        before["users_active"]
    );

    let drifts = app.engine.verify_stats(false, "test").await.unwrap();
    let status = drifts
        .iter()
        .find(|d| d.stat == "users_status")
        .expect("the status count drifted");
    assert_eq!(status.stored - status.expected, 5);
    assert!(drifts
        .iter()
        .any(|d| d.stat == "user_active_days" && d.key == "missing"));

    let repaired = app.engine.verify_stats(true, "test").await.unwrap();
    assert_eq!(repaired, drifts);
    assert!(app
        .engine
        .verify_stats(false, "test")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(stats(&app, &token).await, before);
    let audit = app
        .engine
        .audit_log(&tollgate::service::audit::AuditFilter {
            action: Some("stats.repair".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
}
