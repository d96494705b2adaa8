//! CSV export of the revenue tables (RFC 4180, amounts in minor units, rates as fractions).

use super::{ChurnMonth, MovementMonth, MrrMonth, PlanMonth, Report};
use serde::Serialize;

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
