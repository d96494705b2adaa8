//! The facts behind every refused request, kept by request id so that support can later
//! explain exactly why a customer was refused.

use super::admin::Actor;
use super::permissions::Action;
use super::Engine;
use crate::domain::UserId;
use crate::error::{
    Error, FeatureNotInPlan, InsufficientCredits, QuotaExceeded, RateLimited, Result,
};
use crate::store::{at, usage};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Refusal {
    pub request_id: String,
    pub route: String,
    pub status: u16,
    pub code: String,
    pub message: String,
    /// The refusal's structured details (limit, used, window, …), from the engine's error.
    pub details: RefusalDetail,
    pub user_id: Option<UserId>,
    pub key_prefix: Option<String>,
    pub plan_version: Option<String>,
    pub subscription_status: Option<String>,
    /// The rate limiter's state when the request came in.
    pub limiter: Option<serde_json::Value>,
}

/// The typed facts a refusal carries, taken from the engine's [`Error`] that caused it (never
/// read back from an answer's body). Stored flat, as the explanations below read them.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(untagged)]
pub enum RefusalDetail {
    Quota(QuotaExceeded),
    Credits(InsufficientCredits),
    Feature(FeatureNotInPlan),
    RateLimited(RateLimited),
    Scope {
        scope: String,
    },
    AccountStatus {
        status: String,
    },
    /// A refusal with nothing beside its code (a bad key, a missing token).
    Plain {},
}

impl Default for RefusalDetail {
    fn default() -> Self {
        RefusalDetail::Plain {}
    }
}

impl RefusalDetail {
    /// The details of `e`, for the errors that refuse a request.
    pub fn of(e: &Error) -> RefusalDetail {
        match e {
            Error::QuotaExceeded(d) => RefusalDetail::Quota(d.as_ref().clone()),
            Error::InsufficientCredits(d) => RefusalDetail::Credits(d.as_ref().clone()),
            Error::FeatureNotInPlan(d) => RefusalDetail::Feature(d.as_ref().clone()),
            Error::RateLimited(d) => RefusalDetail::RateLimited(d.as_ref().clone()),
            Error::InsufficientScope(scope) => RefusalDetail::Scope {
                scope: scope.clone(),
            },
            Error::AccountNotActive(status) => RefusalDetail::AccountStatus {
                status: status.clone(),
            },
            _ => RefusalDetail::Plain {},
        }
    }
}

/// A recorded refusal, as support reads it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub struct Decision {
    pub request_id: String,
    pub at: DateTime<Utc>,
    pub code: String,
    pub status: i64,
    pub route: Option<String>,
    pub user_id: Option<UserId>,
    pub key_prefix: Option<String>,
    #[schema(value_type = Object)]
    pub facts: serde_json::Value,
}

impl Engine {
    pub async fn record_refusal(&self, r: Refusal) -> Result<()> {
        if r.request_id.is_empty() {
            return Ok(());
        }
        let facts = serde_json::to_string(&r).map_err(|e| Error::Internal(e.into()))?;
        let mut tx = self.db().begin().await?;
        usage::insert_decision(
            &mut tx,
            &r.request_id,
            r.user_id.as_deref(),
            r.key_prefix.as_deref(),
            &r.code,
            i64::from(r.status),
            Some(&r.route),
            &facts,
            self.now_ms(),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn decision(&self, request_id: &str) -> Result<Decision> {
        let row = usage::decision(self.db().read(), request_id)
            .await?
            .ok_or(Error::NotFound("decision"))?;
        Ok(Decision::from(row))
    }

    /// A user's latest refusals, newest first.
    pub async fn recent_decisions(
        &self,
        user: &crate::domain::UserId,
        limit: i64,
    ) -> Result<Vec<Decision>> {
        let rows = usage::recent_decisions(self.db().read(), user.as_str(), limit).await?;
        Ok(rows.into_iter().map(Decision::from).collect())
    }
}

impl From<usage::DecisionRow> for Decision {
    fn from(row: usage::DecisionRow) -> Self {
        Decision {
            request_id: row.request_id,
            at: at(row.at),
            code: row.code,
            status: row.status,
            route: row.route,
            user_id: row.user_id,
            key_prefix: row.key_prefix,
            facts: serde_json::from_str(&row.facts).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// The details a refusal was recorded with, read by name (each refusal kind fills its own).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct RefusalDetails {
    metric: Option<String>,
    limit: Option<i64>,
    used: Option<i64>,
    requested: Option<i64>,
    resets_at: Option<String>,
    needed: Option<i64>,
    balance: Option<i64>,
    renews_at: Option<String>,
    scope: Option<String>,
    window_s: Option<i64>,
    feature: Option<String>,
    upgrade_to: Option<String>,
}

/// The facts of a recorded refusal, as `record_refusal` stored them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct RecordedFacts {
    user_id: Option<String>,
    key_prefix: Option<String>,
    plan_version: Option<String>,
    subscription_status: Option<String>,
    details: RefusalDetails,
}

impl RecordedFacts {
    fn of(decision: &Decision) -> RecordedFacts {
        serde_json::from_value(decision.facts.clone()).unwrap_or_default()
    }
}

fn number(n: Option<i64>) -> String {
    n.map_or_else(|| "null".to_owned(), |n| n.to_string())
}

fn text(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("?")
}

/// A refusal explained in plain words, with the fixes support may apply.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub struct Explanation {
    pub decision: Decision,
    pub summary: Vec<String>,
    pub fixes: Vec<Fix>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub enum Fix {
    /// Reset the metric's usage for the current window.
    QuotaBoost,
    /// Forget the user's rate-limit windows.
    ClearLimit,
    /// Give a past-due subscription more days before limits drop to free.
    GracePeriod,
    /// Reactivate a suspended account.
    Reactivate,
}

/// The plain words and the fixes for a recorded refusal.
pub fn explain(decision: Decision) -> Explanation {
    let f = RecordedFacts::of(&decision);
    let d = &f.details;
    let mut summary = Vec::new();
    let who = match (f.user_id.as_deref(), f.key_prefix.as_deref()) {
        (Some(u), Some(k)) => format!("user {u} with API key {k}…"),
        (Some(u), None) => format!("user {u} with a session token"),
        (None, Some(k)) => format!("an unknown caller presenting {k}…"),
        (None, None) => "an unauthenticated caller".into(),
    };
    summary.push(format!(
        "At {} {} called {} and was refused with {} ({}).",
        decision.at.format("%Y-%m-%d %H:%M:%S UTC"),
        who,
        decision.route.as_deref().unwrap_or("?"),
        decision.status,
        decision.code
    ));
    if let Some(p) = &f.plan_version {
        summary.push(format!(
            "Their plan was {p}, subscription {}.",
            f.subscription_status.as_deref().unwrap_or("unknown")
        ));
    }
    let mut fixes = Vec::new();
    match decision.code.as_str() {
        "quota_exceeded" => {
            summary.push(format!(
                "They had used {} of {} `{}` in the window ending {}; the request asked for {} more.",
                number(d.used),
                number(d.limit),
                text(&d.metric),
                text(&d.resets_at),
                number(d.requested)
            ));
            if let Some(u) = &d.upgrade_to {
                summary.push(format!("The `{u}` plan would allow more."));
            }
            fixes.push(Fix::QuotaBoost);
        }
        "insufficient_credits" => {
            summary.push(format!(
                "They needed {} credits of `{}` and had {}; credits renew at {}.",
                number(d.needed),
                text(&d.metric),
                number(d.balance),
                text(&d.renews_at)
            ));
        }
        "rate_limited" => {
            summary.push(format!(
                "They had made {} requests in the {}-second `{}` window; it resets at {}.",
                number(d.limit),
                number(d.window_s),
                text(&d.scope),
                text(&d.resets_at)
            ));
            fixes.push(Fix::ClearLimit);
        }
        "feature_not_in_plan" => summary.push(format!(
            "Their plan does not include `{}`; `{}` does.",
            text(&d.feature),
            d.upgrade_to.as_deref().unwrap_or("no plan")
        )),
        "account_suspended" => {
            summary.push("The account was suspended.".into());
            fixes.push(Fix::Reactivate);
        }
        other => summary.push(format!("The credentials were refused: {other}.")),
    }
    if f.subscription_status.as_deref() == Some("past_due") {
        fixes.push(Fix::GracePeriod);
    }
    Explanation {
        decision,
        summary,
        fixes,
    }
}

impl Engine {
    /// Explains a refusal a customer quotes by request id.
    pub async fn admin_explain(&self, actor: &Actor, request_id: &str) -> Result<Explanation> {
        self.authorize(actor, Action::ExplainDecision)?;
        Ok(explain(self.decision(request_id).await?))
    }

    /// Applies one of the fixes an explanation offers (audited).
    pub async fn admin_apply_fix(
        &self,
        actor: &Actor,
        request_id: &str,
        fix: Fix,
        reason: Option<&str>,
    ) -> Result<()> {
        let e = self.admin_explain(actor, request_id).await?;
        if !e.fixes.contains(&fix) {
            return Err(Error::validation(
                "fix",
                "not_offered",
                "this fix does not apply to that refusal",
            ));
        }
        let user = e
            .decision
            .user_id
            .as_deref()
            .ok_or(Error::NotFound("user"))?;
        let id = UserId::parse(user)?;
        match fix {
            Fix::QuotaBoost => {
                let metric = RecordedFacts::of(&e.decision)
                    .details
                    .metric
                    .unwrap_or_default();
                self.admin_reset_usage(actor, &id, &metric, reason)
                    .await
                    .map(|_| ())
            }
            Fix::ClearLimit => self
                .admin_clear_limits(actor, &id, reason)
                .await
                .map(|_| ()),
            Fix::Reactivate => self.admin_reactivate(actor, &id, reason).await.map(|_| ()),
            Fix::GracePeriod => self.admin_extend_grace(actor, &id, 7, reason).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(code: &str, facts: serde_json::Value) -> Decision {
        Decision {
            request_id: "req-1".into(),
            at: "2026-03-20T10:00:00Z".parse().unwrap(),
            code: code.into(),
            status: 429,
            route: Some("/v1/meter".into()),
            user_id: facts["user_id"].as_str().map(|u| UserId::parse(u).unwrap()),
            key_prefix: None,
            facts,
        }
    }

    #[test]
    fn a_quota_refusal_reads_its_recorded_details() {
        let e = explain(decision(
            "quota_exceeded",
            serde_json::json!({
                "user_id": "usr_1",
                "key_prefix": "sk_live_abcd",
                "plan_version": "free@1",
                "subscription_status": "active",
                "details": {"metric": "videos", "limit": 3, "used": 3, "requested": 1,
                            "resets_at": "2026-03-21T00:00:00Z", "upgrade_to": "pro"}
            }),
        ));
        let text = e.summary.join(" ");
        assert!(
            text.contains("user usr_1 with API key sk_live_abcd…"),
            "{text}"
        );
        assert!(text.contains("used 3 of 3 `videos`"), "{text}");
        assert!(text.contains("The `pro` plan would allow more."), "{text}");
        assert_eq!(e.fixes, vec![Fix::QuotaBoost]);
    }

    #[test]
    fn a_past_due_rate_limit_offers_both_fixes_and_missing_facts_do_not_fail() {
        let e = explain(decision(
            "rate_limited",
            serde_json::json!({"user_id": "usr_2", "subscription_status": "past_due",
                               "details": {"scope": "api", "limit": 10, "window_s": 60}}),
        ));
        assert_eq!(e.fixes, vec![Fix::ClearLimit, Fix::GracePeriod]);
        let bare = explain(decision("invalid_api_key", serde_json::Value::Null));
        assert!(bare.fixes.is_empty());
        assert!(bare.summary[0].contains("an unauthenticated caller"));
    }

    #[test]
    fn the_engine_error_is_what_a_refusal_records_and_its_explanation_reads() {
        let error = Error::RateLimited(Box::new(RateLimited {
            scope: "api".into(),
            limit: 10,
            window_s: 60,
            retry_after_s: 5,
            resets_at: "2026-03-20T10:01:00Z".parse().unwrap(),
        }));
        let refusal = Refusal {
            request_id: "req-1".into(),
            route: "/v1/meter".into(),
            status: 429,
            code: error.code().into(),
            message: error.to_string(),
            details: RefusalDetail::of(&error),
            user_id: Some(UserId::parse("usr_3").unwrap()),
            key_prefix: None,
            plan_version: None,
            subscription_status: Some("active".into()),
            limiter: None,
        };
        let facts = serde_json::to_value(&refusal).unwrap();
        assert_eq!(facts["details"]["limit"], 10, "{facts}");
        let read = RecordedFacts::of(&decision("rate_limited", facts));
        assert_eq!(read.details.scope.as_deref(), Some("api"));
        assert_eq!(read.details.window_s, Some(60));
        // An error that is no refusal records nothing beside its code.
        let plain = serde_json::to_value(RefusalDetail::of(&Error::InvalidApiKey)).unwrap();
        assert_eq!(plain, serde_json::json!({}));
    }
}
