//! Plan catalogs: what each plan costs, which features it entitles, and the quotas and rate
//! limits it sets. A catalog is written as a TOML file (see `examples/plans.toml`), checked
//! with `tollgate plans check`, and applied as a new, immutable version.

pub mod file;
pub mod periods;
pub mod rules;
pub mod simulate;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use file::{check, parse, CheckReport, Problem};

/// How often a plan is billed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub enum Interval {
    Month,
    Year,
}

impl Interval {
    pub fn months(self) -> u32 {
        match self {
            Interval::Month => 1,
            Interval::Year => 12,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Price {
    /// Integer minor units (cents).
    pub amount: i64,
    pub currency: String,
    pub interval: Interval,
}

/// The window a quota counts over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Per {
    /// Calendar day, UTC.
    Day,
    /// Calendar month, UTC.
    Month,
    /// The subscription's current billing period.
    BillingPeriod,
}

impl Per {
    pub fn as_str(self) -> &'static str {
        match self {
            Per::Day => "day",
            Per::Month => "month",
            Per::BillingPeriod => "billing_period",
        }
    }
}

/// What a plan allows of one metric.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Quota {
    /// At most `limit` units per window (`None`: unlimited).
    Limit { limit: Option<i64>, per: Per },
    /// A balance of credits granted every billing period and spent by use.
    Credits {
        credits: i64,
        per: Per,
        rollover: bool,
    },
}

/// `requests` per `window_secs`, per subject (a user for `api`, a client IP for `login`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RateLimit {
    pub requests: i64,
    pub window_secs: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Plan {
    pub id: String,
    pub name: String,
    pub description: String,
    pub price: Price,
    pub stripe_price_ids: Vec<String>,
    pub features: BTreeMap<String, bool>,
    pub quotas: BTreeMap<String, Quota>,
    pub rate_limits: BTreeMap<String, RateLimit>,
    pub trial_days: u32,
    /// Metered use is refused (`email_unverified`) until the account's email is verified.
    #[serde(default)]
    pub require_verified_email: bool,
}

impl Plan {
    pub fn is_free(&self) -> bool {
        self.price.amount == 0
    }

    pub fn has_feature(&self, feature: &str) -> bool {
        self.features.get(feature).copied().unwrap_or(false)
    }

    /// Monthly recurring revenue of one subscriber, in cents (annual prices divided by 12).
    pub fn monthly_amount(&self) -> i64 {
        self.price.amount / i64::from(self.price.interval.months())
    }
}

/// A whole catalog, in the order the file lists its plans (cheapest first by convention).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Catalog {
    pub metrics: Vec<String>,
    pub features: Vec<String>,
    pub default_plan: String,
    /// Limits for anonymous scopes (`login`, `register`), per client IP.
    pub anonymous_rate_limits: BTreeMap<String, RateLimit>,
    pub plans: Vec<Plan>,
}

impl Catalog {
    pub fn plan(&self, id: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.id == id)
    }

    pub fn default_plan(&self) -> &Plan {
        self.plan(&self.default_plan)
            .expect("checked catalogs name an existing default plan")
    }

    /// The cheapest plan (by monthly amount) that has `feature`, for "upgrade to" hints.
    pub fn cheapest_with_feature(&self, feature: &str) -> Option<&Plan> {
        self.plans
            .iter()
            .filter(|p| p.has_feature(feature))
            .min_by_key(|p| p.monthly_amount())
    }

    /// The cheapest plan that allows more of `metric` than `current` does.
    pub fn cheapest_upgrade_for(&self, metric: &str, current: &Plan) -> Option<&Plan> {
        let rank = |p: &Plan| match p.quotas.get(metric) {
            Some(Quota::Limit { limit: None, .. }) => i64::MAX,
            Some(Quota::Limit { limit: Some(n), .. }) => *n,
            Some(Quota::Credits { credits, .. }) => *credits,
            None => -1,
        };
        let now = rank(current);
        self.plans
            .iter()
            .filter(|p| p.id != current.id && rank(p) > now)
            .min_by_key(|p| p.monthly_amount())
    }

    /// Default anonymous limits when the file sets none: register 20/hour, login 60/hour,
    /// password_reset 10/hour.
    pub fn anonymous_limit(&self, scope: &str) -> Option<RateLimit> {
        self.anonymous_rate_limits
            .get(scope)
            .copied()
            .or(match scope {
                "register" => Some(RateLimit {
                    requests: 20,
                    window_secs: 3600,
                }),
                "login" => Some(RateLimit {
                    requests: 60,
                    window_secs: 3600,
                }),
                "password_reset" => Some(RateLimit {
                    requests: 10,
                    window_secs: 3600,
                }),
                _ => None,
            })
    }
}
