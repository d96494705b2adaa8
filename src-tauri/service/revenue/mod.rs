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
use super::permissions::Action;
use super::Engine;
use crate::error::{Error, Result};
use crate::store::{self, at};
use chrono::{DateTime, Datelike, TimeZone, Utc};
use serde::Serialize;
use std::sync::Arc;

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

mod csv;
mod ledger;

pub use csv::CsvRow;
pub use ledger::{monthly, Ledger, LedgerBuilder, PlanPrices};

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

    /// The ledger of the facts as they are now: the one built last while no fact and no plan
    /// price changed since (see [`CachedLedger`]), else built again, once however many
    /// reports ask at the same moment.
    async fn revenue_ledger(&self) -> Result<(Arc<Ledger>, i64)> {
        let pool = self.db().read();
        let catalog = self.catalog().await?;
        let mut cached = self.inner.revenue.lock().await;
        let version = store::revenue::version(pool).await?;
        let key = (version, catalog.version);
        let now = self.now_ms();
        if let Some(c) = cached.as_mut().filter(|c| c.key == key) {
            c.used = std::time::Instant::now();
            return Ok((c.ledger.clone(), now));
        }
        *cached = None;
        let prices = PlanPrices::from_catalog(&catalog);
        let mut builder = LedgerBuilder::new(&prices);
        store::revenue::each_paid_invoice(pool, |i| builder.invoice(&i)).await?;
        let ends = store::revenue::subscription_ends(pool).await?;
        let refunds = store::revenue::refunds(pool).await?;
        let ledger = Arc::new(builder.build(&ends, &refunds));
        *cached = Some(CachedLedger {
            key,
            ledger: ledger.clone(),
            used: std::time::Instant::now(),
        });
        drop(cached);
        self.forget_idle_ledger(&ledger);
        Ok((ledger, now))
    }

    /// Drops `built` once no report has used it for [`LEDGER_IDLE`], so that a large history
    /// does not stay in memory after finance closes the screen. The watch ends as soon as
    /// another ledger replaces it (that one has its own).
    fn forget_idle_ledger(&self, built: &Arc<Ledger>) {
        let (engine, built) = (self.clone(), Arc::downgrade(built));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(LEDGER_IDLE).await;
                let mut cached = engine.inner.revenue.lock().await;
                let Some(c) = cached.as_ref() else { return };
                if !std::ptr::eq(Arc::as_ptr(&c.ledger), built.as_ptr()) {
                    return;
                }
                if c.used.elapsed() >= LEDGER_IDLE {
                    *cached = None;
                    return;
                }
            }
        });
    }
}

/// How long a built ledger is kept without a report asking for it.
const LEDGER_IDLE: std::time::Duration = std::time::Duration::from_secs(600);

/// The last ledger built, for the facts version and catalog version it was built from.
#[derive(Debug)]
pub(crate) struct CachedLedger {
    key: (i64, i64),
    ledger: Arc<Ledger>,
    used: std::time::Instant,
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
