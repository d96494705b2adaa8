//! Feature entitlements: which plan features a user may use.

use super::Engine;
use crate::domain::UserId;
use crate::error::{Error, FeatureNotInPlan, Result};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Entitlement {
    pub feature: String,
    pub allowed: bool,
    pub plan: String,
    /// The cheapest plan that has the feature, when the user's plan does not.
    pub upgrade_to: Option<String>,
}

impl Engine {
    pub async fn entitlement(&self, user: &UserId, feature: &str) -> Result<Entitlement> {
        let catalog = self.catalog().await?;
        if !catalog.catalog.features.iter().any(|f| f == feature) {
            return Err(Error::validation(
                "feature",
                "unknown_feature",
                &format!("unknown feature `{feature}`"),
            ));
        }
        let r = self.resolve_subscription(user).await?;
        let allowed = r.effective.plan.has_feature(feature);
        let upgrade_to = if allowed {
            None
        } else {
            catalog
                .catalog
                .cheapest_with_feature(feature)
                .map(|p| p.id.clone())
        };
        Ok(Entitlement {
            feature: feature.to_owned(),
            allowed,
            plan: r.effective.plan_id.clone(),
            upgrade_to,
        })
    }

    /// `feature_not_in_plan` (naming the cheapest plan that has it) unless the user's plan has it.
    pub async fn require_feature(&self, user: &UserId, feature: &str) -> Result<()> {
        let e = self.entitlement(user, feature).await?;
        if e.allowed {
            Ok(())
        } else {
            Err(Error::FeatureNotInPlan(Box::new(FeatureNotInPlan {
                feature: e.feature,
                plan: e.plan,
                upgrade_to: e.upgrade_to,
            })))
        }
    }
}
