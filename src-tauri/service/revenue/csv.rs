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

/// How one field is written in a cell.
trait CsvCell {
    fn cell(&self) -> String;
}

impl CsvCell for String {
    fn cell(&self) -> String {
        self.clone()
    }
}

impl CsvCell for i64 {
    fn cell(&self) -> String {
        self.to_string()
    }
}

impl CsvCell for chrono::DateTime<chrono::Utc> {
    fn cell(&self) -> String {
        self.to_rfc3339()
    }
}

/// A rate as a fraction with four decimals; empty where there is none.
impl CsvCell for Option<f64> {
    fn cell(&self) -> String {
        self.map(|r| format!("{r:.4}")).unwrap_or_default()
    }
}

/// A table's columns are its fields, in order, named as in JSON.
macro_rules! csv_columns {
    ($($row:ty { $($field:ident),+ $(,)? })+) => {$(
        impl CsvRow for $row {
            const HEADER: &'static [&'static str] = &[$(stringify!($field)),+];
            fn cells(&self) -> Vec<String> {
                vec![$(CsvCell::cell(&self.$field)),+]
            }
        }
    )+};
}

csv_columns! {
    MrrMonth {
        month, currency, snapshot_at, mrr, arr, paying_customers, arpu, collected, refunded,
        net_revenue,
    }
    MovementMonth {
        month, currency, start_mrr, new, expansion, contraction, churned, reactivation, net_new,
        end_mrr, new_customers, expansion_customers, contraction_customers, churned_customers,
        reactivated_customers,
    }
    PlanMonth { month, plan, currency, customers, mrr, collected, refunded, net_revenue }
    ChurnMonth {
        month, currency, customers_at_start, churned_customers, customer_churn_rate,
        mrr_at_start, churned_mrr, contraction_mrr, revenue_churn_rate,
    }
}
