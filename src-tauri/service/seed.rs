//! `tollgate dev seed`: realistic data for trying the console and measuring at scale.

use super::Engine;
use crate::domain::Password;
use crate::error::Result;
use crate::plans::periods;
use crate::store::{ms, seed, usage};
use chrono::Duration;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;

const FIRST: [&str; 24] = [
    "ada", "alan", "barbara", "brian", "claude", "dennis", "donald", "edsger", "frances", "grace",
    "guido", "hedy", "ivan", "john", "ken", "leslie", "linus", "margaret", "niklaus", "radia",
    "rob", "shafi", "tim", "yukihiro",
];
const LAST: [&str; 16] = [
    "lovelace",
    "turing",
    "liskov",
    "kernighan",
    "shannon",
    "ritchie",
    "knuth",
    "dijkstra",
    "allen",
    "hopper",
    "rossum",
    "lamarr",
    "sutherland",
    "mccarthy",
    "thompson",
    "lamport",
];
const DOMAINS: [&str; 8] = [
    "example.com",
    "mail.test",
    "acme.io",
    "studio.dev",
    "corp.example",
    "uni.edu",
    "shop.example",
    "news.test",
];

/// How far along seeding is: (done, total) for users, then for events.
pub type Progress<'a> = &'a (dyn Fn(&str, u64, u64) + Sync);

impl Engine {
    /// Adds `users` users (with subscriptions spread over the catalog's plans, created over the
    /// last year) and `events` consumptions of the first metric over the last 30 days. Counters
    /// are written to match the events. Deterministic for a given `seed`.
    pub async fn seed(
        &self,
        users: u64,
        events: u64,
        seed_value: u64,
        progress: Progress<'_>,
    ) -> Result<()> {
        let catalog = self.catalog().await?;
        let mut rng = StdRng::seed_from_u64(seed_value);
        let hash = self
            .passwords()
            .hash(&Password::parse("seed-password", "password")?)
            .await?;
        let now = self.now();
        let plans: Vec<(String, i64)> = catalog
            .plans
            .iter()
            .enumerate()
            .map(|(i, p)| {
                (
                    p.plan_id.clone(),
                    [80, 15, 5, 3, 2].get(i).copied().unwrap_or(1),
                )
            })
            .collect();
        let weight: i64 = plans.iter().map(|p| p.1).sum();
        let batch = 400usize;
        let mut ids: Vec<String> = Vec::with_capacity(users as usize);
        let run = crate::domain::ids::base62_u128(uuid::Uuid::new_v4().as_u128());
        let mut done = 0u64;
        while done < users {
            let n = batch.min((users - done) as usize);
            let mut rows = Vec::with_capacity(n);
            for i in 0..n {
                let k = done + i as u64;
                let created = now - Duration::seconds(rng.gen_range(0..365 * 86_400));
                let mut pick = rng.gen_range(0..weight);
                let plan = plans.iter().find(|p| {
                    pick -= p.1;
                    pick < 0
                });
                let plan = catalog
                    .plan(&plan.map(|p| p.0.clone()).unwrap_or_default())
                    .unwrap_or(catalog.default_plan());
                let status = match rng.gen_range(0..100) {
                    0..=94 => "active",
                    95..=97 => "suspended",
                    _ => "deleted",
                };
                let first = FIRST[rng.gen_range(0..FIRST.len())];
                let last = LAST[rng.gen_range(0..LAST.len())];
                let id = format!("usr_{}{:010}", &run[..12], k);
                let period = periods::billing_period_at(created, plan.plan.price.interval, now);
                rows.push(seed::SeedUser {
                    sub_id: format!("sub_{}{:010}", &run[..12], k),
                    email: format!(
                        "{first}.{last}{k}@{}",
                        DOMAINS[rng.gen_range(0..DOMAINS.len())]
                    ),
                    full_name: format!(
                        "{}{} {}{}",
                        &first[..1].to_uppercase(),
                        &first[1..],
                        &last[..1].to_uppercase(),
                        &last[1..]
                    ),
                    status,
                    created_at: ms(created),
                    plan_version_id: plan.id.clone(),
                    period_end: ms(period.end),
                    id,
                });
            }
            let mut tx = self.db().begin().await?;
            for chunk in rows.chunks(batch) {
                seed::insert_users(&mut tx, chunk, &hash).await?;
            }
            tx.commit().await?;
            ids.extend(rows.into_iter().map(|r| r.id));
            done += n as u64;
            progress("users", done, users);
        }
        if events == 0 || ids.is_empty() {
            return Ok(());
        }
        let metric = catalog.catalog.metrics.first().cloned().unwrap_or_default();
        let mut counters: HashMap<(String, i64), i64> = HashMap::new();
        let mut done = 0u64;
        while done < events {
            let n = batch.min((events - done) as usize);
            let mut rows = Vec::with_capacity(n);
            for i in 0..n {
                let user = ids[rng.gen_range(0..ids.len())].clone();
                let at = now - Duration::seconds(rng.gen_range(0..30 * 86_400));
                let day = periods::window(
                    crate::plans::Per::Day,
                    at,
                    periods::Window { start: at, end: at },
                )
                .start;
                *counters.entry((user.clone(), ms(day))).or_default() += 1;
                rows.push(seed::SeedEvent {
                    id: format!("use_{}{:012}", &run[..10], done + i as u64),
                    user_id: user,
                    metric: metric.clone(),
                    at: ms(at),
                    period_start: ms(day),
                });
            }
            let mut tx = self.db().begin().await?;
            seed::insert_events(&mut tx, &rows).await?;
            tx.commit().await?;
            done += n as u64;
            progress("events", done, events);
        }
        // Counters are derived state: write them to match the events just added.
        let mut tx = self.db().begin().await?;
        for ((user, start), n) in counters {
            usage::add_within(&mut tx, &user, &metric, start, start + 86_400_000, n, None).await?;
        }
        tx.commit().await?;
        self.forget_subscriptions();
        Ok(())
    }
}
