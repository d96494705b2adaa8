//! The Revenue screen at scale: seeds BENCH_CUSTOMERS customers (100,000 by default) with
//! BENCH_MONTHS months (24) of Stripe billing history, then reports the p50/p95 of each of the
//! screen's commands over those months (MRR, movements, by plan, churn, a CSV export) and of
//! `GET /v1/admin/revenue/mrr` over HTTP, against a primary-key lookup measured in the same run.
//!
//! `cargo bench --no-default-features --bench revenue` (SQLite), or with
//! `BENCH_DATABASE_URL=postgres://…` (an empty database).

mod common;

use common::percentile;
use std::future::Future;
use std::time::Instant;
use tollgate::service::admin::Actor;
use tollgate::service::revenue::RevenueTable;

fn main() {
    common::run(bench());
}

/// Times `rounds` calls of `call`, which answers how many rows it got; returns the p50 and
/// p95 in ms, and the rows of the last call.
async fn time<F, Fut>(rounds: usize, mut call: F) -> (f64, f64, usize)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = usize>,
{
    let mut samples = Vec::with_capacity(rounds);
    let mut rows = 0;
    for _ in 0..rounds {
        let t = Instant::now();
        rows = call().await;
        samples.push(t.elapsed());
    }
    (
        percentile(&mut samples, 0.5),
        percentile(&mut samples, 0.95),
        rows,
    )
}

async fn bench() {
    let customers: u64 = common::env_or("BENCH_CUSTOMERS", 100_000);
    let months: u32 = common::env_or("BENCH_MONTHS", 24);
    let rounds: usize = common::env_or("BENCH_ROUNDS", 20);
    let dir = tempfile::tempdir().unwrap();
    let url = common::database_url(&dir);
    let engine = common::start_engine(&url).await;
    let backend = common::backend(&url);

    let started = Instant::now();
    engine.seed(customers, 0, 7, &|_, _, _| {}).await.unwrap();
    let seeded = engine
        .seed_revenue(customers, months, 7, &|what, done, total| {
            if done == total || done % 20_000 == 0 {
                eprintln!("seeding {what}: {done}/{total}");
            }
        })
        .await
        .unwrap();
    println!(
        "{backend}: {} paying customers, {} paid invoices, {} refunds over {months} months, seeded in {:.0} s",
        seeded.customers,
        seeded.invoices,
        seeded.refunds,
        started.elapsed().as_secs_f64()
    );

    let (admin, _) = engine
        .create_staff(
            "bench-finance@example.com",
            tollgate::domain::Role::Finance,
            Some("bench-password"),
        )
        .await
        .unwrap();
    let actor = Actor {
        user: admin.clone(),
        via: "bench".into(),
    };
    let m = Some(i64::from(months));

    // Reference: a primary-key lookup, in the same run.
    let (_, ref_p95, _) = time(rounds.max(200), || async {
        engine.user(&admin.id).await.unwrap();
        1
    })
    .await;

    let addr = common::serve(tollgate::http::router(engine.clone())).await;
    let http = reqwest::Client::new();
    let token = common::sign_in(addr, "bench-finance@example.com", "bench-password").await;

    println!("{backend}, {rounds} rounds each; reference (primary-key lookup) p95 {ref_p95:.3} ms");
    println!(
        "{:<36} {:>9} {:>9} {:>12} {:>8}",
        "revenue command", "p50 ms", "p95 ms", "p95/ref", "rows"
    );
    let line = |name: &str, (p50, p95, rows): (f64, f64, usize)| {
        println!(
            "{name:<36} {p50:>9.2} {p95:>9.2} {:>12.0} {rows:>8}",
            p95 / ref_p95
        );
    };
    // The first report after a change builds the ledger from every invoice; the others reuse
    // it until a fact changes.
    let mrr = || async {
        engine
            .admin_revenue_mrr(&actor, m)
            .await
            .unwrap()
            .rows
            .len()
    };
    line("MRR by month, ledger built", time(1, mrr).await);
    line("MRR by month", time(rounds, mrr).await);
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l["VmHWM:".len()..].trim().to_owned())
        })
        .unwrap_or_default();
    println!("peak RSS of this process so far (seeding included): {rss}");
    let t = time(rounds, || async {
        engine
            .admin_revenue_movements(&actor, m)
            .await
            .unwrap()
            .rows
            .len()
    })
    .await;
    line("MRR movements", t);
    let t = time(rounds, || async {
        engine
            .admin_revenue_by_plan(&actor, m)
            .await
            .unwrap()
            .rows
            .len()
    })
    .await;
    line("revenue by plan", t);
    let t = time(rounds, || async {
        engine
            .admin_revenue_churn(&actor, m)
            .await
            .unwrap()
            .rows
            .len()
    })
    .await;
    line("churn", t);
    let t = time(rounds, || async {
        engine
            .admin_revenue_csv(&actor, RevenueTable::Movements, m)
            .await
            .unwrap()
            .lines()
            .count()
    })
    .await;
    line("CSV export (movements)", t);
    let t = time(rounds, || async {
        let res = http
            .get(format!(
                "http://{addr}/v1/admin/revenue/mrr?months={months}"
            ))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{}", res.status());
        res.bytes().await.unwrap().len()
    })
    .await;
    line("GET /v1/admin/revenue/mrr (bytes)", t);
    engine.shutdown().await;
}
