//! The ledger: each paid subscription invoice becomes a segment of time during which one
//! customer's subscription was paid for at one price, valued at that price's monthly rate.

use super::{ChurnMonth, MovementMonth, MrrMonth, PlanMonth, Window, UNKNOWN_PLAN};
use super::{DAYS_PER_MONTH, DAY_MS};
use crate::service::catalog::ActiveCatalog;
use crate::store::at;
use crate::store::revenue::{PaidInvoice, Refund, SubscriptionEnd};
use std::collections::{BTreeMap, BTreeSet, HashMap};

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

/// Part of one subscription's life during which it was paid for at one price.
#[derive(Debug, Clone, PartialEq)]
struct Segment {
    subscription: String,
    user: String,
    currency: String,
    plan: String,
    start: i64,
    end: i64,
    /// Where segments of a subscription overlap, the greatest key wins (the later change).
    key: (i64, i64, String),
    /// Monthly rate, in minor units.
    rate: i64,
}

#[derive(Debug, Clone, PartialEq)]
struct Money {
    at: i64,
    currency: String,
    plan: String,
    amount: i64,
}

/// One customer's MRR in one currency at an instant, and its split by plan.
#[derive(Debug, Clone, Default, PartialEq)]
struct Holding {
    mrr: i64,
    by_plan: BTreeMap<String, i64>,
}

type Snapshot = BTreeMap<(String, String), Holding>;

/// Everything the reports are computed from.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    segments: Vec<Segment>,
    /// Each (customer, currency)'s first instant with MRR above zero.
    first_paid: HashMap<(String, String), i64>,
    collected: Vec<Money>,
    refunds: Vec<Money>,
    currencies: BTreeSet<String>,
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

fn is_full_period_charge(i: &PaidInvoice) -> bool {
    matches!(
        i.billing_reason.as_deref(),
        Some("subscription_create" | "subscription_cycle")
    ) && i.amount_paid > 0
        && matches!((i.period_start, i.period_end), (Some(s), Some(e)) if e > s)
}

impl Ledger {
    pub fn build(
        invoices: &[PaidInvoice],
        ends: &[SubscriptionEnd],
        refunds: &[Refund],
        prices: &PlanPrices,
    ) -> Ledger {
        let rates = list_rates(invoices);
        let rate = |price: &str, currency: &str| -> i64 {
            rates
                .get(&(price.to_owned(), currency.to_owned()))
                .copied()
                .or_else(|| {
                    prices
                        .0
                        .get(price)
                        .filter(|(_, c, _)| c == currency)
                        .map(|(_, _, m)| *m)
                })
                .unwrap_or(0)
        };
        let plan_of = |i: &PaidInvoice| -> String {
            i.plan_id
                .clone()
                .or_else(|| {
                    i.price_id
                        .as_deref()
                        .and_then(|p| prices.plan(p))
                        .map(str::to_owned)
                })
                .unwrap_or_else(|| UNKNOWN_PLAN.to_owned())
        };
        let ends: HashMap<&str, &SubscriptionEnd> = ends
            .iter()
            .map(|e| (e.subscription_id.as_str(), e))
            .collect();

        let mut segments = Vec::new();
        // Periods first: a mid-period change runs until the end of the period it falls in.
        let mut periods: HashMap<&str, Vec<(i64, i64)>> = HashMap::new();
        for i in invoices {
            let (Some(sub), Some(price), Some(s), Some(e)) = (
                i.subscription_id.as_deref(),
                i.price_id.as_deref(),
                i.period_start,
                i.period_end,
            ) else {
                continue;
            };
            if e <= s {
                continue;
            }
            periods.entry(sub).or_default().push((s, e));
            segments.push(Segment {
                subscription: sub.to_owned(),
                user: i.user_id.clone(),
                currency: i.currency.clone(),
                plan: plan_of(i),
                start: s,
                end: e,
                key: (s, i.created, i.invoice_id.clone()),
                rate: rate(price, &i.currency),
            });
        }
        for i in invoices {
            let (Some(sub), Some(price), None, Some("subscription_update")) = (
                i.subscription_id.as_deref(),
                i.price_id.as_deref(),
                i.period_start,
                i.billing_reason.as_deref(),
            ) else {
                continue;
            };
            let covering = periods
                .get(sub)
                .into_iter()
                .flatten()
                .filter(|(s, e)| *s <= i.created && i.created < *e)
                .max();
            let Some(&(_, end)) = covering else {
                continue;
            };
            segments.push(Segment {
                subscription: sub.to_owned(),
                user: i.user_id.clone(),
                currency: i.currency.clone(),
                plan: plan_of(i),
                start: i.created,
                end,
                key: (i.created, i.created, i.invoice_id.clone()),
                rate: rate(price, &i.currency),
            });
        }
        // A trial carries no MRR; a subscription that ended stops counting when it ended.
        for seg in &mut segments {
            if let Some(e) = ends.get(seg.subscription.as_str()) {
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

        let mut first_paid: HashMap<(String, String), i64> = HashMap::new();
        for s in segments.iter().filter(|s| s.rate > 0) {
            let k = (s.user.clone(), s.currency.clone());
            let v = first_paid.entry(k).or_insert(s.start);
            *v = (*v).min(s.start);
        }

        let collected: Vec<Money> = invoices
            .iter()
            .filter(|i| i.amount_paid != 0)
            .map(|i| Money {
                at: i.paid_at,
                currency: i.currency.clone(),
                plan: plan_of(i),
                amount: i.amount_paid,
            })
            .collect();
        // A refund belongs to the plan of the customer's latest payment before it.
        let refunds: Vec<Money> = refunds
            .iter()
            .map(|r| {
                let plan = invoices
                    .iter()
                    .filter(|i| {
                        i.user_id == r.user_id
                            && i.currency == r.currency
                            && i.amount_paid > 0
                            && i.paid_at <= r.refunded_at
                    })
                    .max_by_key(|i| (i.paid_at, i.created))
                    .map(plan_of)
                    .unwrap_or_else(|| UNKNOWN_PLAN.to_owned());
                Money {
                    at: r.refunded_at,
                    currency: r.currency.clone(),
                    plan,
                    amount: r.amount_refunded,
                }
            })
            .collect();

        let mut currencies: BTreeSet<String> =
            prices.0.values().map(|(_, c, _)| c.clone()).collect();
        currencies.extend(segments.iter().map(|s| s.currency.clone()));
        currencies.extend(collected.iter().chain(&refunds).map(|m| m.currency.clone()));
        Ledger {
            segments,
            first_paid,
            collected,
            refunds,
            currencies,
        }
    }

    /// Every customer's MRR at `t`: per subscription, the segment holding `t` with the
    /// greatest key; summed per (customer, currency).
    fn snapshot(&self, t: i64) -> Snapshot {
        let mut winners: HashMap<&str, &Segment> = HashMap::new();
        for s in self.segments.iter().filter(|s| s.start <= t && t < s.end) {
            let w = winners.entry(s.subscription.as_str()).or_insert(s);
            if s.key > w.key {
                *w = s;
            }
        }
        let mut snap = Snapshot::new();
        for s in winners.values().filter(|s| s.rate > 0) {
            let h = snap
                .entry((s.user.clone(), s.currency.clone()))
                .or_default();
            h.mrr += s.rate;
            *h.by_plan.entry(s.plan.clone()).or_default() += s.rate;
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

    fn money_in(&self, list: &[Money], w: &Window) -> BTreeMap<(usize, String, String), i64> {
        let mut sums = BTreeMap::new();
        for m in list {
            if let Some(i) = w.month_of(m.at) {
                *sums
                    .entry((i, m.currency.clone(), m.plan.clone()))
                    .or_insert(0) += m.amount;
            }
        }
        sums
    }

    pub fn mrr(&self, w: &Window) -> Vec<MrrMonth> {
        let snaps = self.snapshots(w);
        let collected = self.money_in(&self.collected, w);
        let refunded = self.money_in(&self.refunds, w);
        let total = |sums: &BTreeMap<(usize, String, String), i64>, i: usize, c: &str| -> i64 {
            sums.iter()
                .filter(|((m, cur, _), _)| *m == i && cur == c)
                .map(|(_, v)| v)
                .sum()
        };
        let mut rows = Vec::new();
        for (i, label) in w.labels.iter().enumerate() {
            for c in &self.currencies {
                let held: Vec<&Holding> = snaps[i + 1]
                    .iter()
                    .filter(|((_, cur), _)| cur == c)
                    .map(|(_, h)| h)
                    .collect();
                let mrr: i64 = held.iter().map(|h| h.mrr).sum();
                let paying = held.len() as i64;
                let (col, refd) = (total(&collected, i, c), total(&refunded, i, c));
                rows.push(MrrMonth {
                    month: label.clone(),
                    currency: c.clone(),
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
        let snaps = self.snapshots(w);
        let mut rows = Vec::new();
        for (i, label) in w.labels.iter().enumerate() {
            let (before, after) = (&snaps[i], &snaps[i + 1]);
            let month_start = w.starts[i];
            for c in &self.currencies {
                let mut r = MovementMonth {
                    month: label.clone(),
                    currency: c.clone(),
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
                let keys: BTreeSet<&(String, String)> = before
                    .keys()
                    .chain(after.keys())
                    .filter(|(_, cur)| cur == c)
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
        self.movements(w)
            .into_iter()
            .enumerate()
            .map(|(n, m)| {
                let i = n / self.currencies.len().max(1);
                let at_start = snaps[i]
                    .keys()
                    .filter(|(_, cur)| *cur == m.currency)
                    .count() as i64;
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
        // (month, currency, plan) → row; a BTreeMap keeps the rows sorted.
        let mut rows: BTreeMap<(usize, String, String), PlanMonth> = BTreeMap::new();
        fn row<'a>(
            rows: &'a mut BTreeMap<(usize, String, String), PlanMonth>,
            w: &Window,
            i: usize,
            currency: &str,
            plan: &str,
        ) -> &'a mut PlanMonth {
            rows.entry((i, currency.to_owned(), plan.to_owned()))
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
        for i in 0..w.labels.len() {
            for ((_, currency), h) in &snaps[i + 1] {
                for (plan, mrr) in &h.by_plan {
                    let r = row(&mut rows, w, i, currency, plan);
                    r.customers += 1;
                    r.mrr += mrr;
                }
            }
        }
        for ((i, currency, plan), amount) in &collected {
            row(&mut rows, w, *i, currency, plan).collected += amount;
        }
        for ((i, currency, plan), amount) in &refunded {
            row(&mut rows, w, *i, currency, plan).refunded += amount;
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
fn list_rates(invoices: &[PaidInvoice]) -> HashMap<(String, String), i64> {
    // (price, currency) → monthly amount → (count, latest created)
    let mut seen: HashMap<(String, String), HashMap<i64, (usize, i64)>> = HashMap::new();
    for i in invoices.iter().filter(|i| is_full_period_charge(i)) {
        let (Some(price), Some(s), Some(e)) = (i.price_id.as_deref(), i.period_start, i.period_end)
        else {
            continue;
        };
        let m = monthly(i.amount_paid, s, e);
        let slot = seen
            .entry((price.to_owned(), i.currency.clone()))
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
            user_id: "usr_a".into(),
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
        let key = ("usr_a".to_owned(), "usd".to_owned());
        assert!(ledger.snapshot(ts + DAY).is_empty(), "trialing");
        assert_eq!(ledger.snapshot(trial_end + DAY)[&key].mrr, 1200);
        assert_eq!(ledger.first_paid[&key], trial_end);
        assert_eq!(
            ledger.snapshot(t(2026, 3, 20))[&key].by_plan[UNKNOWN_PLAN],
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
        let key = ("usr_a".to_owned(), "usd".to_owned());
        assert_eq!(
            ledger.snapshot(t(2026, 1, 10))[&key].by_plan[UNKNOWN_PLAN],
            1200
        );
        assert_eq!(
            ledger.snapshot(t(2026, 1, 20))[&key].by_plan["business"],
            3900
        );
        assert!(ledger.snapshot(t(2026, 2, 1)).is_empty(), "not renewed");
    }
}
