//! `tollgate dev seed`: realistic data for trying the console and measuring at scale.

use super::Engine;
use crate::domain::Password;
use crate::error::Result;
use crate::plans::periods;
use crate::store::seed::Cell;
use crate::store::{ms, seed, usage_rollups};
use chrono::{Duration, Months};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

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

/// Days back from now over which seeded events are spread (the usage chart's longest range
/// below a year).
const EVENT_DAYS: i64 = 90;

/// Seeded events per transaction.
const EVENTS_PER_TRANSACTION: u64 = 200_000;

/// How the usage rollups follow seeded events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RollupUpkeep {
    /// The per-row triggers, as for every event the API records (a few thousand events a
    /// second).
    Triggers,
    /// The trigger switched off in each batch's transaction, then the batch added to each
    /// rollup by one set-based statement: the same totals, far faster.
    Bulk,
}

impl Engine {
    /// Adds `users` users (with subscriptions spread over the catalog's plans, created over the
    /// last year) and `events` consumptions of the first metric over the last 90 days. Counters
    /// and usage rollups are written to match the events ([`RollupUpkeep::Bulk`]).
    /// Deterministic for a given `seed`, apart from the ids.
    pub async fn seed(
        &self,
        users: u64,
        events: u64,
        seed_value: u64,
        progress: Progress<'_>,
    ) -> Result<()> {
        self.seed_with(users, events, seed_value, RollupUpkeep::Bulk, progress)
            .await
    }

    /// [`Engine::seed`], with the rollups kept by `upkeep`.
    pub async fn seed_with(
        &self,
        users: u64,
        events: u64,
        seed_value: u64,
        upkeep: RollupUpkeep,
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
        let batch = 5_000usize;
        // (user id, plan version id)
        let mut ids: Vec<(String, crate::domain::PlanVersionId)> =
            Vec::with_capacity(users as usize);
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
            seed::insert_users(&mut tx, &rows, &hash).await?;
            tx.commit().await?;
            ids.extend(rows.into_iter().map(|r| (r.id, r.plan_version_id)));
            done += n as u64;
            progress("users", done, users);
        }
        if events == 0 || ids.is_empty() {
            return Ok(());
        }
        let metric = catalog.catalog.metrics.first().cloned().unwrap_or_default();
        // Each event goes to a user drawn at random; the events are then written user by user
        // (users in id order, each user's events in time order), so that the indexes that start
        // with the user grow at their end instead of at random pages all over them.
        let mut per_user = vec![0u32; ids.len()];
        for _ in 0..events {
            per_user[rng.gen_range(0..ids.len())] += 1;
        }
        let mut done = 0u64;
        let mut rows = Vec::with_capacity(EVENTS_PER_TRANSACTION.min(events) as usize);
        for ((user, plan_version_id), &n) in ids.iter().zip(&per_user) {
            let mut times: Vec<i64> = (0..n)
                .map(|_| rng.gen_range(0..EVENT_DAYS * 86_400))
                .collect();
            times.sort_unstable_by(|a, b| b.cmp(a));
            for back in times {
                let at = now - Duration::seconds(back);
                let day = periods::window(
                    crate::plans::Per::Day,
                    at,
                    periods::Window { start: at, end: at },
                )
                .start;
                rows.push(seed::SeedEvent {
                    id: format!("use_{}{:012}", &run[..10], done + rows.len() as u64),
                    user_id: user.clone(),
                    metric: metric.clone(),
                    at: ms(at),
                    period_start: ms(day),
                    plan_version_id: plan_version_id.clone(),
                });
                if rows.len() as u64 == EVENTS_PER_TRANSACTION {
                    self.write_seeded_events(&rows, upkeep).await?;
                    done += rows.len() as u64;
                    rows.clear();
                    progress("events", done, events);
                }
            }
        }
        if !rows.is_empty() {
            self.write_seeded_events(&rows, upkeep).await?;
            done += rows.len() as u64;
            progress("events", done, events);
        }
        self.forget_subscriptions();
        Ok(())
    }
}

impl Engine {
    /// Writes one transaction of seeded events (ids in increasing order), their rollups as
    /// `upkeep` says, and the counters they add to.
    async fn write_seeded_events(
        &self,
        rows: &[seed::SeedEvent],
        upkeep: RollupUpkeep,
    ) -> Result<()> {
        let (first, last) = (&rows[0].id, &rows[rows.len() - 1].id);
        let mut tx = self.db().begin().await?;
        match upkeep {
            RollupUpkeep::Triggers => seed::insert_events(&mut tx, rows).await?,
            RollupUpkeep::Bulk => {
                let suspended = usage_rollups::suspend_trigger(&mut tx, self.db().kind()).await?;
                seed::insert_events(&mut tx, rows).await?;
                usage_rollups::add_events(&mut tx, first, last).await?;
                usage_rollups::resume_trigger(&mut tx, suspended).await?;
            }
        }
        // Counters are derived state: written to match the events just added.
        seed::add_counters_from_events(&mut tx, first, last).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// A paid plan a revenue history can bill: its version, Stripe price and price.
struct Billable {
    plan_id: String,
    version_id: crate::domain::PlanVersionId,
    price_id: String,
    amount: i64,
    months: u32,
}

/// What a revenue history wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RevenueSeeded {
    pub customers: u64,
    pub invoices: u64,
    pub refunds: u64,
}

/// Rows of one kind waiting for their bulk insert.
struct Pending {
    into: &'static str,
    rows: Vec<Vec<Cell>>,
}

impl Pending {
    fn new(into: &'static str) -> Pending {
        Pending {
            into,
            rows: Vec::new(),
        }
    }
    async fn flush(&mut self, tx: &mut crate::store::Tx, at_least: usize) -> Result<()> {
        if self.rows.len() >= at_least.max(1) {
            seed::insert_rows(tx, self.into, &self.rows).await?;
            self.rows.clear();
        }
        Ok(())
    }
}

impl Engine {
    /// Adds a Stripe billing history of `months` months for up to `customers` existing
    /// customers, as the webhook applier would have stored it: Stripe customers, subscriptions
    /// (started across the months, some upgraded or downgraded at renewal, some canceled and
    /// some of those back later), one paid invoice per period and a few refunds. Customers
    /// still paying are put on the plan they pay for. The paid plans are the catalog's plans
    /// with a price and a Stripe price id; without any, nothing is written. Deterministic for
    /// a given `seed`.
    pub async fn seed_revenue(
        &self,
        customers: u64,
        months: u32,
        seed_value: u64,
        progress: Progress<'_>,
    ) -> Result<RevenueSeeded> {
        let catalog = self.catalog().await?;
        let mut plans: Vec<Billable> = catalog
            .plans
            .iter()
            .filter(|p| p.plan.price.amount > 0)
            .filter_map(|p| {
                Some(Billable {
                    plan_id: p.plan_id.clone(),
                    version_id: p.id.clone(),
                    price_id: p.plan.stripe_price_ids.first()?.clone(),
                    amount: p.plan.price.amount,
                    months: p.plan.price.interval.months(),
                })
            })
            .collect();
        plans.sort_by_key(|p| p.amount / i64::from(p.months));
        let mut written = RevenueSeeded::default();
        if plans.is_empty() || customers == 0 || months == 0 {
            return Ok(written);
        }
        let mut rng = StdRng::seed_from_u64(seed_value);
        let now = self.now();
        let first = now - Months::new(months);
        let users = {
            let mut conn = self.db().read().acquire().await?;
            seed::customer_ids(&mut conn, customers as i64).await?
        };
        let run = crate::domain::ids::base62_u128(uuid::Uuid::new_v4().as_u128());
        let run = &run[..8];
        let currency = catalog
            .default_plan()
            .plan
            .price
            .currency
            .to_ascii_lowercase();
        let mut customers_rows =
            Pending::new("stripe_customers (customer_id, user_id, created_at, deleted_at)");
        let mut subscriptions = Pending::new(
            "stripe_subscriptions (subscription_id, customer_id, user_id, price_id, status, \
             current_period_start, current_period_end, cancel_at_period_end, trial_end, ended_at, \
             started_at, deleted, state_at, state_event, updated_at)",
        );
        let mut invoices = Pending::new(
            "stripe_invoices (invoice_id, customer_id, user_id, subscription_id, status, amount_due, \
             amount_paid, currency, billing_reason, price_id, plan_id, period_start, period_end, \
             created, paid_at, failed_at, attempt_count, updated_at)",
        );
        let mut refunds = Pending::new(
            "stripe_refunds (charge_id, customer_id, user_id, payment_intent, amount, \
             amount_refunded, currency, refunded, refunded_at, updated_at)",
        );
        let now_ms = ms(now);
        // Customers start up to a quarter of the history before it, so the first month has MRR.
        let span = (now - first).num_seconds() * 5 / 4;
        let mut tx = self.db().begin().await?;
        for (k, user) in users.iter().enumerate() {
            let customer = format!("cus_{run}{k:08}");
            let mut start = now - Duration::seconds(rng.gen_range(1..span));
            customers_rows.rows.push(vec![
                customer.as_str().into(),
                user.as_str().into(),
                ms(start).into(),
                Cell::Null,
            ]);
            let mut plan = match rng.gen_range(0..100) {
                0..=74 => 0,
                75..=94 => 1,
                _ => 2,
            }
            .min(plans.len() - 1);
            let mut life = 0;
            // Each life is one Stripe subscription; a canceled customer may come back once.
            let last = loop {
                life += 1;
                let sub = format!("sub_{run}{k:08}{life}");
                let mut period_start = start;
                let mut n = 0;
                let (end, ended) = loop {
                    let p = &plans[plan];
                    let period_end = period_start + Months::new(p.months);
                    let invoice = format!("in_{run}{k:08}{life}{n:03}");
                    let paid = ms(period_start) + rng.gen_range(0..3_600_000);
                    invoices.rows.push(vec![
                        invoice.into(),
                        customer.as_str().into(),
                        user.as_str().into(),
                        sub.as_str().into(),
                        "paid".into(),
                        p.amount.into(),
                        p.amount.into(),
                        currency.as_str().into(),
                        if n == 0 {
                            "subscription_create"
                        } else {
                            "subscription_cycle"
                        }
                        .into(),
                        p.price_id.as_str().into(),
                        p.plan_id.as_str().into(),
                        ms(period_start).into(),
                        ms(period_end).into(),
                        ms(period_start).into(),
                        paid.into(),
                        Cell::Null,
                        1.into(),
                        paid.into(),
                    ]);
                    written.invoices += 1;
                    if rng.gen_range(0..200) == 0 && paid + 2 * 86_400_000 < now_ms {
                        let at = paid + 2 * 86_400_000;
                        refunds.rows.push(vec![
                            format!("ch_{run}{k:08}{life}{n:03}").into(),
                            customer.as_str().into(),
                            user.as_str().into(),
                            Cell::Null,
                            p.amount.into(),
                            p.amount.into(),
                            currency.as_str().into(),
                            1.into(),
                            at.into(),
                            at.into(),
                        ]);
                        written.refunds += 1;
                    }
                    n += 1;
                    if period_end > now {
                        break (period_end, None);
                    }
                    // At renewal: 3 in 100 cancel, 2 upgrade, 1 downgrades.
                    match rng.gen_range(0..100) {
                        0..=2 => break (period_end, Some(period_end)),
                        3..=4 => plan = (plan + 1).min(plans.len() - 1),
                        5 => plan = plan.saturating_sub(1),
                        _ => {}
                    }
                    period_start = period_end;
                };
                let p = &plans[plan];
                let period = (end - Months::new(p.months), end);
                subscriptions.rows.push(vec![
                    sub.as_str().into(),
                    customer.as_str().into(),
                    user.as_str().into(),
                    p.price_id.as_str().into(),
                    if ended.is_some() {
                        "canceled"
                    } else {
                        "active"
                    }
                    .into(),
                    ms(period.0).into(),
                    ms(period.1).into(),
                    0.into(),
                    Cell::Null,
                    ended.map(ms).into(),
                    ms(start).into(),
                    i64::from(ended.is_some()).into(),
                    ms(period.0).into(),
                    format!("evt_{run}{k:08}{life}").into(),
                    ms(period.0).into(),
                ]);
                match ended {
                    // One in five canceled customers comes back one to three months later.
                    Some(at) if life == 1 && rng.gen_range(0..5) == 0 => {
                        start = at + Months::new(rng.gen_range(1..=3));
                        if start >= now {
                            break None;
                        }
                    }
                    Some(_) => break None,
                    None => break Some((sub, period)),
                }
            };
            if let Some((sub, period)) = last {
                seed::link_subscription(
                    &mut tx,
                    user,
                    &plans[plan].version_id,
                    &customer,
                    &sub,
                    (ms(period.0), ms(period.1)),
                )
                .await?;
            }
            written.customers += 1;
            customers_rows.flush(&mut tx, 1000).await?;
            subscriptions.flush(&mut tx, 1000).await?;
            invoices.flush(&mut tx, 5000).await?;
            refunds.flush(&mut tx, 1000).await?;
            if (k + 1) % 5000 == 0 {
                tx.commit().await?;
                tx = self.db().begin().await?;
                progress("customers", k as u64 + 1, users.len() as u64);
            }
        }
        for rows in [
            &mut customers_rows,
            &mut subscriptions,
            &mut invoices,
            &mut refunds,
        ] {
            rows.flush(&mut tx, 0).await?;
        }
        tx.commit().await?;
        progress("customers", users.len() as u64, users.len() as u64);
        self.forget_subscriptions();
        Ok(written)
    }
}
