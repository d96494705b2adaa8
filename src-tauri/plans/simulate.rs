//! `tollgate plans simulate`: replays timestamped usage attempts against a catalog with a
//! simulated clock, using the same rules as the live meter, and reports what was allowed,
//! what was denied and why, and the resulting usage and credits.

use super::periods;
use super::rules::{self, Credits, Rule};
use super::Catalog;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// One line of the events file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attempt {
    pub user: String,
    pub plan: String,
    pub metric: String,
    #[serde(default = "one")]
    pub amount: i64,
    pub at: DateTime<Utc>,
}

fn one() -> i64 {
    1
}

/// What happened to one attempt.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Outcome {
    pub line: usize,
    pub user: String,
    pub plan: String,
    pub metric: String,
    pub amount: i64,
    pub at: DateTime<Utc>,
    pub allowed: bool,
    /// `quota_exceeded`, `insufficient_credits`, `unknown_metric` or `unknown_plan`.
    pub reason: Option<String>,
    pub used: i64,
    pub limit: Option<i64>,
    pub credits: Option<i64>,
}

/// Totals per user, metric and window.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PeriodSummary {
    pub user: String,
    pub metric: String,
    pub plan: String,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub allowed: i64,
    pub denied: i64,
    pub used: i64,
    pub limit: Option<i64>,
    pub credits: Option<i64>,
    pub denials: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Simulation {
    pub outcomes: Vec<Outcome>,
    pub periods: Vec<PeriodSummary>,
}

/// Reads JSON lines (blank lines and `#` comments skipped); errors name the line.
pub fn read_attempts(src: &str) -> Result<Vec<(usize, Attempt)>, String> {
    let mut out = Vec::new();
    for (i, line) in src.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let a: Attempt = serde_json::from_str(t).map_err(|e| format!("line {}: {e}", i + 1))?;
        if a.amount <= 0 {
            return Err(format!("line {}: amount must be 1 or more", i + 1));
        }
        out.push((i + 1, a));
    }
    Ok(out)
}

struct UserState {
    plan: String,
    anchor: DateTime<Utc>,
}

/// Replays the attempts in time order (ties keep file order).
pub fn simulate(catalog: &Catalog, mut attempts: Vec<(usize, Attempt)>) -> Simulation {
    attempts.sort_by_key(|(line, a)| (a.at, *line));
    let mut users: HashMap<String, UserState> = HashMap::new();
    let mut counters: HashMap<(String, String, i64), i64> = HashMap::new();
    let mut credits: HashMap<(String, String), Credits> = HashMap::new();
    let mut periods: BTreeMap<(String, String, i64), PeriodSummary> = BTreeMap::new();
    let mut outcomes = Vec::new();
    for (line, a) in attempts {
        let state = users.entry(a.user.clone()).or_insert(UserState {
            plan: a.plan.clone(),
            anchor: a.at,
        });
        state.plan = a.plan.clone();
        let mut outcome = Outcome {
            line,
            user: a.user.clone(),
            plan: a.plan.clone(),
            metric: a.metric.clone(),
            amount: a.amount,
            at: a.at,
            allowed: false,
            reason: None,
            used: 0,
            limit: None,
            credits: None,
        };
        let Some(plan) = catalog.plan(&state.plan) else {
            outcome.reason = Some("unknown_plan".into());
            outcomes.push(outcome);
            continue;
        };
        let billing = periods::billing_period_at(state.anchor, plan.price.interval, a.at);
        let Some(rule) = rules::rule_for(plan, &catalog.metrics, &a.metric, a.at, billing) else {
            outcome.reason = Some("unknown_metric".into());
            outcomes.push(outcome);
            continue;
        };
        let window = rule.window();
        let start = window.start.timestamp_millis();
        let decision = match rule {
            Rule::Limit { limit, .. } => {
                let used = counters
                    .entry((a.user.clone(), a.metric.clone(), start))
                    .or_insert(0);
                outcome.limit = limit;
                let decision = rules::consume_within(limit, *used, a.amount);
                if let Ok(after) = decision {
                    *used = after;
                }
                outcome.used = *used;
                decision.map(drop)
            }
            Rule::Credits {
                allowance,
                rollover,
                ..
            } => {
                let slot = credits
                    .entry((a.user.clone(), a.metric.clone()))
                    .or_insert(Credits::EMPTY);
                *slot = rules::renew_credits(*slot, allowance, rollover, window).credits;
                outcome.limit = Some(allowance);
                let decision = rules::spend_credits(slot.balance, a.amount);
                if let Ok(after) = decision {
                    slot.balance = after;
                }
                outcome.credits = Some(slot.balance);
                outcome.used = rules::credits_used(allowance, slot.balance);
                decision.map(drop)
            }
        };
        match decision {
            Ok(()) => outcome.allowed = true,
            Err(denial) => outcome.reason = Some(denial.code().into()),
        }
        let summary = periods
            .entry((a.user.clone(), a.metric.clone(), start))
            .or_insert(PeriodSummary {
                user: a.user.clone(),
                metric: a.metric.clone(),
                plan: plan.id.clone(),
                period_start: window.start,
                period_end: window.end,
                allowed: 0,
                denied: 0,
                used: 0,
                limit: outcome.limit,
                credits: None,
                denials: BTreeMap::new(),
            });
        summary.plan = plan.id.clone();
        summary.limit = outcome.limit;
        summary.used = outcome.used;
        summary.credits = outcome.credits;
        if outcome.allowed {
            summary.allowed += a.amount;
        } else {
            summary.denied += a.amount;
            *summary
                .denials
                .entry(outcome.reason.clone().unwrap_or_default())
                .or_insert(0) += 1;
        }
        outcomes.push(outcome);
    }
    Simulation {
        outcomes,
        periods: periods.into_values().collect(),
    }
}

/// The plain-text table `plans simulate` prints.
pub fn render_table(sim: &Simulation) -> String {
    let mut rows = vec![[
        "USER".to_owned(),
        "METRIC".into(),
        "PLAN".into(),
        "PERIOD".into(),
        "ALLOWED".into(),
        "DENIED".into(),
        "USED".into(),
        "LIMIT".into(),
        "CREDITS".into(),
        "WHY DENIED".into(),
    ]];
    for p in &sim.periods {
        let span = if p.period_end - p.period_start <= chrono::Duration::days(1) {
            p.period_start.format("%Y-%m-%d").to_string()
        } else {
            format!(
                "{}..{}",
                p.period_start.format("%Y-%m-%d"),
                p.period_end.format("%Y-%m-%d")
            )
        };
        let why: Vec<String> = p.denials.iter().map(|(k, n)| format!("{k} x{n}")).collect();
        rows.push([
            p.user.clone(),
            p.metric.clone(),
            p.plan.clone(),
            span,
            p.allowed.to_string(),
            p.denied.to_string(),
            p.used.to_string(),
            p.limit
                .map(|l| l.to_string())
                .unwrap_or_else(|| "unlimited".into()),
            p.credits
                .map(|c| c.to_string())
                .unwrap_or_else(|| "-".into()),
            if why.is_empty() {
                "-".into()
            } else {
                why.join(", ")
            },
        ]);
    }
    let widths: Vec<usize> = (0..10)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        let cells: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    let allowed = sim.outcomes.iter().filter(|o| o.allowed).count();
    let unknown: Vec<String> = sim
        .outcomes
        .iter()
        .filter(|o| {
            matches!(
                o.reason.as_deref(),
                Some("unknown_metric") | Some("unknown_plan")
            )
        })
        .map(|o| {
            format!(
                "line {}: {} ({} / {})",
                o.line,
                o.reason.as_deref().unwrap_or(""),
                o.plan,
                o.metric
            )
        })
        .collect();
    out.push_str(&format!(
        "\n{} attempts: {} allowed, {} denied\n",
        sim.outcomes.len(),
        allowed,
        sim.outcomes.len() - allowed
    ));
    for u in unknown {
        out.push_str(&format!("{u}\n"));
    }
    out
}
