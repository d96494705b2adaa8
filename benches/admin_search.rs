//! The back office's Home and Users screens at scale: seeds BENCH_USERS users (1,000,000 by
//! default) and BENCH_EVENTS consumptions (2,000,000), then reports the p50/p95 of the home
//! figures (service call and `GET /v1/admin/stats` over HTTP, 100 ms budget), of a page, each
//! kind of search and a user's detail (50 ms budget), and the Usage screen's platform chart
//! over 90 days (200 ms budget), against their budget and against a primary-key lookup
//! measured in the same run.
//!
//! `cargo bench --no-default-features --bench admin_search` (SQLite), or with
//! `BENCH_DATABASE_URL=postgres://…` (an empty database; TOLLGATE_SECRET not needed).

mod common;

use common::percentile;
use std::time::Instant;
use tollgate::service::admin::{Actor, UserQuery, UserSort};
use tollgate::service::usage_series::UsageSeriesQuery;

const BUDGET_MS: f64 = 50.0;
const HOME_BUDGET_MS: f64 = 100.0;
const CHART_BUDGET_MS: f64 = 200.0;

fn main() {
    common::run(bench());
}

async fn bench() {
    let users: u64 = common::env_or("BENCH_USERS", 1_000_000);
    let rounds: usize = common::env_or("BENCH_ROUNDS", 200);
    let events: u64 = common::env_or("BENCH_EVENTS", 2_000_000);
    let dir = tempfile::tempdir().unwrap();
    let url = common::database_url(&dir);
    let engine = common::start_engine(&url).await;
    let backend = common::backend(&url);

    // A database seeded by an earlier run is used as it is.
    let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(engine.db().read())
        .await
        .unwrap();
    let existing = existing as u64;
    let existing_events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM usage_events")
        .fetch_one(engine.db().read())
        .await
        .unwrap();
    let add_users = users.saturating_sub(existing);
    let add_events = events.saturating_sub(existing_events as u64);
    if add_users > 0 || add_events > 0 {
        let started = Instant::now();
        engine
            .seed(add_users, add_events, 42, &|what, done, total| {
                if done == total || done % 100_000 == 0 {
                    eprintln!("seeding {what}: {done}/{total}");
                }
            })
            .await
            .unwrap();
        let took = started.elapsed().as_secs_f64();
        println!("{backend}: seeded {add_users} users and {add_events} events in {took:.0} s");
    }
    // A settled database, as autovacuum keeps it: statistics and the visibility map.
    if backend == "PostgreSQL" {
        sqlx::query("VACUUM ANALYZE")
            .execute(engine.db().write())
            .await
            .unwrap();
    }

    let (admin, _) = engine
        .create_staff(
            "bench-admin@example.com",
            tollgate::domain::Role::Admin,
            Some("bench-password"),
        )
        .await
        .unwrap();
    let actor = Actor {
        user: admin,
        via: "bench".into(),
    };

    // Reference: the cheapest query there is, a primary-key lookup, in the same run.
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT id FROM users ORDER BY created_at LIMIT 1000")
            .fetch_all(engine.db().read())
            .await
            .unwrap();
    let mut reference = Vec::new();
    for i in 0..rounds {
        let id = tollgate::domain::UserId::parse(&ids[i % ids.len()]).unwrap();
        let t = Instant::now();
        engine.user(&id).await.unwrap();
        reference.push(t.elapsed());
    }
    let ref_p95 = percentile(&mut reference, 0.95);

    let first = engine
        .admin_list_users(
            &actor,
            &UserQuery {
                limit: Some(50),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let deep_cursor = {
        let mut cursor = first.next_cursor.clone();
        for _ in 0..20 {
            let p = engine
                .admin_list_users(
                    &actor,
                    &UserQuery {
                        limit: Some(200),
                        cursor: cursor.clone(),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            cursor = p.next_cursor;
        }
        cursor
    };
    let cases: Vec<(&str, UserQuery)> = vec![
        (
            "first page (newest 50)",
            UserQuery {
                limit: Some(50),
                ..Default::default()
            },
        ),
        (
            "page 4,000 rows deep",
            UserQuery {
                limit: Some(50),
                cursor: deep_cursor,
                ..Default::default()
            },
        ),
        (
            "email prefix `ada.lovelace1`",
            UserQuery {
                q: Some("ada.lovelace1".into()),
                limit: Some(50),
                sort: Some(UserSort::EmailAsc),
                ..Default::default()
            },
        ),
        (
            "exact email",
            UserQuery {
                q: Some("ada.lovelace100@example.com".into()),
                limit: Some(50),
                ..Default::default()
            },
        ),
        (
            "substring `velace12`",
            UserQuery {
                q: Some("velace12".into()),
                limit: Some(50),
                ..Default::default()
            },
        ),
        (
            "filter plan=business",
            UserQuery {
                plan: Some("business".into()),
                limit: Some(50),
                ..Default::default()
            },
        ),
        (
            "filter status=suspended",
            UserQuery {
                status: Some(tollgate::domain::UserStatus::Suspended),
                limit: Some(50),
                ..Default::default()
            },
        ),
        (
            "substring + plan=pro",
            UserQuery {
                q: Some("hopper".into()),
                plan: Some("pro".into()),
                limit: Some(50),
                ..Default::default()
            },
        ),
    ];
    println!("{backend}, {users} users, {rounds} rounds each; reference (primary-key lookup) p95 {ref_p95:.2} ms");
    println!(
        "{:<32} {:>9} {:>9} {:>10} {:>12} {:>10}",
        "query", "p50 ms", "p95 ms", "p95/50ms", "p95/ref", "total"
    );
    let mut worst: f64 = 0.0;
    for (name, q) in cases {
        let mut samples = Vec::with_capacity(rounds);
        let mut total = 0;
        for _ in 0..rounds {
            let t = Instant::now();
            let page = engine.admin_list_users(&actor, &q).await.unwrap();
            samples.push(t.elapsed());
            total = page.total;
        }
        let p50 = percentile(&mut samples, 0.5);
        let p95 = percentile(&mut samples, 0.95);
        worst = worst.max(p95);
        println!(
            "{name:<32} {p50:>9.2} {p95:>9.2} {:>10.2} {:>12.1} {total:>10}",
            p95 / BUDGET_MS,
            p95 / ref_p95
        );
    }
    let detail_id = tollgate::domain::UserId::parse(&ids[ids.len() / 2]).unwrap();
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        engine.admin_user_detail(&actor, &detail_id).await.unwrap();
        samples.push(t.elapsed());
    }
    let (p50, p95) = (
        percentile(&mut samples, 0.5),
        percentile(&mut samples, 0.95),
    );
    worst = worst.max(p95);
    println!(
        "{:<32} {p50:>9.2} {p95:>9.2} {:>10.2} {:>12.1} {:>10}",
        "user detail",
        p95 / BUDGET_MS,
        p95 / ref_p95,
        1
    );
    println!(
        "worst p95: {worst:.2} ms = {:.2} of the 50 ms budget",
        worst / BUDGET_MS
    );

    // Home: the console command's service call, and the same figures over HTTP.
    let mut samples = Vec::with_capacity(rounds);
    let mut total = 0;
    for _ in 0..rounds {
        let t = Instant::now();
        let s = engine.admin_stats(&actor, 30).await.unwrap();
        samples.push(t.elapsed());
        total = s.users_total;
    }
    let home = (
        percentile(&mut samples, 0.5),
        percentile(&mut samples, 0.95),
    );
    let addr = common::serve(tollgate::http::router(engine.clone())).await;
    let http = reqwest::Client::new();
    let token = common::sign_in(addr, "bench-admin@example.com", "bench-password").await;
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        let res = http
            .get(format!("http://{addr}/v1/admin/stats"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{}", res.status());
        res.bytes().await.unwrap();
        samples.push(t.elapsed());
    }
    let over_http = (
        percentile(&mut samples, 0.5),
        percentile(&mut samples, 0.95),
    );
    println!(
        "{:<32} {:>9} {:>9} {:>10} {:>12} {:>10}",
        "home figures", "p50 ms", "p95 ms", "p95/100ms", "p95/ref", "users"
    );
    for (name, (p50, p95)) in [
        ("admin_stats (console command)", home),
        ("GET /v1/admin/stats (HTTP)", over_http),
    ] {
        println!(
            "{name:<32} {p50:>9.2} {p95:>9.2} {:>10.2} {:>12.1} {total:>10}",
            p95 / HOME_BUDGET_MS,
            p95 / ref_p95
        );
    }

    // Usage screen: the platform chart over 90 days (issue budget 200 ms at 10,000,000 events;
    // run with BENCH_EVENTS=10000000 for that figure).
    let today = chrono::Utc::now().date_naive();
    let chart = UsageSeriesQuery {
        from: Some(today - chrono::Duration::days(89)),
        to: Some(today),
        ..Default::default()
    };
    let mut samples = Vec::with_capacity(rounds);
    let mut consumed = 0;
    for _ in 0..rounds {
        let t = Instant::now();
        let s = engine.admin_usage_series(&actor, &chart).await.unwrap();
        samples.push(t.elapsed());
        consumed = s.rows.iter().map(|r| r.consumed).sum::<i64>();
    }
    let (p50, p95) = (
        percentile(&mut samples, 0.5),
        percentile(&mut samples, 0.95),
    );
    println!(
        "{:<32} {:>9} {:>9} {:>10} {:>12} {:>10}",
        "usage chart", "p50 ms", "p95 ms", "p95/200ms", "p95/ref", "consumed"
    );
    println!(
        "{:<32} {p50:>9.2} {p95:>9.2} {:>10.2} {:>12.1} {consumed:>10}",
        "platform, 90 days, by plan",
        p95 / CHART_BUDGET_MS,
        p95 / ref_p95
    );
    engine.shutdown().await;
}
