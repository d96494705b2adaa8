//! Revenue for finance: MRR and ARR, MRR movements, revenue by plan, churn rates, ARPU and
//! refunds, all derived from the Stripe facts the webhook applier keeps (paid invoices, how
//! subscriptions ended, refunds). `docs/revenue.md` defines every figure; this module is the
//! one implementation of those definitions, used by the HTTP API and the CLI.
//!
//! The core is a pure [`Ledger`]: each paid subscription invoice becomes a segment of time
//! during which one customer's subscription was paid for at one price, valued at that price's
//! monthly rate. MRR at an instant is read off the segments; months are compared through
//! snapshots at month boundaries.

use super::admin::Actor;
use super::catalog::ActiveCatalog;
use super::permissions::Action;
use super::Engine;
use crate::error::{Error, Result};
use crate::store::revenue::{PaidInvoice, Refund, SubscriptionEnd};
use crate::store::{self, at};
use chrono::{DateTime, Datelike, TimeZone, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Months a report covers when not told.
pub const DEFAULT_MONTHS: i64 = 12;
/// At most ten years per report.
pub const MAX_MONTHS: i64 = 120;

/// Average days in a month (365.25 / 12), to count the months an invoice's period spans.
const DAYS_PER_MONTH: f64 = 30.4375;
const DAY_MS: f64 = 86_400_000.0;

/// The plan name for money no plan can be found for.
pub const UNKNOWN_PLAN: &str = "(unknown)";

/// Checks the `months` a caller asked for (1 to [`MAX_MONTHS`], [`DEFAULT_MONTHS`] when absent).
pub fn check_months(months: Option<i64>) -> Result<usize> {
    let m = months.unwrap_or(DEFAULT_MONTHS);
    if !(1..=MAX_MONTHS).contains(&m) {
        return Err(Error::validation(
            "months",
            "out_of_range",
            &format!("months must be between 1 and {MAX_MONTHS}"),
        ));
    }
    Ok(m as usize)
}

// ---------------------------------------------------------------------------------------------
// Report rows

/// MRR, ARR, ARPU and money collected in one month, per currency.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub struct MrrMonth {
    /// `YYYY-MM` (UTC).
    pub month: String,
    pub currency: String,
    /// When the snapshot was taken: the first instant of the next month, or now for the
    /// current month.
    pub snapshot_at: DateTime<Utc>,
    /// Monthly recurring revenue at `snapshot_at`, in minor units (cents).
    pub mrr: i64,
    /// `mrr × 12`.
    pub arr: i64,
    /// Customers whose MRR is above zero at `snapshot_at`.
    pub paying_customers: i64,
    /// `mrr / paying_customers`, rounded half up; 0 without paying customers.
    pub arpu: i64,
    /// `amount_paid` of invoices paid during the month.
    pub collected: i64,
    /// Refunds made during the month.
    pub refunded: i64,
    /// `collected − refunded`.
    pub net_revenue: i64,
}

/// How MRR changed during one month, per currency. Lost amounts are positive numbers.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub struct MovementMonth {
    pub month: String,
    pub currency: String,
    /// MRR at the first instant of the month.
    pub start_mrr: i64,
    pub new: i64,
    pub expansion: i64,
    pub contraction: i64,
    pub churned: i64,
    pub reactivation: i64,
    /// `new + expansion + reactivation − contraction − churned` (= `end_mrr − start_mrr`).
    pub net_new: i64,
    /// MRR at the month's snapshot (as in the `mrr` table).
    pub end_mrr: i64,
    pub new_customers: i64,
    pub expansion_customers: i64,
    pub contraction_customers: i64,
    pub churned_customers: i64,
    pub reactivated_customers: i64,
}

/// One plan in one month, per currency.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub struct PlanMonth {
    pub month: String,
    pub plan: String,
    pub currency: String,
    /// Customers paying for this plan at the month's snapshot.
    pub customers: i64,
    /// The plan's share of MRR at the month's snapshot.
    pub mrr: i64,
    /// `amount_paid` of this plan's invoices paid during the month.
    pub collected: i64,
    /// Refunds during the month, attributed to the plan of the customer's latest paid invoice.
    pub refunded: i64,
    pub net_revenue: i64,
}

/// Customer and revenue churn in one month, per currency.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub struct ChurnMonth {
    pub month: String,
    pub currency: String,
    /// Paying customers at the first instant of the month.
    pub customers_at_start: i64,
    pub churned_customers: i64,
    /// `churned_customers / customers_at_start`; null without customers at the start.
    pub customer_churn_rate: Option<f64>,
    pub mrr_at_start: i64,
    pub churned_mrr: i64,
    pub contraction_mrr: i64,
    /// `(churned_mrr + contraction_mrr) / mrr_at_start`; null when `mrr_at_start` is 0.
    pub revenue_churn_rate: Option<f64>,
}

/// A revenue table and when it was computed.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub struct Report<Row> {
    pub as_of: DateTime<Utc>,
    pub rows: Vec<Row>,
}

/// The revenue tables, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub enum RevenueTable {
    Mrr,
    Movements,
    ByPlan,
    Churn,
}

/// A row of a table that can be exported as CSV.
pub trait CsvRow {
    const HEADER: &'static [&'static str];
    fn cells(&self) -> Vec<String>;
}

impl<Row: CsvRow + Serialize> Report<Row> {
    /// The rows as RFC 4180 CSV with a header line (amounts in minor units, rates as fractions).
    pub fn to_csv(&self) -> String {
        let mut out = Row::HEADER.join(",");
        out.push_str("\r\n");
        for row in &self.rows {
            let cells: Vec<String> = row.cells().iter().map(|c| csv_cell(c)).collect();
            out.push_str(&cells.join(","));
            out.push_str("\r\n");
        }
        out
    }
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn rate_cell(r: Option<f64>) -> String {
    r.map(|r| format!("{r:.4}")).unwrap_or_default()
}

impl CsvRow for MrrMonth {
    const HEADER: &'static [&'static str] = &[
        "month",
        "currency",
        "snapshot_at",
        "mrr",
        "arr",
        "paying_customers",
        "arpu",
        "collected",
        "refunded",
        "net_revenue",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.month.clone(),
            self.currency.clone(),
            self.snapshot_at.to_rfc3339(),
            self.mrr.to_string(),
            self.arr.to_string(),
            self.paying_customers.to_string(),
            self.arpu.to_string(),
            self.collected.to_string(),
            self.refunded.to_string(),
            self.net_revenue.to_string(),
        ]
    }
}

impl CsvRow for MovementMonth {
    const HEADER: &'static [&'static str] = &[
        "month",
        "currency",
        "start_mrr",
        "new",
        "expansion",
        "contraction",
        "churned",
        "reactivation",
        "net_new",
        "end_mrr",
        "new_customers",
        "expansion_customers",
        "contraction_customers",
        "churned_customers",
        "reactivated_customers",
    ];
    fn cells(&self) -> Vec<String> {
        let n = [
            self.start_mrr,
            self.new,
            self.expansion,
            self.contraction,
            self.churned,
            self.reactivation,
            self.net_new,
            self.end_mrr,
            self.new_customers,
            self.expansion_customers,
            self.contraction_customers,
            self.churned_customers,
            self.reactivated_customers,
        ];
        let mut cells = vec![self.month.clone(), self.currency.clone()];
        cells.extend(n.iter().map(i64::to_string));
        cells
    }
}

impl CsvRow for PlanMonth {
    const HEADER: &'static [&'static str] = &[
        "month",
        "plan",
        "currency",
        "customers",
        "mrr",
        "collected",
        "refunded",
        "net_revenue",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.month.clone(),
            self.plan.clone(),
            self.currency.clone(),
            self.customers.to_string(),
            self.mrr.to_string(),
            self.collected.to_string(),
            self.refunded.to_string(),
            self.net_revenue.to_string(),
        ]
    }
}

impl CsvRow for ChurnMonth {
    const HEADER: &'static [&'static str] = &[
        "month",
        "currency",
        "customers_at_start",
        "churned_customers",
        "customer_churn_rate",
        "mrr_at_start",
        "churned_mrr",
        "contraction_mrr",
        "revenue_churn_rate",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.month.clone(),
            self.currency.clone(),
            self.customers_at_start.to_string(),
            self.churned_customers.to_string(),
            rate_cell(self.customer_churn_rate),
            self.mrr_at_start.to_string(),
            self.churned_mrr.to_string(),
            self.contraction_mrr.to_string(),
            rate_cell(self.revenue_churn_rate),
        ]
    }
}

// ---------------------------------------------------------------------------------------------
// The service

impl Engine {
    pub async fn admin_revenue_mrr(
        &self,
        actor: &Actor,
        months: Option<i64>,
    ) -> Result<Report<MrrMonth>> {
        self.revenue_report(actor, months, Ledger::mrr).await
    }

    pub async fn admin_revenue_movements(
        &self,
        actor: &Actor,
        months: Option<i64>,
    ) -> Result<Report<MovementMonth>> {
        self.revenue_report(actor, months, Ledger::movements).await
    }

    pub async fn admin_revenue_by_plan(
        &self,
        actor: &Actor,
        months: Option<i64>,
    ) -> Result<Report<PlanMonth>> {
        self.revenue_report(actor, months, Ledger::by_plan).await
    }

    pub async fn admin_revenue_churn(
        &self,
        actor: &Actor,
        months: Option<i64>,
    ) -> Result<Report<ChurnMonth>> {
        self.revenue_report(actor, months, Ledger::churn).await
    }

    /// One of the tables as CSV (the console's export, `?format=csv` over HTTP).
    pub async fn admin_revenue_csv(
        &self,
        actor: &Actor,
        table: RevenueTable,
        months: Option<i64>,
    ) -> Result<String> {
        Ok(match table {
            RevenueTable::Mrr => self.admin_revenue_mrr(actor, months).await?.to_csv(),
            RevenueTable::Movements => self.admin_revenue_movements(actor, months).await?.to_csv(),
            RevenueTable::ByPlan => self.admin_revenue_by_plan(actor, months).await?.to_csv(),
            RevenueTable::Churn => self.admin_revenue_churn(actor, months).await?.to_csv(),
        })
    }

    /// The steps every revenue table shares: permission, month range, ledger, report.
    async fn revenue_report<Row: Serialize>(
        &self,
        actor: &Actor,
        months: Option<i64>,
        table: impl FnOnce(&Ledger, &Window) -> Vec<Row>,
    ) -> Result<Report<Row>> {
        self.authorize(actor, Action::ViewRevenue)?;
        let n = check_months(months)?;
        let (ledger, now) = self.revenue_ledger().await?;
        Ok(report(now, table(&ledger, &Window::ending_at(now, n))))
    }

    async fn revenue_ledger(&self) -> Result<(Ledger, i64)> {
        let pool = self.db().read();
        let invoices = store::revenue::paid_invoices(pool).await?;
        let ends = store::revenue::subscription_ends(pool).await?;
        let refunds = store::revenue::refunds(pool).await?;
        let prices = PlanPrices::from_catalog(&*self.catalog().await?);
        Ok((
            Ledger::build(&invoices, &ends, &refunds, &prices),
            self.now_ms(),
        ))
    }
}

fn report<Row: Serialize>(now: i64, rows: Vec<Row>) -> Report<Row> {
    Report {
        as_of: at(now),
        rows,
    }
}

// ---------------------------------------------------------------------------------------------
// Months

/// The months of a report: `starts[i]` is the first instant of month i, `points[i]` the
/// instant of its snapshot (the next month's first instant, or now for the current month).
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub labels: Vec<String>,
    pub starts: Vec<i64>,
    pub points: Vec<i64>,
}

impl Window {
    /// The `n` months (UTC) that end with the month of `now`.
    pub fn ending_at(now: i64, n: usize) -> Window {
        let t = at(now);
        let mut y = t.year();
        let mut m = t.month() as i32 - (n as i32 - 1);
        while m < 1 {
            m += 12;
            y -= 1;
        }
        let mut w = Window {
            labels: Vec::with_capacity(n),
            starts: Vec::with_capacity(n),
            points: Vec::with_capacity(n),
        };
        for _ in 0..n {
            let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            w.labels.push(format!("{y:04}-{m:02}"));
            w.starts.push(month_start(y, m));
            w.points.push(month_start(ny, nm).min(now));
            (y, m) = (ny, nm);
        }
        w
    }

    /// Where money paid at `t` is counted: the month whose range holds it.
    fn month_of(&self, t: i64) -> Option<usize> {
        let i = self.starts.partition_point(|s| *s <= t).checked_sub(1)?;
        let end = self.starts.get(i + 1).copied().unwrap_or(i64::MAX);
        (t < end && t <= *self.points.last()?).then_some(i)
    }
}

fn month_start(y: i32, m: i32) -> i64 {
    store::ms(
        Utc.with_ymd_and_hms(y, m as u32, 1, 0, 0, 0)
            .single()
            .expect("the first of a month exists"),
    )
}

// ---------------------------------------------------------------------------------------------
// The ledger

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
