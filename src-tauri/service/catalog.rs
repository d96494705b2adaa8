//! Publishing plan catalogs. Applying a file creates a new catalog version; a plan whose
//! definition changed gets a new plan version, and subscribers stay on the version they bought
//! (grandfathering) until migrated explicitly.

use super::audit::Draft;
use super::Engine;
use crate::domain::PlanVersionId;
use crate::error::{Error, Result};
use crate::plans::{self, Catalog, Plan};
use crate::store::{catalogs, subscriptions, unique_violation};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;

/// The catalog shipped with Tollgate, applied to an empty database.
pub const SHIPPED_CATALOG: &str = include_str!("../../examples/plans.toml");

/// One immutable published version of a plan.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PlanVersion {
    pub id: PlanVersionId,
    pub plan_id: String,
    pub version: i64,
    pub plan: Plan,
}

impl PlanVersion {
    /// `pro@2`.
    pub fn label(&self) -> String {
        format!("{}@{}", self.plan_id, self.version)
    }

    fn from_row(r: catalogs::PlanVersionRow) -> Result<PlanVersion> {
        let plan: Plan =
            serde_json::from_str(&r.definition).map_err(|e| Error::Internal(e.into()))?;
        Ok(PlanVersion {
            id: r.id,
            plan_id: r.plan_id,
            version: r.version,
            plan,
        })
    }
}

/// The catalog new subscribers get, with its plan versions.
#[derive(Debug, Clone)]
pub struct ActiveCatalog {
    pub version: i64,
    pub catalog: Catalog,
    pub plans: Vec<Arc<PlanVersion>>,
}

impl ActiveCatalog {
    pub fn plan(&self, id: &str) -> Option<&Arc<PlanVersion>> {
        self.plans.iter().find(|p| p.plan_id == id)
    }
    pub fn default_plan(&self) -> &Arc<PlanVersion> {
        self.plan(&self.catalog.default_plan)
            .expect("the default plan is part of its catalog")
    }
    /// The plan a Stripe price id belongs to.
    pub fn plan_for_price(&self, price: &str) -> Option<&Arc<PlanVersion>> {
        self.plans
            .iter()
            .find(|p| p.plan.stripe_price_ids.iter().any(|s| s == price))
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub struct ApplyOutcome {
    pub catalog_version: i64,
    /// False when the file equals the current catalog (nothing was written).
    pub changed: bool,
    /// Plans that got a new version: `pro@2`.
    pub new_plan_versions: Vec<String>,
}

/// One line of `plans diff`.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
// Named apart from the admin plan override's request body, which is also `PlanChange`.
#[schema(as = CatalogChange)]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub struct PlanChange {
    pub plan: String,
    pub change: String,
    pub subscribers: i64,
}

fn checksum(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

impl Engine {
    /// The current catalog (cached; reloaded after every apply, here or in another process).
    pub async fn catalog(&self) -> Result<Arc<ActiveCatalog>> {
        if let Some(c) = self.inner.catalog.read().expect("catalog lock").clone() {
            return Ok(c);
        }
        self.reload_catalog().await
    }

    pub(crate) async fn reload_catalog(&self) -> Result<Arc<ActiveCatalog>> {
        let row = catalogs::latest(self.db().read())
            .await?
            .ok_or(Error::Config("no plan catalog has been applied".into()))?;
        let catalog: Catalog =
            serde_json::from_str(&row.definition).map_err(|e| Error::Internal(e.into()))?;
        let mut plans = Vec::new();
        for r in catalogs::plans_of(self.db().read(), row.version).await? {
            let pv = Arc::new(PlanVersion::from_row(r)?);
            self.inner
                .plan_versions
                .write()
                .expect("plan cache lock")
                .insert(pv.id.clone(), pv.clone());
            plans.push(pv);
        }
        let active = Arc::new(ActiveCatalog {
            version: row.version,
            catalog,
            plans,
        });
        // Two reloads may finish out of order: the newer catalog wins.
        let mut slot = self.inner.catalog.write().expect("catalog lock");
        match slot.as_ref() {
            Some(kept) if kept.version > active.version => Ok(kept.clone()),
            _ => {
                *slot = Some(active.clone());
                Ok(active)
            }
        }
    }

    /// A plan version by id; versions never change, so they are cached for good.
    pub async fn plan_version(&self, id: &str) -> Result<Arc<PlanVersion>> {
        if let Some(p) = self
            .inner
            .plan_versions
            .read()
            .expect("plan cache lock")
            .get(id)
        {
            return Ok(p.clone());
        }
        let row = catalogs::plan_version(self.db().read(), id)
            .await?
            .ok_or(Error::NotFound("plan version"))?;
        let pv = Arc::new(PlanVersion::from_row(row)?);
        self.inner
            .plan_versions
            .write()
            .expect("plan cache lock")
            .insert(pv.id.clone(), pv.clone());
        Ok(pv)
    }

    /// `pro@2` → that plan version.
    pub async fn plan_version_by_label(&self, label: &str) -> Result<Arc<PlanVersion>> {
        let (plan, version) = label
            .split_once('@')
            .and_then(|(p, v)| Some((p, v.parse::<i64>().ok()?)))
            .ok_or_else(|| {
                Error::validation(
                    "plan",
                    "invalid",
                    &format!("`{label}` is not PLAN@VERSION, e.g. pro@2"),
                )
            })?;
        let row = catalogs::plan_version_by_number(self.db().read(), plan, version)
            .await?
            .ok_or_else(|| Error::UnknownPlan(label.to_owned()))?;
        self.plan_version(&row.id).await
    }

    /// Checks and publishes a catalog as a new version (unless it equals the current one).
    #[tracing::instrument(level = "debug", skip(self, source))]
    pub async fn apply_catalog(
        &self,
        source: &str,
        applied_by: Option<&str>,
    ) -> Result<ApplyOutcome> {
        self.apply_catalog_audited(source, applied_by, None).await
    }

    /// [`Engine::apply_catalog`], writing `audit` in the same transaction when something
    /// changed.
    pub(crate) async fn apply_catalog_audited(
        &self,
        source: &str,
        applied_by: Option<&str>,
        audit: Option<Draft<'_>>,
    ) -> Result<ApplyOutcome> {
        let catalog = plans::parse(source).map_err(Error::InvalidCatalog)?;
        let definition = serde_json::to_string(&catalog).map_err(|e| Error::Internal(e.into()))?;
        let now = self.now_ms();
        let mut tx = self.db().begin().await?;
        let latest = catalogs::latest_in(&mut tx).await?;
        if let Some(l) = &latest {
            if l.definition == definition {
                return Ok(ApplyOutcome {
                    catalog_version: l.version,
                    changed: false,
                    new_plan_versions: vec![],
                });
            }
        }
        let version = latest.map(|l| l.version + 1).unwrap_or(1);
        catalogs::insert_catalog(
            &mut tx,
            version,
            &checksum(source),
            source,
            &definition,
            now,
            applied_by,
        )
        .await
        .map_err(|e| match unique_violation(&e) {
            Some(_) => Error::CatalogChangedConcurrently,
            None => e.into(),
        })?;
        let mut new_versions = Vec::new();
        for (position, plan) in catalog.plans.iter().enumerate() {
            let plan_json = serde_json::to_string(plan).map_err(|e| Error::Internal(e.into()))?;
            let id = match catalogs::latest_plan_version(&mut tx, &plan.id).await? {
                Some(row) if row.definition == plan_json => row.id,
                prev => {
                    let n = prev.map(|r| r.version + 1).unwrap_or(1);
                    let id = PlanVersionId::new();
                    catalogs::insert_plan_version(&mut tx, &id, &plan.id, n, &plan_json, now)
                        .await?;
                    new_versions.push(format!("{}@{n}", plan.id));
                    id
                }
            };
            catalogs::link(&mut tx, version, &id, position as i64).await?;
        }
        if let Some(audit) = audit {
            audit
                .write(
                    &mut tx,
                    serde_json::json!({ "catalog_version": version - 1 }),
                    serde_json::json!({ "catalog_version": version, "new_plan_versions": new_versions }),
                    now,
                )
                .await?;
        }
        tx.commit().await?;
        self.reload_catalog().await?;
        tracing::info!(version, plans = ?new_versions, "applied plan catalog");
        Ok(ApplyOutcome {
            catalog_version: version,
            changed: true,
            new_plan_versions: new_versions,
        })
    }

    /// What applying `source` would change, and how many subscribers each change touches.
    pub async fn diff_catalog(&self, source: &str) -> Result<Vec<PlanChange>> {
        let next = plans::parse(source).map_err(Error::InvalidCatalog)?;
        let current = self.catalog().await?;
        let counts: HashMap<String, i64> = catalogs::subscriber_counts(self.db().read())
            .await?
            .into_iter()
            .collect();
        let subs_of = |plan_id: &str| -> i64 {
            let cache = self.inner.plan_versions.read().expect("plan cache lock");
            counts
                .iter()
                .filter(|(id, _)| cache.get(id.as_str()).is_some_and(|p| p.plan_id == plan_id))
                .map(|(_, n)| n)
                .sum()
        };
        let mut out = Vec::new();
        for plan in &next.plans {
            match current.plan(&plan.id) {
                None => out.push(PlanChange {
                    plan: plan.id.clone(),
                    change: "new plan".into(),
                    subscribers: 0,
                }),
                Some(old) if old.plan != *plan => {
                    for change in describe_changes(&old.plan, plan) {
                        out.push(PlanChange {
                            plan: plan.id.clone(),
                            change,
                            subscribers: subs_of(&plan.id),
                        });
                    }
                }
                Some(_) => {}
            }
        }
        for old in &current.plans {
            if next.plan(&old.plan_id).is_none() {
                out.push(PlanChange {
                    plan: old.plan_id.clone(),
                    change: "removed from the catalog (subscribers keep their version)".into(),
                    subscribers: subs_of(&old.plan_id),
                });
            }
        }
        Ok(out)
    }

    /// Moves every subscriber of `from` (e.g. `pro@1`) to `to` (`pro@2`). Returns how many.
    pub async fn migrate_plan_version(&self, from: &str, to: &str) -> Result<u64> {
        let audit = Draft {
            actor: "cli",
            action: "plans.migrate",
            target: "",
            reason: None,
            via: None,
        };
        self.migrate_plan_version_audited(from, to, audit).await
    }

    /// [`Engine::migrate_plan_version`] with the audit entry's actor, reason and origin (its
    /// target is set here: `pro@1->pro@2`).
    pub(crate) async fn migrate_plan_version_audited(
        &self,
        from: &str,
        to: &str,
        audit: Draft<'_>,
    ) -> Result<u64> {
        let from = self.plan_version_by_label(from).await?;
        let to = self.plan_version_by_label(to).await?;
        let now = self.now_ms();
        let mut tx = self.db().begin().await?;
        let moved = subscriptions::migrate_plan_version(&mut tx, &from.id, &to.id, now).await?;
        let target = format!("{}->{}", from.label(), to.label());
        Draft {
            target: &target,
            ..audit
        }
        .write(
            &mut tx,
            serde_json::json!({ "plan_version": from.label() }),
            serde_json::json!({ "plan_version": to.label(), "subscribers": moved }),
            now,
        )
        .await?;
        tx.commit().await?;
        self.forget_subscriptions();
        Ok(moved)
    }

    /// Applies the shipped catalog to an empty database, and `TOLLGATE_PLANS` when it differs.
    pub(crate) async fn ensure_catalog(&self) -> anyhow::Result<()> {
        if catalogs::latest(self.db().read()).await?.is_none() {
            self.apply_catalog(SHIPPED_CATALOG, Some("startup"))
                .await
                .map_err(|e| anyhow::anyhow!("applying the shipped catalog: {e}"))?;
        }
        if let Some(path) = self.settings().plans.clone() {
            let src = std::fs::read_to_string(&path)
                .map_err(|e| anyhow::anyhow!("reading TOLLGATE_PLANS file {path}: {e}"))?;
            match self.apply_catalog(&src, Some("TOLLGATE_PLANS")).await {
                Ok(o) if o.changed => {
                    tracing::info!(file = %path, version = o.catalog_version, "applied plan file")
                }
                Ok(_) => {}
                Err(Error::InvalidCatalog(problems)) => {
                    let list: Vec<String> =
                        problems.iter().map(|p| format!("{path}:{p}")).collect();
                    anyhow::bail!("the plan file has problems:\n{}", list.join("\n"));
                }
                Err(e) => return Err(anyhow::anyhow!("applying {path}: {e}")),
            }
        }
        self.reload_catalog().await?;
        Ok(())
    }
}

fn describe_changes(old: &Plan, new: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    if old.price != new.price {
        out.push(format!(
            "price {} {}/{:?} -> {} {}/{:?}",
            old.price.amount,
            old.price.currency,
            old.price.interval,
            new.price.amount,
            new.price.currency,
            new.price.interval
        ));
    }
    for (f, on) in &new.features {
        if old.has_feature(f) != *on {
            out.push(format!("feature {f}: {} -> {on}", old.has_feature(f)));
        }
    }
    let metrics: std::collections::BTreeSet<&String> =
        old.quotas.keys().chain(new.quotas.keys()).collect();
    for m in metrics {
        if old.quotas.get(m) != new.quotas.get(m) {
            out.push(format!(
                "quota {m}: {} -> {}",
                quota_text(old.quotas.get(m)),
                quota_text(new.quotas.get(m))
            ));
        }
    }
    let scopes: std::collections::BTreeSet<&String> = old
        .rate_limits
        .keys()
        .chain(new.rate_limits.keys())
        .collect();
    for s in scopes {
        if old.rate_limits.get(s) != new.rate_limits.get(s) {
            let t = |r: Option<&plans::RateLimit>| {
                r.map(|r| format!("{}/{}s", r.requests, r.window_secs))
                    .unwrap_or("none".into())
            };
            out.push(format!(
                "rate limit {s}: {} -> {}",
                t(old.rate_limits.get(s)),
                t(new.rate_limits.get(s))
            ));
        }
    }
    if old.stripe_price_ids != new.stripe_price_ids {
        out.push(format!(
            "stripe prices {:?} -> {:?}",
            old.stripe_price_ids, new.stripe_price_ids
        ));
    }
    if old.name != new.name
        || old.description != new.description
        || old.trial_days != new.trial_days
    {
        out.push("name, description or trial changed".into());
    }
    if old.require_verified_email != new.require_verified_email {
        out.push(format!(
            "require_verified_email {} -> {}",
            old.require_verified_email, new.require_verified_email
        ));
    }
    out
}

pub fn quota_text(q: Option<&plans::Quota>) -> String {
    match q {
        None => "none".into(),
        Some(plans::Quota::Limit { limit: None, per }) => format!("unlimited/{}", per.as_str()),
        Some(plans::Quota::Limit {
            limit: Some(n),
            per,
        }) => format!("{n}/{}", per.as_str()),
        Some(plans::Quota::Credits {
            credits,
            per,
            rollover,
        }) => {
            format!(
                "{credits} credits/{}{}",
                per.as_str(),
                if *rollover { " (rollover)" } else { "" }
            )
        }
    }
}

impl Engine {
    /// Picks up a catalog another instance applied (called by the upkeep task).
    pub async fn refresh_catalog(&self) -> Result<()> {
        let cached = self
            .inner
            .catalog
            .read()
            .expect("catalog lock")
            .as_ref()
            .map(|c| c.version);
        let latest = catalogs::latest(self.db().read()).await?.map(|c| c.version);
        if latest != cached {
            self.reload_catalog().await?;
        }
        Ok(())
    }
}
