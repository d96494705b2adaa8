//! The plans workbench for staff: the catalog with every plan version and its subscribers, and
//! `plans check`, `diff`, `simulate`, `apply` and `migrate` behind the permission table (the
//! console and `/v1/admin/plans/*` call these).

use super::admin::Actor;
use super::catalog::{ApplyOutcome, PlanChange, PlanVersion};
use super::permissions::Action;
use super::Engine;
use crate::error::{Error, Result};
use crate::plans::simulate::{self, Simulation};
use crate::plans::{self, Interval};
use crate::store::catalogs;
use serde::Serialize;
use std::collections::HashMap;

/// One published plan version.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub struct PlanVersionInfo {
    /// `plv_…`.
    pub id: crate::domain::PlanVersionId,
    pub plan_id: String,
    pub version: i64,
    /// `pro@2`.
    pub label: String,
    pub name: String,
    /// Minor units (cents) per interval.
    pub price: i64,
    pub currency: String,
    pub interval: Interval,
    /// Part of the current catalog (new subscribers get it).
    pub current: bool,
    pub is_default: bool,
    /// Subscriptions on this version.
    pub subscribers: i64,
}

/// The current catalog and every plan version ever published.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub struct PlanCatalog {
    pub catalog_version: i64,
    pub default_plan: String,
    pub metrics: Vec<String>,
    /// By plan id, then version.
    pub versions: Vec<PlanVersionInfo>,
}

/// A problem in a plan file, with the line it is on.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub struct PlanProblem {
    /// 1-based.
    pub line: i64,
    /// 1-based, in characters.
    pub column: i64,
    pub message: String,
    /// The offending line's text.
    pub source_line: String,
}

/// What `plans check` says about a file.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub struct PlanCheck {
    /// No problems: the file may be applied.
    pub ok: bool,
    /// The plan ids the file defines (empty when it cannot be read).
    pub plans: Vec<String>,
    pub metrics: Vec<String>,
    pub problems: Vec<PlanProblem>,
}

/// `plans simulate`: every attempt's outcome, totals per period, and the CLI's table.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub struct SimulationReport {
    #[serde(flatten)]
    pub simulation: Simulation,
    /// The same table `tollgate plans simulate` prints.
    pub table: String,
}

/// Subscribers moved from one plan version to another.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub struct Migration {
    pub from: String,
    pub to: String,
    pub moved: i64,
}

/// `plans check` of `source`, every problem with its line's text.
pub fn check_plan_file(source: &str) -> PlanCheck {
    let report = plans::check(source);
    let lines: Vec<&str> = source.lines().collect();
    let problems: Vec<PlanProblem> = report
        .errors
        .iter()
        .map(|p| PlanProblem {
            line: p.line as i64,
            column: p.column as i64,
            message: p.message.clone(),
            source_line: lines
                .get(p.line.saturating_sub(1))
                .map(|l| l.to_string())
                .unwrap_or_default(),
        })
        .collect();
    let (plans, metrics) = match &report.catalog {
        Some(c) => (
            c.plans.iter().map(|p| p.id.clone()).collect(),
            c.metrics.clone(),
        ),
        None => (Vec::new(), Vec::new()),
    };
    PlanCheck {
        ok: problems.is_empty() && report.catalog.is_some(),
        plans,
        metrics,
        problems,
    }
}

impl Engine {
    /// The current catalog and every plan version with its subscriber count.
    pub async fn admin_plan_catalog(&self, actor: &Actor) -> Result<PlanCatalog> {
        self.authorize(actor, Action::ViewPlans)?;
        let current = self.catalog().await?;
        let counts: HashMap<String, i64> = catalogs::subscriber_counts(self.db().read())
            .await?
            .into_iter()
            .collect();
        let mut versions = Vec::new();
        for row in catalogs::all_plan_versions(self.db().read()).await? {
            let pv = self.plan_version(&row.id).await?;
            versions.push(version_info(&pv, &current.catalog.default_plan, &counts, {
                current.plans.iter().any(|p| p.id == pv.id)
            }));
        }
        Ok(PlanCatalog {
            catalog_version: current.version,
            default_plan: current.catalog.default_plan.clone(),
            metrics: current.catalog.metrics.clone(),
            versions,
        })
    }

    /// `plans check`: nothing is read from or written to the database.
    pub fn admin_check_plans(&self, actor: &Actor, source: &str) -> Result<PlanCheck> {
        self.authorize(actor, Action::ViewPlans)?;
        Ok(check_plan_file(source))
    }

    /// `plans diff`: what applying `source` would change, with the subscribers each change
    /// touches.
    pub async fn admin_diff_plans(&self, actor: &Actor, source: &str) -> Result<Vec<PlanChange>> {
        self.authorize(actor, Action::ViewPlans)?;
        self.diff_catalog(source).await
    }

    /// `plans simulate`: replays the JSON-lines `events` against the catalog in `source`.
    pub fn admin_simulate_plans(
        &self,
        actor: &Actor,
        source: &str,
        events: &str,
    ) -> Result<SimulationReport> {
        self.authorize(actor, Action::ViewPlans)?;
        let catalog = plans::parse(source).map_err(Error::InvalidCatalog)?;
        let attempts = simulate::read_attempts(events)
            .map_err(|e| Error::validation("events", "invalid_events", &e))?;
        let simulation = simulate::simulate(&catalog, attempts);
        let table = simulate::render_table(&simulation);
        Ok(SimulationReport { simulation, table })
    }

    /// Publishes `source` as the new catalog (audited as `plans.apply`).
    pub async fn admin_apply_plans(
        &self,
        actor: &Actor,
        source: &str,
        reason: Option<&str>,
    ) -> Result<ApplyOutcome> {
        self.authorize(actor, Action::ApplyPlans)?;
        let audit = self.draft(actor, "plans.apply", "catalog", reason);
        self.apply_catalog_audited(source, Some(actor.user.id.as_str()), Some(audit))
            .await
    }

    /// Moves every subscriber of `from` (`pro@1`) to `to` (`pro@2`), audited as
    /// `plans.migrate`.
    pub async fn admin_migrate_plans(
        &self,
        actor: &Actor,
        from: &str,
        to: &str,
        reason: Option<&str>,
    ) -> Result<Migration> {
        self.authorize(actor, Action::MigratePlans)?;
        let audit = self.draft(actor, "plans.migrate", "", reason);
        let moved = self
            .migrate_plan_version_audited(from.trim(), to.trim(), audit)
            .await?;
        Ok(Migration {
            from: from.trim().to_owned(),
            to: to.trim().to_owned(),
            moved: moved as i64,
        })
    }
}

fn version_info(
    pv: &PlanVersion,
    default_plan: &str,
    counts: &HashMap<String, i64>,
    current: bool,
) -> PlanVersionInfo {
    PlanVersionInfo {
        id: pv.id.clone(),
        plan_id: pv.plan_id.clone(),
        version: pv.version,
        label: pv.label(),
        name: pv.plan.name.clone(),
        price: pv.plan.price.amount,
        currency: pv.plan.price.currency.clone(),
        interval: pv.plan.price.interval,
        current,
        is_default: current && pv.plan_id == default_plan,
        subscribers: counts.get(pv.id.as_str()).copied().unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_carries_its_line_and_the_line_text() {
        let src = "metrics = [\"requests\"]\n\n[[plans]]\nid = 5\n";
        let check = check_plan_file(src);
        assert!(!check.ok);
        let p = &check.problems[0];
        assert_eq!(p.line, 4, "{p:?}");
        assert_eq!(p.source_line, "id = 5");
    }

    #[test]
    fn the_shipped_catalog_checks_clean() {
        let check = check_plan_file(super::super::catalog::SHIPPED_CATALOG);
        assert!(check.ok, "{:?}", check.problems);
        assert!(check.plans.contains(&"free".to_owned()));
    }
}
