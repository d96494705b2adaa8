//! Back-office search at scale: seeds BENCH_USERS users (1,000,000 by default) and reports the
//! p50/p95 of a page and of each kind of search, against the 50 ms budget and against a
//! primary-key lookup measured in the same run.
//!
//! `cargo bench --no-default-features --bench admin_search` (SQLite), or with
//! `BENCH_DATABASE_URL=postgres://…` (an empty database; TOLLGATE_SECRET not needed).

mod common;

use common::percentile;
use std::time::Instant;
use tollgate::service::admin::{Actor, UserQuery, UserSort};

const BUDGET_MS: f64 = 50.0;

fn main() {
    common::run(bench());
}

async fn bench() {
    let users: u64 = common::env_or("BENCH_USERS", 1_000_000);
    let rounds: usize = common::env_or("BENCH_ROUNDS", 200);
    let dir = tempfile::tempdir().unwrap();
    let url = common::database_url(&dir);
    let engine = common::start_engine(&url).await;
    let backend = if url.starts_with("postgres") {
        "PostgreSQL"
    } else {
        "SQLite"
    };

    // A database seeded by an earlier run is used as it is.
    let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(engine.db().read())
        .await
        .unwrap();
    let existing = existing as u64;
    if existing < users {
        let started = Instant::now();
        engine
            .seed(users - existing, 0, 42, &|what, done, total| {
                if done == total || done % 100_000 == 0 {
                    eprintln!("seeding {what}: {done}/{total}");
                }
            })
            .await
            .unwrap();
        let took = started.elapsed().as_secs_f64();
        println!(
            "{backend}: seeded {} users in {took:.0} s",
            users - existing
        );
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
    println!(
        "worst p95: {worst:.2} ms = {:.2} of the 50 ms budget",
        worst / BUDGET_MS
    );
    engine.shutdown().await;
}
