//! `tollgate revenue …`: the finance tables in a terminal, as an aligned table or as CSV.
//! The operator acts with admin rights, like `tollgate users …`.

use super::admin_cli::operator;
use crate::config::Settings;
use crate::service::revenue::{CsvRow, Report};
use crate::service::Engine;
use clap::{Args, Subcommand};
use serde::Serialize;

#[derive(Subcommand, Debug)]
pub enum RevenueCommand {
    /// MRR, ARR, paying customers, ARPU, collected and refunded money per month.
    Mrr(TableArgs),
    /// MRR movements per month: new, expansion, contraction, churned, reactivation.
    Movements(TableArgs),
    /// Customers, MRR, collected and refunded money per plan and month.
    ByPlan(TableArgs),
    /// Customer churn and revenue churn rates per month.
    Churn(TableArgs),
}

#[derive(Args, Debug)]
pub struct TableArgs {
    /// How many months, ending with the current one (UTC).
    #[arg(long, default_value_t = 12)]
    months: i64,
    /// Print CSV (the same columns as `?format=csv` over HTTP).
    #[arg(long, conflicts_with = "json")]
    csv: bool,
    /// Print JSON (the same body as the HTTP API).
    #[arg(long)]
    json: bool,
}

pub async fn run(settings: Settings, cmd: RevenueCommand) -> anyhow::Result<()> {
    let engine = Engine::start(settings).await?;
    let result = run_table(&engine, cmd).await;
    engine.shutdown().await;
    result
}

async fn run_table(engine: &Engine, cmd: RevenueCommand) -> anyhow::Result<()> {
    let op = operator();
    let out = match cmd {
        RevenueCommand::Mrr(a) => render(
            engine
                .admin_revenue_mrr(&op, Some(a.months))
                .await
                .map_err(explain)?,
            &a,
        )?,
        RevenueCommand::Movements(a) => render(
            engine
                .admin_revenue_movements(&op, Some(a.months))
                .await
                .map_err(explain)?,
            &a,
        )?,
        RevenueCommand::ByPlan(a) => render(
            engine
                .admin_revenue_by_plan(&op, Some(a.months))
                .await
                .map_err(explain)?,
            &a,
        )?,
        RevenueCommand::Churn(a) => render(
            engine
                .admin_revenue_churn(&op, Some(a.months))
                .await
                .map_err(explain)?,
            &a,
        )?,
    };
    print!("{out}");
    Ok(())
}

/// A refusal in words: the messages of a validation error, not only its title.
fn explain(e: crate::Error) -> anyhow::Error {
    match e {
        crate::Error::Validation(fields) => anyhow::anyhow!(fields
            .iter()
            .map(|f| f.message.as_str())
            .collect::<Vec<_>>()
            .join("; ")),
        e => e.into(),
    }
}

fn render<Row: CsvRow + Serialize>(report: Report<Row>, a: &TableArgs) -> anyhow::Result<String> {
    if a.csv {
        return Ok(report.to_csv());
    }
    if a.json {
        return Ok(format!("{}\n", serde_json::to_string_pretty(&report)?));
    }
    let mut lines: Vec<Vec<String>> = vec![Row::HEADER.iter().map(|h| h.to_uppercase()).collect()];
    lines.extend(report.rows.iter().map(CsvRow::cells));
    let widths: Vec<usize> = (0..Row::HEADER.len())
        .map(|c| {
            lines
                .iter()
                .map(|l| l[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for l in &lines {
        let cells: Vec<String> = l
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out.push_str(&format!(
        "as of {}; amounts in minor units (cents); definitions: docs/revenue.md\n",
        report.as_of.format("%Y-%m-%d %H:%M UTC")
    ));
    Ok(out)
}
