use crate::helpers::{new_user, Backend, TestApp};
use crate::on_both;
use chrono::{Duration, TimeZone, Utc};
use tollgate::domain::UserId;
use tollgate::service::metering::{Consumption, MeterRequest, Strategy};
use tollgate::service::subscriptions::Effective;
use tollgate::Error;

pub async fn meter(
    app: &TestApp,
    user: &UserId,
    metric: &str,
    amount: i64,
    key: Option<&str>,
) -> Result<Consumption, Error> {
    app.engine
        .check_and_consume(
            user,
            MeterRequest {
                metric,
                amount,
                idempotency_key: key,
                request_id: None,
            },
        )
        .await
}

async fn apply(app: &TestApp, file: &str) {
    let src =
        std::fs::read_to_string(format!("{}/examples/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    app.engine
        .apply_catalog(&src, Some("test"))
        .await
        .expect("example catalog applies");
}

/// A catalog whose `burst` plan allows exactly 100 units a day.
const HUNDRED: &str = r#"
metrics = ["calls"]
[[plans]]
id = "free"
price = { amount = 0, interval = "month" }
quotas = { calls = { limit = 1, per = "day" } }
[[plans]]
id = "burst"
price = { amount = 500, interval = "month" }
stripe_price_ids = ["price_burst"]
quotas = { calls = { limit = 100, per = "day" } }
"#;

on_both!(shipped_video_catalog_allows_exactly_the_limit_then_denies);
async fn shipped_video_catalog_allows_exactly_the_limit_then_denies(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let u = new_user(&app, "v@example.com").await;
    for i in 1..=3 {
        let c = meter(&app, &u.id, "videos", 1, None)
            .await
            .expect("within the free limit");
        assert_eq!((c.used, c.limit, c.remaining), (i, Some(3), Some(3 - i)));
    }
    let Error::QuotaExceeded(d) = meter(&app, &u.id, "videos", 1, None).await.unwrap_err() else {
        panic!("quota_exceeded expected")
    };
    assert_eq!(
        (d.limit, d.used, d.remaining, d.plan.as_str()),
        (3, 3, 0, "free")
    );
    assert_eq!(d.upgrade_to.as_deref(), Some("pro"));
    assert_eq!(
        d.resets_at,
        (app.clock_now().date_naive().succ_opt().unwrap())
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
    );

    app.engine
        .change_plan(&u.id, "pro", Effective::Now)
        .await
        .unwrap();
    let c = meter(&app, &u.id, "videos", 27, None)
        .await
        .expect("pro allows 30 a day, 3 already used");
    assert_eq!((c.used, c.remaining), (30, Some(0)));
    assert!(meter(&app, &u.id, "videos", 1, None).await.is_err());
    app.engine
        .change_plan(&u.id, "business", Effective::Now)
        .await
        .unwrap();
    assert_eq!(
        meter(&app, &u.id, "videos", 120, None)
            .await
            .unwrap()
            .remaining,
        Some(0)
    );
    assert_eq!(
        meter(&app, &u.id, "videos", 1, None)
            .await
            .unwrap_err()
            .code(),
        "quota_exceeded"
    );
    assert_eq!(
        meter(&app, &u.id, "minutes", 1, None)
            .await
            .unwrap_err()
            .code(),
        "unknown_metric"
    );
    assert_eq!(
        meter(&app, &u.id, "videos", 0, None)
            .await
            .unwrap_err()
            .code(),
        "validation_failed"
    );
}

on_both!(credit_catalog_spends_grants_and_never_goes_negative);
async fn credit_catalog_spends_grants_and_never_goes_negative(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    apply(&app, "credits.toml").await;
    let u = new_user(&app, "c@example.com").await;
    let c = meter(&app, &u.id, "generations", 3, None).await.unwrap();
    assert_eq!(c.credits, Some(2));
    let Error::InsufficientCredits(d) = meter(&app, &u.id, "generations", 3, None)
        .await
        .unwrap_err()
    else {
        panic!("insufficient_credits expected")
    };
    assert_eq!(
        (d.needed, d.balance, d.upgrade_to.as_deref()),
        (3, 2, Some("starter"))
    );
    assert_eq!(
        meter(&app, &u.id, "generations", 2, None)
            .await
            .unwrap()
            .credits,
        Some(0)
    );
    assert!(meter(&app, &u.id, "generations", 1, None).await.is_err());

    // Next billing period: a fresh allowance of 5; leftovers do not roll over on free.
    app.clock.advance(Duration::days(32));
    assert_eq!(
        meter(&app, &u.id, "generations", 1, None)
            .await
            .unwrap()
            .credits,
        Some(4)
    );
    let usage = app.engine.usage_summary(&u.id).await.unwrap();
    assert_eq!(usage.credits["generations"], 4);

    // Staff grants add to the balance; taking more than there is fails.
    assert_eq!(
        app.engine
            .grant_credits(&u.id, "generations", 10, Some("goodwill"))
            .await
            .unwrap(),
        14
    );
    assert_eq!(
        app.engine
            .grant_credits(&u.id, "generations", -20, None)
            .await
            .unwrap_err()
            .code(),
        "validation_failed"
    );
    assert_eq!(
        meter(&app, &u.id, "generations", 14, None)
            .await
            .unwrap()
            .credits,
        Some(0)
    );
    assert!(
        app.engine
            .verify_usage(false, "test")
            .await
            .unwrap()
            .is_empty(),
        "balances match their events"
    );
}

on_both!(rollover_credit_plans_keep_unused_credits);
async fn rollover_credit_plans_keep_unused_credits(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    apply(&app, "credits.toml").await;
    let u = new_user(&app, "agency@example.com").await;
    app.engine
        .change_plan(&u.id, "agency", Effective::Now)
        .await
        .unwrap();
    assert_eq!(
        meter(&app, &u.id, "generations", 100, None)
            .await
            .unwrap()
            .credits,
        Some(400)
    );
    app.clock.advance(Duration::days(32));
    assert_eq!(
        meter(&app, &u.id, "generations", 1, None)
            .await
            .unwrap()
            .credits,
        Some(899)
    );
}

on_both!(per_feature_monthly_catalog_counts_each_metric_apart);
async fn per_feature_monthly_catalog_counts_each_metric_apart(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    apply(&app, "job-search.toml").await;
    let u = new_user(&app, "job@example.com").await;
    for (metric, n) in [
        ("ats_scan", 2),
        ("resume_tailor", 3),
        ("cover_letter", 3),
        ("jd_parse", 5),
    ] {
        assert_eq!(
            meter(&app, &u.id, metric, n, None).await.unwrap().remaining,
            Some(0),
            "{metric}"
        );
        assert_eq!(
            meter(&app, &u.id, metric, 1, None)
                .await
                .unwrap_err()
                .code(),
            "quota_exceeded",
            "{metric}"
        );
    }
    app.engine
        .change_plan(&u.id, "elite", Effective::Now)
        .await
        .unwrap();
    let c = meter(&app, &u.id, "ats_scan", 500, None).await.unwrap();
    assert!(c.unlimited && c.limit.is_none() && c.remaining.is_none());
}

async fn two_hundred_against_a_hundred(app: &TestApp) {
    app.engine
        .apply_catalog(HUNDRED, Some("test"))
        .await
        .unwrap();
    let u = new_user(app, "burst@example.com").await;
    app.engine
        .change_plan(&u.id, "burst", Effective::Now)
        .await
        .unwrap();
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let engine = app.engine.clone();
            let id = u.id.clone();
            tokio::spawn(async move {
                engine
                    .check_and_consume(
                        &id,
                        MeterRequest {
                            metric: "calls",
                            amount: 1,
                            idempotency_key: None,
                            request_id: None,
                        },
                    )
                    .await
            })
        })
        .collect();
    let mut allowed = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => allowed += 1,
            Err(e) => assert_eq!(e.code(), "quota_exceeded", "{e:?}"),
        }
    }
    assert_eq!(allowed, 100);
    let events: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM usage_events WHERE kind = 'consume'")
            .fetch_one(app.engine.db().read())
            .await
            .unwrap();
    assert_eq!(
        events, 100,
        "every allowed consumption is recorded, and only those"
    );
    assert!(app
        .engine
        .verify_usage(false, "test")
        .await
        .unwrap()
        .is_empty());
}

on_both!(concurrent_consumptions_never_oversell);
async fn concurrent_consumptions_never_oversell(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    two_hundred_against_a_hundred(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_consumptions_never_oversell_with_the_database_strategy_on_sqlite() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| s.metering = Strategy::Database)
        .await
        .unwrap();
    assert_eq!(app.engine.meter_strategy(), Strategy::Database);
    two_hundred_against_a_hundred(&app).await;
}

/// Two engines with their own pools and state on one PostgreSQL database behave as two
/// server processes: the limit holds across them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_sharing_postgres_never_oversell() {
    if crate::helpers::postgres_admin_url().is_none() {
        return;
    }
    let app = TestApp::spawn(Backend::Postgres).await.unwrap();
    let other = tollgate::Engine::start(crate::helpers::test_settings(&app.db.url))
        .await
        .unwrap();
    app.engine
        .apply_catalog(HUNDRED, Some("test"))
        .await
        .unwrap();
    other.refresh_catalog().await.unwrap();
    let u = new_user(&app, "two@example.com").await;
    app.engine
        .change_plan(&u.id, "burst", Effective::Now)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let engine = if i % 2 == 0 {
            app.engine.clone()
        } else {
            other.clone()
        };
        let id = u.id.clone();
        tasks.push(tokio::spawn(async move {
            engine
                .check_and_consume(
                    &id,
                    MeterRequest {
                        metric: "calls",
                        amount: 1,
                        idempotency_key: None,
                        request_id: None,
                    },
                )
                .await
        }));
    }
    let mut allowed = 0;
    for t in tasks {
        if t.await.unwrap().is_ok() {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 100);
    other.shutdown().await;
}

on_both!(idempotent_retries_return_the_first_answer_and_consume_once);
async fn idempotent_retries_return_the_first_answer_and_consume_once(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let u = new_user(&app, "idem@example.com").await;
    let first = meter(&app, &u.id, "videos", 1, Some("job-42"))
        .await
        .unwrap();
    let again = meter(&app, &u.id, "videos", 1, Some("job-42"))
        .await
        .unwrap();
    assert!(again.replayed && !first.replayed);
    assert_eq!(
        (again.event_id.as_str(), again.used),
        (first.event_id.as_str(), 1)
    );

    // Concurrent retries of one key: one consumption. Many keys (a customer each, as the free
    // plan allows three videos a day), so that a retry reading the database while its first
    // commits and leaves memory is likely to happen at least once.
    const KEYS: usize = 30;
    const RETRIES: usize = 8;
    let mut users = Vec::new();
    for k in 0..KEYS {
        users.push(new_user(&app, &format!("idem{k}@example.com")).await.id);
    }
    let tasks: Vec<_> = (0..KEYS * RETRIES)
        .map(|i| {
            let engine = app.engine.clone();
            let id = users[i % KEYS].clone();
            tokio::spawn(async move {
                let c = engine
                    .check_and_consume(
                        &id,
                        MeterRequest {
                            metric: "videos",
                            amount: 1,
                            idempotency_key: Some("job-43"),
                            request_id: None,
                        },
                    )
                    .await;
                (id, c.unwrap().event_id)
            })
        })
        .collect();
    let mut events: std::collections::HashMap<_, std::collections::HashSet<String>> =
        Default::default();
    for t in tasks {
        let (id, event) = t.await.unwrap();
        events.entry(id).or_default().insert(event);
    }
    for id in &users {
        assert_eq!(events[id].len(), 1, "{id} consumed one key more than once");
        assert_eq!(
            app.engine.usage_summary(id).await.unwrap().metrics["videos"].used,
            1
        );
    }
}

on_both!(release_gives_back_a_failed_consumption_once);
async fn release_gives_back_a_failed_consumption_once(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let u = new_user(&app, "rel@example.com").await;
    for _ in 0..3 {
        meter(&app, &u.id, "videos", 1, None).await.unwrap();
    }
    let last = meter(&app, &u.id, "videos", 1, Some("k")).await;
    assert!(last.is_err());

    let events: Vec<String> =
        sqlx::query_scalar("SELECT id FROM usage_events WHERE kind = 'consume' ORDER BY id")
            .fetch_all(app.engine.db().read())
            .await
            .unwrap();
    let released = app
        .engine
        .release(&u.id, Some(&events[0]), None)
        .await
        .unwrap();
    assert_eq!(released.remaining, Some(1));
    assert_eq!(
        app.engine
            .release(&u.id, Some(&events[0]), None)
            .await
            .unwrap_err()
            .code(),
        "already_released"
    );
    let other = new_user(&app, "other@example.com").await;
    assert_eq!(
        app.engine
            .release(&other.id, Some(&events[1]), None)
            .await
            .unwrap_err()
            .code(),
        "not_found"
    );
    meter(&app, &u.id, "videos", 1, None)
        .await
        .expect("the released unit can be used again");
    assert!(app
        .engine
        .verify_usage(false, "test")
        .await
        .unwrap()
        .is_empty());
}

on_both!(windows_roll_over_by_the_injected_clock);
async fn windows_roll_over_by_the_injected_clock(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 1, 31, 23, 0, 0).unwrap());
    apply(&app, "job-search.toml").await;
    let u = new_user(&app, "roll@example.com").await;
    meter(&app, &u.id, "ats_scan", 2, None).await.unwrap();
    assert!(meter(&app, &u.id, "ats_scan", 1, None).await.is_err());
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap());
    let c = meter(&app, &u.id, "ats_scan", 1, None)
        .await
        .expect("a new calendar month");
    assert_eq!(
        c.resets_at,
        Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
    );

    // Daily quota of the shipped catalog.
    apply(&app, "plans.toml").await;
    let d = new_user(&app, "day@example.com").await;
    meter(&app, &d.id, "videos", 3, None).await.unwrap();
    app.clock
        .advance(Duration::hours(23) + Duration::minutes(59));
    assert!(meter(&app, &d.id, "videos", 1, None).await.is_err());
    app.clock.advance(Duration::minutes(1));
    assert!(meter(&app, &d.id, "videos", 1, None).await.is_ok());

    // A billing-period quota follows the subscription's own period.
    let bp = r#"
metrics = ["runs"]
[[plans]]
id = "free"
price = { amount = 0, interval = "month" }
quotas = { runs = { limit = 2, per = "billing_period" } }
"#;
    app.engine.apply_catalog(bp, None).await.unwrap();
    let b = new_user(&app, "bp@example.com").await;
    let start = app
        .engine
        .subscription(&b.id)
        .await
        .unwrap()
        .current_period_start;
    meter(&app, &b.id, "runs", 2, None).await.unwrap();
    app.clock.set(start + Duration::days(27));
    assert!(
        meter(&app, &b.id, "runs", 1, None).await.is_err(),
        "same period (Feb has 28 days)"
    );
    app.clock.set(start + Duration::days(28));
    assert!(
        meter(&app, &b.id, "runs", 1, None).await.is_ok(),
        "the next period began on the anniversary"
    );
}

on_both!(downgrade_at_period_end_keeps_limits_until_then);
async fn downgrade_at_period_end_keeps_limits_until_then(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let u = new_user(&app, "down@example.com").await;
    app.engine
        .change_plan(&u.id, "business", Effective::Now)
        .await
        .unwrap();
    let sub = app
        .engine
        .change_plan(&u.id, "free", Effective::PeriodEnd)
        .await
        .unwrap();
    assert_eq!(sub.plan_id, "business");
    assert_eq!(sub.scheduled_plan.as_deref(), Some("free@1"));
    meter(&app, &u.id, "videos", 100, None)
        .await
        .expect("business limits until the period ends");
    app.clock.set(sub.current_period_end + Duration::seconds(1));
    let after = app.engine.subscription(&u.id).await.unwrap();
    assert_eq!(
        (after.plan_id.as_str(), after.scheduled_plan.as_deref()),
        ("free", None)
    );
    meter(&app, &u.id, "videos", 3, None).await.unwrap();
    assert_eq!(
        meter(&app, &u.id, "videos", 1, None)
            .await
            .unwrap_err()
            .code(),
        "quota_exceeded"
    );
    assert_eq!(
        app.engine
            .change_plan(&u.id, "platinum", Effective::Now)
            .await
            .unwrap_err()
            .code(),
        "unknown_plan"
    );
}

on_both!(upgrading_a_credit_plan_mid_period_grants_the_difference);
async fn upgrading_a_credit_plan_mid_period_grants_the_difference(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    apply(&app, "credits.toml").await;
    let u = new_user(&app, "upc@example.com").await;
    meter(&app, &u.id, "generations", 4, None).await.unwrap();
    app.engine
        .change_plan(&u.id, "starter", Effective::Now)
        .await
        .unwrap();
    // 1 left of free's 5, plus starter's 20 - 5.
    assert_eq!(
        app.engine.usage_summary(&u.id).await.unwrap().credits["generations"],
        16
    );
    app.engine
        .change_plan(&u.id, "free", Effective::Now)
        .await
        .unwrap();
    assert_eq!(
        app.engine.usage_summary(&u.id).await.unwrap().credits["generations"],
        16,
        "a downgrade keeps granted credits"
    );
    assert!(app
        .engine
        .verify_usage(false, "test")
        .await
        .unwrap()
        .is_empty());
}

on_both!(grandfathered_subscribers_keep_their_version_until_migrated);
async fn grandfathered_subscribers_keep_their_version_until_migrated(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let old = new_user(&app, "old@example.com").await;
    app.engine
        .change_plan(&old.id, "pro", Effective::Now)
        .await
        .unwrap();

    let src = std::fs::read_to_string(format!(
        "{}/examples/plans.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let cheaper = src.replace(
        "quotas = { videos = { limit = 30, per = \"day\" } }",
        "quotas = { videos = { limit = 20, per = \"day\" } }",
    );
    let diff = app.engine.diff_catalog(&cheaper).await.unwrap();
    assert_eq!(diff.len(), 1);
    assert_eq!(
        (
            diff[0].plan.as_str(),
            diff[0].change.as_str(),
            diff[0].subscribers
        ),
        ("pro", "quota videos: 30/day -> 20/day", 1)
    );
    let outcome = app.engine.apply_catalog(&cheaper, None).await.unwrap();
    assert_eq!(outcome.new_plan_versions, ["pro@2"]);
    assert!(
        !app.engine
            .apply_catalog(&cheaper, None)
            .await
            .unwrap()
            .changed,
        "the same file twice is one version"
    );

    let new = new_user(&app, "new@example.com").await;
    app.engine
        .change_plan(&new.id, "pro", Effective::Now)
        .await
        .unwrap();
    assert_eq!(
        meter(&app, &old.id, "videos", 30, None)
            .await
            .unwrap()
            .limit,
        Some(30),
        "pro@1 is kept"
    );
    assert_eq!(
        meter(&app, &new.id, "videos", 21, None)
            .await
            .unwrap_err()
            .code(),
        "quota_exceeded"
    );

    assert_eq!(
        app.engine
            .migrate_plan_version("pro@1", "pro@2")
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        app.engine.subscription(&old.id).await.unwrap().plan,
        "pro@2"
    );
    assert_eq!(
        app.engine.usage_summary(&old.id).await.unwrap().metrics["videos"].limit,
        Some(20)
    );
    assert_eq!(
        app.engine
            .migrate_plan_version("pro@9", "pro@2")
            .await
            .unwrap_err()
            .code(),
        "unknown_plan"
    );
    let audited: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'plans.migrate'")
            .fetch_one(app.engine.db().read())
            .await
            .unwrap();
    assert_eq!(audited, 1);
}

on_both!(verify_reports_a_corrupted_counter_and_repairs_it);
async fn verify_reports_a_corrupted_counter_and_repairs_it(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let u = new_user(&app, "drift@example.com").await;
    meter(&app, &u.id, "videos", 2, None).await.unwrap();
    assert!(app
        .engine
        .verify_usage(false, "test")
        .await
        .unwrap()
        .is_empty());
    sqlx::query("UPDATE usage_counters SET used = 0")
        .execute(app.engine.db().write())
        .await
        .unwrap();
    let drift = app.engine.verify_usage(false, "test").await.unwrap();
    assert_eq!(drift.len(), 1);
    assert_eq!(
        (drift[0].stored, drift[0].expected, drift[0].metric.as_str()),
        (0, 2, "videos")
    );
    app.engine.verify_usage(true, "test").await.unwrap();
    assert!(app
        .engine
        .verify_usage(false, "test")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        app.engine.usage_summary(&u.id).await.unwrap().metrics["videos"].used,
        2
    );
}

on_both!(entitlements_name_the_cheapest_plan_with_the_feature);
async fn entitlements_name_the_cheapest_plan_with_the_feature(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let u = new_user(&app, "feat@example.com").await;
    let Error::FeatureNotInPlan(d) = app.engine.require_feature(&u.id, "blog").await.unwrap_err()
    else {
        panic!()
    };
    assert_eq!(
        (d.plan.as_str(), d.upgrade_to.as_deref()),
        ("free", Some("business"))
    );
    assert_eq!(
        app.engine
            .entitlement(&u.id, "vision")
            .await
            .unwrap()
            .upgrade_to
            .as_deref(),
        Some("pro")
    );
    app.engine
        .change_plan(&u.id, "pro", Effective::Now)
        .await
        .unwrap();
    app.engine.require_feature(&u.id, "qa").await.unwrap();
    assert_eq!(
        app.engine
            .entitlement(&u.id, "teleport")
            .await
            .unwrap_err()
            .code(),
        "validation_failed"
    );
}

on_both!(rate_limits_follow_the_plan_and_can_be_cleared);
async fn rate_limits_follow_the_plan_and_can_be_cleared(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 5, 1, 10, 0, 0).unwrap());
    let u = new_user(&app, "rl@example.com").await;
    for i in 0..10 {
        let d = app
            .engine
            .check_rate_limit(&u.id, "api")
            .await
            .unwrap()
            .unwrap();
        assert_eq!((d.limit, d.remaining), (10, 9 - i));
    }
    let Error::RateLimited(d) = app.engine.check_rate_limit(&u.id, "api").await.unwrap_err() else {
        panic!()
    };
    assert_eq!((d.limit, d.retry_after_s), (10, 3600));
    app.engine.clear_rate_limits(&u.id).await;
    assert!(app.engine.check_rate_limit(&u.id, "api").await.is_ok());
    app.clock.advance(Duration::hours(1));
    assert_eq!(
        app.engine
            .check_rate_limit(&u.id, "api")
            .await
            .unwrap()
            .unwrap()
            .remaining,
        9
    );
    for _ in 0..20 {
        app.engine
            .check_ip_rate_limit("register", "198.51.100.1")
            .await
            .unwrap();
    }
    assert!(app
        .engine
        .check_ip_rate_limit("register", "198.51.100.1")
        .await
        .is_err());
    assert!(app
        .engine
        .check_ip_rate_limit("register", "198.51.100.2")
        .await
        .is_ok());
}

on_both!(counters_of_ended_windows_are_dropped_from_memory);
async fn counters_of_ended_windows_are_dropped_from_memory(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    if app.engine.meter_strategy() != Strategy::Memory {
        // The database strategy holds no counters.
        assert_eq!(app.engine.gauges().meter_counters, None);
        return;
    }
    app.engine
        .apply_catalog(HUNDRED, Some("test"))
        .await
        .unwrap();
    let a = new_user(&app, "day-one@example.com").await;
    let b = new_user(&app, "day-three@example.com").await;
    meter(&app, &a.id, "calls", 1, None).await.unwrap();
    assert_eq!(app.engine.gauges().meter_counters, Some(1));
    // Two days on, `a`'s daily window is over: the next counter loaded drops it.
    app.clock.advance(Duration::days(2));
    meter(&app, &b.id, "calls", 1, None).await.unwrap();
    assert_eq!(app.engine.gauges().meter_counters, Some(1));
    // `a` starts a new window, counted from the database (nothing there yet for it).
    let c = meter(&app, &a.id, "calls", 1, None).await.unwrap();
    assert_eq!((c.used, c.limit), (1, Some(1)));
    assert_eq!(app.engine.gauges().meter_counters, Some(2));
    // Its first window's usage is still in the database.
    assert!(app
        .engine
        .verify_usage(false, "test")
        .await
        .unwrap()
        .is_empty());
}
