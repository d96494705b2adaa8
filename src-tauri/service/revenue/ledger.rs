//! The ledger: each paid subscription invoice becomes a segment of time during which one
//! customer's subscription was paid for at one price, valued at that price's monthly rate.

use super::{ChurnMonth, MovementMonth, MrrMonth, PlanMonth, Window, UNKNOWN_PLAN};
use super::{DAYS_PER_MONTH, DAY_MS};
use crate::service::catalog::ActiveCatalog;
use crate::store::at;
use crate::store::revenue::{PaidInvoice, Refund, SubscriptionEnd};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Stripe prices the plan file names: price id → (plan, currency, monthly amount).
#[derive(Debug, Clone, Default)]
pub struct PlanPrices(HashMap<String, (String, String, i64)>);

impl PlanPrices {
    pub fn from_catalog(c: &ActiveCatalog) -> PlanPrices {
        let mut map = HashMap::new();
        for p in &c.plans {
            for price in &p.plan.stripe_price_ids {
                map.entry(price.clone()).or_insert((
                    p.plan_id.clone(),
                    p.plan.price.currency.to_ascii_lowercase(),
                    p.plan.monthly_amount(),
                ));
            }
        }
        PlanPrices(map)
    }

    pub fn insert(&mut self, price: &str, plan: &str, currency: &str, monthly: i64) {
        self.0
            .insert(price.into(), (plan.into(), currency.into(), monthly));
    }

    fn plan(&self, price: &str) -> Option<&str> {
        self.0.get(price).map(|(p, _, _)| p.as_str())
    }
}

/// The ledger's names (customers, subscriptions, prices, plans, currencies) by number, so that
/// a history of millions of invoices holds each name once.
#[derive(Debug, Clone, Default)]
struct Names {
    index: HashMap<String, u32>,
    names: Vec<String>,
}

impl Names {
    fn id(&mut self, name: &str) -> u32 {
        if let Some(id) = self.index.get(name) {
            return *id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.to_owned());
        self.index.insert(name.to_owned(), id);
        id
    }
    fn get(&self, name: &str) -> Option<u32> {
        self.index.get(name).copied()
    }
    fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }
}

/// Why Stripe billed an invoice, as far as revenue cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    /// `subscription_create` or `subscription_cycle`: a full period.
    Period,
    /// `subscription_update`: a change in the middle of a period.
    Change,
    Other,
}

/// A paid invoice as the ledger keeps it while it is built.
#[derive(Debug, Clone)]
struct Invoice {
    user: u32,
    currency: u32,
    subscription: Option<u32>,
    price: Option<u32>,
    plan: u32,
    reason: Reason,
    amount_paid: i64,
    period: Option<(i64, i64)>,
    period_start: Option<i64>,
    created: i64,
    paid_at: i64,
    /// Position in (created, invoice id) order: the last tie-break between changes.
    order: u32,
}

/// Part of one subscription's life during which it was paid for at one price.
#[derive(Debug, Clone, PartialEq)]
struct Segment {
    subscription: u32,
    user: u32,
    currency: u32,
    plan: u32,
    start: i64,
    end: i64,
    /// Where segments of a subscription overlap, the greatest key wins (the later change).
    key: (i64, i64, u32),
    /// Monthly rate, in minor units.
    rate: i64,
}

#[derive(Debug, Clone, PartialEq)]
struct Money {
    at: i64,
    currency: u32,
    plan: u32,
    amount: i64,
}

/// One customer's MRR in one currency at an instant, and its split by plan.
#[derive(Debug, Clone, Default, PartialEq)]
struct Holding {
    mrr: i64,
    by_plan: BTreeMap<u32, i64>,
}

/// (customer, currency) → holding.
type Snapshot = HashMap<(u32, u32), Holding>;

/// A customer's payment: (paid at, created, plan).
type Payment = (i64, i64, u32);

/// Money summed by (month, currency, plan).
type Sums = BTreeMap<(usize, u32, u32), i64>;

/// Everything the reports are computed from.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    names: Names,
    segments: Vec<Segment>,
    /// Each (customer, currency)'s first instant with MRR above zero.
    first_paid: HashMap<(u32, u32), i64>,
    collected: Vec<Money>,
    refunds: Vec<Money>,
    /// Currencies by name (the order of report rows), with their number.
    currencies: BTreeMap<String, u32>,
}

/// The monthly amount of `amount` billed for the period `[start, end)`: divided by the whole
/// months the period spans (a 365-day period is 12), or scaled by days for periods under
/// three weeks.
pub fn monthly(amount: i64, start: i64, end: i64) -> i64 {
    let days = (end - start) as f64 / DAY_MS;
    if days <= 0.0 {
        return 0;
    }
    if days >= 21.0 {
        let months = (days / DAYS_PER_MONTH).round().max(1.0);
        (amount as f64 / months).round() as i64
    } else {
        (amount as f64 * DAYS_PER_MONTH / days).round() as i64
    }
}

/// Builds a [`Ledger`] from paid invoices given one at a time, in (created, invoice id) order,
/// so that a long history never has to be held as rows.
#[derive(Debug)]
pub struct LedgerBuilder<'a> {
    prices: &'a PlanPrices,
    names: Names,
    invoices: Vec<Invoice>,
    unknown_plan: u32,
}

impl<'a> LedgerBuilder<'a> {
    pub fn new(prices: &'a PlanPrices) -> LedgerBuilder<'a> {
        let mut names = Names::default();
        let unknown_plan = names.id(UNKNOWN_PLAN);
        LedgerBuilder {
            prices,
            names,
            invoices: Vec::new(),
            unknown_plan,
        }
    }

    /// The next paid invoice.
    pub fn invoice(&mut self, i: &PaidInvoice) {
        let names = &mut self.names;
        let plan = i
            .plan_id
            .as_deref()
            .or_else(|| i.price_id.as_deref().and_then(|p| self.prices.plan(p)))
            .map_or(self.unknown_plan, |p| names.id(p));
        let period = match (i.period_start, i.period_end) {
            (Some(s), Some(e)) => Some((s, e)),
            _ => None,
        };
        let reason = match i.billing_reason.as_deref() {
            Some("subscription_create" | "subscription_cycle") => Reason::Period,
            Some("subscription_update") => Reason::Change,
            _ => Reason::Other,
        };
        let order = self.invoices.len() as u32;
        self.invoices.push(Invoice {
            user: names.id(&i.user_id),
            currency: names.id(&i.currency),
            subscription: i.subscription_id.as_deref().map(|s| names.id(s)),
            price: i.price_id.as_deref().map(|p| names.id(p)),
            plan,
            reason,
            amount_paid: i.amount_paid,
            period,
            period_start: i.period_start,
            created: i.created,
            paid_at: i.paid_at,
            order,
        });
    }

    /// The ledger, with how subscriptions ended and the refunds.
    pub fn build(self, ends: &[SubscriptionEnd], refunds: &[Refund]) -> Ledger {
        let LedgerBuilder {
            prices,
            mut names,
            invoices,
            ..
        } = self;
        let rates = list_rates(&invoices);
        let mut plan_rates: HashMap<(u32, u32), i64> = HashMap::new();
        for (price, (_, currency, monthly)) in &prices.0 {
            let key = (names.id(price), names.id(currency));
            plan_rates.insert(key, *monthly);
        }
        let rate = |price: u32, currency: u32| -> i64 {
            rates
                .get(&(price, currency))
                .or_else(|| plan_rates.get(&(price, currency)))
                .copied()
                .unwrap_or(0)
        };

        let mut segments = Vec::new();
        // Periods first: a mid-period change runs until the end of the period it falls in.
        let mut periods: HashMap<u32, Vec<(i64, i64)>> = HashMap::new();
        for i in &invoices {
            let (Some(sub), Some(price), Some((s, e))) = (i.subscription, i.price, i.period) else {
                continue;
            };
            if e <= s {
                continue;
            }
            periods.entry(sub).or_default().push((s, e));
            segments.push(Segment {
                subscription: sub,
                user: i.user,
                currency: i.currency,
                plan: i.plan,
                start: s,
                end: e,
                key: (s, i.created, i.order),
                rate: rate(price, i.currency),
            });
        }
        for i in &invoices {
            let (Some(sub), Some(price), None, Reason::Change) =
                (i.subscription, i.price, i.period_start, i.reason)
            else {
                continue;
            };
            let covering = periods
                .get(&sub)
                .into_iter()
                .flatten()
                .filter(|(s, e)| *s <= i.created && i.created < *e)
                .max();
            let Some(&(_, end)) = covering else {
                continue;
            };
            segments.push(Segment {
                subscription: sub,
                user: i.user,
                currency: i.currency,
                plan: i.plan,
                start: i.created,
                end,
                key: (i.created, i.created, i.order),
                rate: rate(price, i.currency),
            });
        }
        // A trial carries no MRR; a subscription that ended stops counting when it ended.
        let ends: HashMap<u32, &SubscriptionEnd> = ends
            .iter()
            .filter_map(|e| Some((names.get(&e.subscription_id)?, e)))
            .collect();
        for seg in &mut segments {
            if let Some(e) = ends.get(&seg.subscription) {
                if let Some(trial_end) = e.trial_end {
                    seg.start = seg.start.max(trial_end);
                }
                let over = e.deleted != 0
                    || matches!(e.status.as_str(), "canceled" | "incomplete_expired");
                if let (true, Some(ended)) = (over, e.ended_at) {
                    seg.end = seg.end.min(ended);
                }
            }
        }
        segments.retain(|s| s.end > s.start);

        let mut first_paid: HashMap<(u32, u32), i64> = HashMap::new();
        for s in segments.iter().filter(|s| s.rate > 0) {
            let v = first_paid.entry((s.user, s.currency)).or_insert(s.start);
            *v = (*v).min(s.start);
        }

        let collected: Vec<Money> = invoices
            .iter()
            .filter(|i| i.amount_paid != 0)
            .map(|i| Money {
                at: i.paid_at,
                currency: i.currency,
                plan: i.plan,
                amount: i.amount_paid,
            })
            .collect();
        // A refund belongs to the plan of the customer's latest payment before it: each
        // (customer, currency)'s payments in order, searched by time.
        let mut payments: HashMap<(u32, u32), Vec<Payment>> = HashMap::new();
        for i in invoices.iter().filter(|i| i.amount_paid > 0) {
            payments
                .entry((i.user, i.currency))
                .or_default()
                .push((i.paid_at, i.created, i.plan));
        }
        for list in payments.values_mut() {
            list.sort_by_key(|(paid, created, _)| (*paid, *created));
        }
        let unknown = names.id(UNKNOWN_PLAN);
        let refunds: Vec<Money> = refunds
            .iter()
            .map(|r| {
                let (user, currency) = (names.get(&r.user_id), names.id(&r.currency));
                let plan = user
                    .and_then(|u| payments.get(&(u, currency)))
                    .and_then(|list| {
                        let before = list.partition_point(|(paid, _, _)| *paid <= r.refunded_at);
                        before.checked_sub(1).map(|i| list[i].2)
                    })
                    .unwrap_or(unknown);
                Money {
                    at: r.refunded_at,
                    currency,
                    plan,
                    amount: r.amount_refunded,
                }
            })
            .collect();

        let mut currencies: BTreeMap<String, u32> = BTreeMap::new();
        let mut add = |id: u32| {
            currencies.insert(names.name(id).to_owned(), id);
        };
        for (_, c, _) in prices.0.values() {
            add(names.get(c).expect("named above"));
        }
        for c in segments.iter().map(|s| s.currency) {
            add(c);
        }
        for c in collected.iter().chain(&refunds).map(|m| m.currency) {
            add(c);
        }
        Ledger {
            names,
            segments,
            first_paid,
            collected,
            refunds,
            currencies,
        }
    }
}

impl Ledger {
    /// The ledger of `invoices` (in any order), with how subscriptions ended and the refunds.
    #[cfg(test)]
    pub fn build(
        invoices: &[PaidInvoice],
        ends: &[SubscriptionEnd],
        refunds: &[Refund],
        prices: &PlanPrices,
    ) -> Ledger {
        let mut sorted: Vec<&PaidInvoice> = invoices.iter().collect();
        sorted.sort_by(|a, b| (a.created, &a.invoice_id).cmp(&(b.created, &b.invoice_id)));
        let mut builder = LedgerBuilder::new(prices);
        for i in sorted {
            builder.invoice(i);
        }
        builder.build(ends, refunds)
    }

    /// Every customer's MRR at `t`: per subscription, the segment holding `t` with the
    /// greatest key; summed per (customer, currency).
    fn snapshot(&self, t: i64) -> Snapshot {
        let mut winners: HashMap<u32, &Segment> = HashMap::new();
        for s in self.segments.iter().filter(|s| s.start <= t && t < s.end) {
            let w = winners.entry(s.subscription).or_insert(s);
            if s.key > w.key {
                *w = s;
            }
        }
        let mut snap = Snapshot::new();
        for s in winners.values().filter(|s| s.rate > 0) {
            let h = snap.entry((s.user, s.currency)).or_default();
            h.mrr += s.rate;
            *h.by_plan.entry(s.plan).or_default() += s.rate;
        }
        snap
    }

    /// Snapshots at the first month's start, then at each month's snapshot point.
    fn snapshots(&self, w: &Window) -> Vec<Snapshot> {
        std::iter::once(w.starts[0])
            .chain(w.points.iter().copied())
            .map(|t| self.snapshot(t))
            .collect()
    }

    fn money_in(&self, list: &[Money], w: &Window) -> Sums {
        let mut sums = BTreeMap::new();
        for m in list {
            if let Some(i) = w.month_of(m.at) {
                *sums.entry((i, m.currency, m.plan)).or_insert(0) += m.amount;
            }
        }
        sums
    }

    pub fn mrr(&self, w: &Window) -> Vec<MrrMonth> {
        let snaps = self.snapshots(w);
        let collected = self.money_in(&self.collected, w);
        let refunded = self.money_in(&self.refunds, w);
        let total = |sums: &Sums, i: usize, c: u32| -> i64 {
            sums.range((i, c, 0)..=(i, c, u32::MAX))
                .map(|(_, v)| v)
                .sum()
        };
        let mut rows = Vec::new();
        for (i, label) in w.labels.iter().enumerate() {
            for (name, &c) in &self.currencies {
                let held: Vec<&Holding> = snaps[i + 1]
                    .iter()
                    .filter(|((_, cur), _)| *cur == c)
                    .map(|(_, h)| h)
                    .collect();
                let mrr: i64 = held.iter().map(|h| h.mrr).sum();
                let paying = held.len() as i64;
                let (col, refd) = (total(&collected, i, c), total(&refunded, i, c));
                rows.push(MrrMonth {
                    month: label.clone(),
                    currency: name.clone(),
                    snapshot_at: at(w.points[i]),
                    mrr,
                    arr: mrr * 12,
                    paying_customers: paying,
                    arpu: if paying == 0 {
                        0
                    } else {
                        (mrr + paying / 2) / paying
                    },
                    collected: col,
                    refunded: refd,
                    net_revenue: col - refd,
                });
            }
        }
        rows
    }

    pub fn movements(&self, w: &Window) -> Vec<MovementMonth> {
        self.movements_with(w, &self.snapshots(w))
    }

    fn movements_with(&self, w: &Window, snaps: &[Snapshot]) -> Vec<MovementMonth> {
        let mut rows = Vec::new();
        for (i, label) in w.labels.iter().enumerate() {
            let (before, after) = (&snaps[i], &snaps[i + 1]);
            let month_start = w.starts[i];
            for (name, &c) in &self.currencies {
                let mut r = MovementMonth {
                    month: label.clone(),
                    currency: name.clone(),
                    start_mrr: 0,
                    new: 0,
                    expansion: 0,
                    contraction: 0,
                    churned: 0,
                    reactivation: 0,
                    net_new: 0,
                    end_mrr: 0,
                    new_customers: 0,
                    expansion_customers: 0,
                    contraction_customers: 0,
                    churned_customers: 0,
                    reactivated_customers: 0,
                };
                let keys: HashSet<&(u32, u32)> = before
                    .keys()
                    .chain(after.keys())
                    .filter(|(_, cur)| *cur == c)
                    .collect();
                for k in keys {
                    let was = before.get(k).map_or(0, |h| h.mrr);
                    let is = after.get(k).map_or(0, |h| h.mrr);
                    r.start_mrr += was;
                    r.end_mrr += is;
                    match (was, is) {
                        (0, n) if n > 0 => {
                            let returning =
                                self.first_paid.get(k).is_some_and(|f| *f < month_start);
                            if returning {
                                r.reactivation += n;
                                r.reactivated_customers += 1;
                            } else {
                                r.new += n;
                                r.new_customers += 1;
                            }
                        }
                        (o, 0) if o > 0 => {
                            r.churned += o;
                            r.churned_customers += 1;
                        }
                        (o, n) if n > o => {
                            r.expansion += n - o;
                            r.expansion_customers += 1;
                        }
                        (o, n) if n < o => {
                            r.contraction += o - n;
                            r.contraction_customers += 1;
                        }
                        _ => {}
                    }
                }
                r.net_new = r.new + r.expansion + r.reactivation - r.contraction - r.churned;
                rows.push(r);
            }
        }
        rows
    }

    pub fn churn(&self, w: &Window) -> Vec<ChurnMonth> {
        let snaps = self.snapshots(w);
        self.movements_with(w, &snaps)
            .into_iter()
            .enumerate()
            .map(|(n, m)| {
                let i = n / self.currencies.len().max(1);
                let c = self.currencies[&m.currency];
                let at_start = snaps[i].keys().filter(|(_, cur)| *cur == c).count() as i64;
                let ratio = |a: i64, b: i64| (b > 0).then(|| a as f64 / b as f64);
                ChurnMonth {
                    customer_churn_rate: ratio(m.churned_customers, at_start),
                    revenue_churn_rate: ratio(m.churned + m.contraction, m.start_mrr),
                    month: m.month,
                    currency: m.currency,
                    customers_at_start: at_start,
                    churned_customers: m.churned_customers,
                    mrr_at_start: m.start_mrr,
                    churned_mrr: m.churned,
                    contraction_mrr: m.contraction,
                }
            })
            .collect()
    }

    pub fn by_plan(&self, w: &Window) -> Vec<PlanMonth> {
        let snaps = self.snapshots(w);
        let collected = self.money_in(&self.collected, w);
        let refunded = self.money_in(&self.refunds, w);
        // (month, currency, plan) → row, by name: a BTreeMap keeps the rows sorted.
        type Rows<'n> = BTreeMap<(usize, &'n str, &'n str), PlanMonth>;
        let mut rows: Rows = BTreeMap::new();
        fn row<'r, 'n>(
            rows: &'r mut Rows<'n>,
            names: &'n Names,
            w: &Window,
            (i, currency, plan): (usize, u32, u32),
        ) -> &'r mut PlanMonth {
            let (currency, plan) = (names.name(currency), names.name(plan));
            rows.entry((i, currency, plan))
                .or_insert_with(|| PlanMonth {
                    month: w.labels[i].clone(),
                    plan: plan.to_owned(),
                    currency: currency.to_owned(),
                    customers: 0,
                    mrr: 0,
                    collected: 0,
                    refunded: 0,
                    net_revenue: 0,
                })
        }
        let names = &self.names;
        for (i, snap) in snaps.iter().skip(1).enumerate() {
            for ((_, currency), h) in snap {
                for (plan, mrr) in &h.by_plan {
                    let r = row(&mut rows, names, w, (i, *currency, *plan));
                    r.customers += 1;
                    r.mrr += mrr;
                }
            }
        }
        for ((i, currency, plan), amount) in &collected {
            row(&mut rows, names, w, (*i, *currency, *plan)).collected += amount;
        }
        for ((i, currency, plan), amount) in &refunded {
            row(&mut rows, names, w, (*i, *currency, *plan)).refunded += amount;
        }
        rows.into_values()
            .map(|mut r| {
                r.net_revenue = r.collected - r.refunded;
                r
            })
            .collect()
    }
}

/// Each price's monthly rate in each currency, from what Stripe charged for full periods of
/// it: the most frequent monthly amount of its paid `subscription_create`/`subscription_cycle`
/// invoices with a period and a positive amount (ties: the most recent).
fn list_rates(invoices: &[Invoice]) -> HashMap<(u32, u32), i64> {
    // (price, currency) → monthly amount → (count, latest created)
    let mut seen: HashMap<(u32, u32), HashMap<i64, (usize, i64)>> = HashMap::new();
    for i in invoices
        .iter()
        .filter(|i| i.reason == Reason::Period && i.amount_paid > 0)
    {
        let (Some(price), Some((s, e))) = (i.price, i.period) else {
            continue;
        };
        if e <= s {
            continue;
        }
        let m = monthly(i.amount_paid, s, e);
        let slot = seen
            .entry((price, i.currency))
            .or_default()
            .entry(m)
            .or_insert((0, i.created));
        slot.0 += 1;
        slot.1 = slot.1.max(i.created);
    }
    seen.into_iter()
        .filter_map(|(k, amounts)| {
            amounts
                .into_iter()
                .max_by_key(|(_, (count, latest))| (*count, *latest))
                .map(|(m, _)| (k, m))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store;

    /// A customer's MRR at `t` in one currency, and its split by plan name.
    fn held(
        l: &Ledger,
        t: i64,
        user: &str,
        currency: &str,
    ) -> Option<(i64, BTreeMap<String, i64>)> {
        let key = (l.names.get(user)?, l.names.get(currency)?);
        l.snapshot(t).get(&key).map(|h| {
            let plans = h
                .by_plan
                .iter()
                .map(|(p, v)| (l.names.name(*p).to_owned(), *v))
                .collect();
            (h.mrr, plans)
        })
    }
    use chrono::{TimeZone, Utc};

    const DAY: i64 = 86_400_000;

    fn t(y: i32, m: u32, d: u32) -> i64 {
        store::ms(Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap())
    }

    fn invoice(
        id: &str,
        sub: &str,
        price: &str,
        amount: i64,
        period: Option<(i64, i64)>,
        reason: &str,
        created: i64,
    ) -> PaidInvoice {
        PaidInvoice {
            invoice_id: id.into(),
            user_id: crate::domain::UserId::parse("usr_a").unwrap(),
            subscription_id: Some(sub.into()),
            billing_reason: Some(reason.into()),
            price_id: Some(price.into()),
            plan_id: None,
            currency: "usd".into(),
            amount_paid: amount,
            period_start: period.map(|p| p.0),
            period_end: period.map(|p| p.1),
            created,
            paid_at: created,
        }
    }

    #[test]
    fn periods_are_normalised_to_months() {
        // 39000 over 365 days = 12 months → 3250; over 366 days still 12.
        assert_eq!(monthly(39_000, 0, 365 * DAY), 3250);
        assert_eq!(monthly(39_000, 0, 366 * DAY), 3250);
        // Any calendar month is one month.
        for days in [28, 29, 30, 31] {
            assert_eq!(monthly(1200, 0, days * DAY), 1200);
        }
        // A quarter: 9000 / 3.
        assert_eq!(monthly(9000, 0, 91 * DAY), 3000);
        // A week: 700 × 30.4375 / 7 = 3043.75 → 3044.
        assert_eq!(monthly(700, 0, 7 * DAY), 3044);
    }

    #[test]
    fn window_labels_and_points() {
        let now = t(2026, 2, 10) + 5;
        let w = Window::ending_at(now, 3);
        assert_eq!(w.labels, ["2025-12", "2026-01", "2026-02"]);
        assert_eq!(w.starts, [t(2025, 12, 1), t(2026, 1, 1), t(2026, 2, 1)]);
        assert_eq!(w.points, [t(2026, 1, 1), t(2026, 2, 1), now]);
        assert_eq!(w.month_of(t(2026, 1, 31)), Some(1));
        assert_eq!(w.month_of(t(2025, 11, 30)), None);
        assert_eq!(w.month_of(now + 1), None, "after now");
    }

    #[test]
    fn a_trial_carries_no_mrr_and_the_price_rate_ignores_credits() {
        // A 7-day trial invoice (0), then the first paid month partly paid by credit (200), then
        // two full months (1200): the rate is the most frequent full charge, 1200.
        let ts = t(2026, 1, 1);
        let trial_end = ts + 7 * DAY;
        let invoices = vec![
            invoice(
                "in_1",
                "sub_1",
                "price_pro",
                0,
                Some((ts, trial_end)),
                "subscription_create",
                ts,
            ),
            invoice(
                "in_2",
                "sub_1",
                "price_pro",
                200,
                Some((trial_end, t(2026, 2, 8))),
                "subscription_cycle",
                trial_end,
            ),
            invoice(
                "in_3",
                "sub_1",
                "price_pro",
                1200,
                Some((t(2026, 2, 8), t(2026, 3, 8))),
                "subscription_cycle",
                t(2026, 2, 8),
            ),
            invoice(
                "in_4",
                "sub_1",
                "price_pro",
                1200,
                Some((t(2026, 3, 8), t(2026, 4, 8))),
                "subscription_cycle",
                t(2026, 3, 8),
            ),
        ];
        let ends = vec![SubscriptionEnd {
            subscription_id: "sub_1".into(),
            status: "active".into(),
            deleted: 0,
            ended_at: None,
            trial_end: Some(trial_end),
        }];
        let ledger = Ledger::build(&invoices, &ends, &[], &PlanPrices::default());
        let key = (
            ledger.names.get("usr_a").unwrap(),
            ledger.names.get("usd").unwrap(),
        );
        assert!(ledger.snapshot(ts + DAY).is_empty(), "trialing");
        assert_eq!(
            held(&ledger, trial_end + DAY, "usr_a", "usd").unwrap().0,
            1200
        );
        assert_eq!(ledger.first_paid[&key], trial_end);
        assert_eq!(
            held(&ledger, t(2026, 3, 20), "usr_a", "usd").unwrap().1[UNKNOWN_PLAN],
            1200
        );
    }

    #[test]
    fn a_price_never_charged_in_full_is_valued_at_its_plan_file_price() {
        // Pro for January; on Jan 16 a proration invoice (1350) moves it to Business, a price
        // Stripe never billed a full period of: the plan file's 3900 values it.
        let mut prices = PlanPrices::default();
        prices.insert("price_biz", "business", "usd", 3900);
        let invoices = vec![
            invoice(
                "in_1",
                "sub_1",
                "price_pro",
                1200,
                Some((t(2026, 1, 1), t(2026, 2, 1))),
                "subscription_create",
                t(2026, 1, 1),
            ),
            invoice(
                "in_2",
                "sub_1",
                "price_biz",
                1350,
                None,
                "subscription_update",
                t(2026, 1, 16),
            ),
        ];
        let ledger = Ledger::build(&invoices, &[], &[], &prices);
        assert_eq!(
            held(&ledger, t(2026, 1, 10), "usr_a", "usd").unwrap().1[UNKNOWN_PLAN],
            1200
        );
        assert_eq!(
            held(&ledger, t(2026, 1, 20), "usr_a", "usd").unwrap().1["business"],
            3900
        );
        assert!(ledger.snapshot(t(2026, 2, 1)).is_empty(), "not renewed");
    }
}
