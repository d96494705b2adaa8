//! The Users screen: search, detail and every back-office action on one user. Each action
//! returns the refreshed detail, so the UI shows the result at once.

use super::error::CommandError;
use super::state::Console;
use super::wire::{Impersonated, PlanSummary};
use crate::domain::{KeyId, SessionId, UserId};
use crate::service::admin::{Actor, UserDetail, UserPage, UserQuery};
use crate::service::subscriptions::Effective;
use crate::service::Engine;
use tauri::State;

fn user_id(raw: &str) -> Result<UserId, CommandError> {
    Ok(UserId::parse(raw.trim())?)
}

impl Console {
    pub async fn list_users(&self, query: &UserQuery) -> Result<UserPage, CommandError> {
        let (engine, actor) = self.staff().await?;
        Ok(engine.admin_list_users(&actor, query).await?)
    }

    pub async fn user_detail(&self, user: &str) -> Result<UserDetail, CommandError> {
        let (engine, actor) = self.staff().await?;
        Ok(engine.admin_user_detail(&actor, &user_id(user)?).await?)
    }

    /// The current catalog's plans (the choices of "change plan").
    pub async fn list_plans(&self) -> Result<Vec<PlanSummary>, CommandError> {
        let (engine, _) = self.staff().await?;
        let catalog = engine.catalog().await?;
        Ok(catalog
            .plans
            .iter()
            .map(|p| PlanSummary {
                plan_id: p.plan_id.clone(),
                label: p.label(),
                name: p.plan.name.clone(),
                description: p.plan.description.clone(),
                price: p.plan.price.amount,
                currency: p.plan.price.currency.clone(),
                interval: p.plan.price.interval,
                is_default: p.plan_id == catalog.catalog.default_plan,
            })
            .collect())
    }

    /// Runs one action on a user as the signed-in staff member and answers the refreshed
    /// detail, read as the same staff member.
    async fn act<T>(
        &self,
        user: &str,
        action: impl AsyncFnOnce(&Engine, &Actor, &UserId) -> crate::Result<T>,
    ) -> Result<UserDetail, CommandError> {
        let (engine, actor) = self.staff().await?;
        let id = user_id(user)?;
        action(&engine, &actor, &id).await?;
        Ok(engine.admin_user_detail(&actor, &id).await?)
    }

    pub async fn change_plan(
        &self,
        user: &str,
        plan: &str,
        when: Effective,
        reason: Option<&str>,
    ) -> Result<UserDetail, CommandError> {
        self.act(user, async |e, a, id| {
            e.admin_change_plan(a, id, plan.trim(), when, reason).await
        })
        .await
    }

    pub async fn grant_credits(
        &self,
        user: &str,
        metric: &str,
        amount: i64,
        reason: Option<&str>,
    ) -> Result<UserDetail, CommandError> {
        self.act(user, async |e, a, id| {
            e.admin_grant_credits(a, id, metric.trim(), amount, reason)
                .await
        })
        .await
    }

    /// Resets one metric's usage for the current window, or every quota metric's when
    /// `metric` is `None`.
    pub async fn reset_usage(
        &self,
        user: &str,
        metric: Option<&str>,
        reason: Option<&str>,
    ) -> Result<UserDetail, CommandError> {
        self.act(user, async |e, a, id| {
            let metrics: Vec<String> = match metric.map(str::trim).filter(|m| !m.is_empty()) {
                Some(m) => vec![m.to_owned()],
                // Credit metrics change through grants, not resets.
                None => {
                    let usage = e.usage_summary(id).await?;
                    usage
                        .metrics
                        .into_keys()
                        .filter(|m| !usage.credits.contains_key(m))
                        .collect()
                }
            };
            for m in &metrics {
                e.admin_reset_usage(a, id, m, reason).await?;
            }
            if metrics.is_empty() {
                // Nothing metered; the permission check still applies.
                e.authorize(a, crate::service::permissions::Action::ResetUsage)?;
            }
            Ok(())
        })
        .await
    }

    pub async fn clear_limits(
        &self,
        user: &str,
        reason: Option<&str>,
    ) -> Result<UserDetail, CommandError> {
        self.act(user, async |e, a, id| {
            e.admin_clear_limits(a, id, reason).await
        })
        .await
    }

    pub async fn suspend_user(
        &self,
        user: &str,
        reason: Option<&str>,
    ) -> Result<UserDetail, CommandError> {
        self.act(user, async |e, a, id| e.admin_suspend(a, id, reason).await)
            .await
    }

    /// Sends the user a new verification mail (audited).
    pub async fn resend_verification(
        &self,
        user: &str,
        reason: Option<&str>,
    ) -> Result<UserDetail, CommandError> {
        self.act(user, async |e, a, id| {
            e.admin_resend_verification(a, id, reason).await
        })
        .await
    }

    /// Turns off the user's two-factor authentication (reason required, audited).
    pub async fn reset_two_factor(
        &self,
        user: &str,
        reason: Option<&str>,
    ) -> Result<UserDetail, CommandError> {
        self.act(user, async |e, a, id| {
            e.admin_reset_two_factor(a, id, reason).await
        })
        .await
    }

    pub async fn reactivate_user(
        &self,
        user: &str,
        reason: Option<&str>,
    ) -> Result<UserDetail, CommandError> {
        self.act(user, async |e, a, id| {
            e.admin_reactivate(a, id, reason).await
        })
        .await
    }

    /// Revokes one session (`session`), or all of the user's.
    pub async fn revoke_sessions(
        &self,
        user: &str,
        session: Option<&str>,
        reason: Option<&str>,
    ) -> Result<UserDetail, CommandError> {
        let session = session.map(SessionId::parse).transpose()?;
        self.act(user, async |e, a, id| {
            e.admin_revoke_sessions(a, id, session.as_ref(), reason)
                .await
        })
        .await
    }

    pub async fn revoke_key(
        &self,
        user: &str,
        key: &str,
        reason: Option<&str>,
    ) -> Result<UserDetail, CommandError> {
        let key = KeyId::parse(key.trim())?;
        self.act(user, async |e, a, id| {
            e.admin_revoke_keys(a, id, Some(&key), reason).await
        })
        .await
    }

    pub async fn impersonate(
        &self,
        user: &str,
        reason: Option<&str>,
    ) -> Result<Impersonated, CommandError> {
        let (engine, actor) = self.staff().await?;
        let id = user_id(user)?;
        let impersonation = engine.admin_impersonate(&actor, &id, reason).await?;
        let expires_at = engine.now() + chrono::Duration::seconds(impersonation.expires_in);
        Ok(Impersonated {
            impersonation,
            expires_at,
            detail: engine.admin_user_detail(&actor, &id).await?,
        })
    }

    pub async fn delete_user(
        &self,
        user: &str,
        reason: Option<&str>,
    ) -> Result<UserDetail, CommandError> {
        self.act(user, async |e, a, id| {
            e.admin_delete_user(a, id, reason).await
        })
        .await
    }
}

/// Search and page through users (keyset: pass `next_cursor` back as `cursor`).
#[tauri::command]
#[specta::specta]
pub async fn list_users(
    query: UserQuery,
    console: State<'_, Console>,
) -> Result<UserPage, CommandError> {
    console.list_users(&query).await
}

/// Everything about one user.
#[tauri::command]
#[specta::specta]
pub async fn user_detail(
    user_id: String,
    console: State<'_, Console>,
) -> Result<UserDetail, CommandError> {
    console.user_detail(&user_id).await
}

#[tauri::command]
#[specta::specta]
pub async fn list_plans(console: State<'_, Console>) -> Result<Vec<PlanSummary>, CommandError> {
    console.list_plans().await
}

/// Puts the user on `plan` (a plan id such as `pro`) now or at the end of the period.
#[tauri::command]
#[specta::specta]
pub async fn change_plan(
    user_id: String,
    plan: String,
    when: Effective,
    reason: Option<String>,
    console: State<'_, Console>,
) -> Result<UserDetail, CommandError> {
    console
        .change_plan(&user_id, &plan, when, reason.as_deref())
        .await
}

/// Grants credits of `metric` (a negative amount takes them back).
#[tauri::command]
#[specta::specta]
pub async fn grant_credits(
    user_id: String,
    metric: String,
    amount: i64,
    reason: Option<String>,
    console: State<'_, Console>,
) -> Result<UserDetail, CommandError> {
    console
        .grant_credits(&user_id, &metric, amount, reason.as_deref())
        .await
}

/// Resets one metric's usage in the current window (every quota metric's when `metric` is
/// null: credit metrics change through grants).
#[tauri::command]
#[specta::specta]
pub async fn reset_usage(
    user_id: String,
    metric: Option<String>,
    reason: Option<String>,
    console: State<'_, Console>,
) -> Result<UserDetail, CommandError> {
    console
        .reset_usage(&user_id, metric.as_deref(), reason.as_deref())
        .await
}

/// Forgets the user's rate-limit windows.
#[tauri::command]
#[specta::specta]
pub async fn clear_limits(
    user_id: String,
    reason: Option<String>,
    console: State<'_, Console>,
) -> Result<UserDetail, CommandError> {
    console.clear_limits(&user_id, reason.as_deref()).await
}

#[tauri::command]
#[specta::specta]
pub async fn resend_verification(
    user_id: String,
    reason: Option<String>,
    console: State<'_, Console>,
) -> Result<UserDetail, CommandError> {
    console
        .resend_verification(&user_id, reason.as_deref())
        .await
}

#[tauri::command]
#[specta::specta]
pub async fn reset_two_factor(
    user_id: String,
    reason: Option<String>,
    console: State<'_, Console>,
) -> Result<UserDetail, CommandError> {
    console.reset_two_factor(&user_id, reason.as_deref()).await
}

#[tauri::command]
#[specta::specta]
pub async fn suspend_user(
    user_id: String,
    reason: Option<String>,
    console: State<'_, Console>,
) -> Result<UserDetail, CommandError> {
    console.suspend_user(&user_id, reason.as_deref()).await
}

#[tauri::command]
#[specta::specta]
pub async fn reactivate_user(
    user_id: String,
    reason: Option<String>,
    console: State<'_, Console>,
) -> Result<UserDetail, CommandError> {
    console.reactivate_user(&user_id, reason.as_deref()).await
}

/// Revokes one session (`session_id`) or, when null, all of the user's sessions.
#[tauri::command]
#[specta::specta]
pub async fn revoke_sessions(
    user_id: String,
    session_id: Option<String>,
    reason: Option<String>,
    console: State<'_, Console>,
) -> Result<UserDetail, CommandError> {
    console
        .revoke_sessions(&user_id, session_id.as_deref(), reason.as_deref())
        .await
}

#[tauri::command]
#[specta::specta]
pub async fn revoke_key(
    user_id: String,
    key_id: String,
    reason: Option<String>,
    console: State<'_, Console>,
) -> Result<UserDetail, CommandError> {
    console
        .revoke_key(&user_id, &key_id, reason.as_deref())
        .await
}

/// A ten-minute token acting as the user (read-only unless the role may write).
#[tauri::command]
#[specta::specta]
pub async fn impersonate(
    user_id: String,
    reason: Option<String>,
    console: State<'_, Console>,
) -> Result<Impersonated, CommandError> {
    console.impersonate(&user_id, reason.as_deref()).await
}

/// Soft-deletes the user (reason required).
#[tauri::command]
#[specta::specta]
pub async fn delete_user(
    user_id: String,
    reason: Option<String>,
    console: State<'_, Console>,
) -> Result<UserDetail, CommandError> {
    console.delete_user(&user_id, reason.as_deref()).await
}
