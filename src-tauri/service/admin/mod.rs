//! The back office: one module used by the admin HTTP API, the CLI and the desktop console.
//! Every function checks the permission table for the acting staff member and writes an audit
//! event in the same transaction as the change it makes.

use super::audit::{AuditEntry, AuditFilter, AuditPage, Draft};
pub use super::decisions::{Explanation, Fix};
use super::permissions::{allows, Action};
use super::subscriptions::{Effective, SubscriptionView};
use super::Engine;
use crate::domain::{KeyId, Role, SessionId, User, UserId, UserStatus};
use crate::error::{Error, Result};
use crate::store;
use serde::Serialize;

mod users;
pub use users::{
    cursor_decode, cursor_encode, UsageEventView, UserDetail, UserPage, UserQuery, UserRow,
    UserSort, COUNT_CAP,
};

/// A staff member acting in the back office, and from where.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user: User,
    /// Client IP, or `desktop` / `cli`.
    pub via: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub struct Impersonation {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    /// False: the token may only read.
    pub can_write: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub struct Stats {
    pub users_total: i64,
    pub users_active: i64,
    pub users_suspended: i64,
    pub users_deleted: i64,
    pub users_per_plan: Vec<Count>,
    /// Live (not deleted) users per role.
    pub users_per_role: Vec<Count>,
    pub signups_per_day: Vec<DayCount>,
    pub active_users_per_day: Vec<DayCount>,
    /// Refusals since the start of today (UTC), per error code.
    pub refusals_today: Vec<Count>,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub struct Count {
    pub name: String,
    pub count: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub struct DayCount {
    pub date: chrono::NaiveDate,
    pub count: i64,
}

impl Engine {
    /// From now on, notes every action [`Engine::authorize`] checks (until taken).
    pub fn note_authorizations(&self) {
        *self
            .inner
            .authorizations
            .lock()
            .expect("authorizations lock") = Some(Vec::new());
    }

    /// The actions checked since the last call (or since noting began), in order.
    pub fn take_authorizations(&self) -> Vec<Action> {
        self.inner
            .authorizations
            .lock()
            .expect("authorizations lock")
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// The permission check every back-office function starts with.
    pub fn authorize(&self, actor: &Actor, action: Action) -> Result<()> {
        if let Some(noted) = self
            .inner
            .authorizations
            .lock()
            .expect("authorizations lock")
            .as_mut()
        {
            noted.push(action);
        }
        if actor.user.status != UserStatus::Active || !allows(actor.user.role, action) {
            return Err(Error::Forbidden);
        }
        Ok(())
    }

    pub(crate) fn draft<'a>(
        &self,
        actor: &'a Actor,
        action: &'a str,
        target: &'a str,
        reason: Option<&'a str>,
    ) -> Draft<'a> {
        Draft {
            actor: actor.user.id.as_str(),
            action,
            target,
            reason,
            via: Some(&actor.via),
        }
    }

    /// Sends the user a new verification mail (audited; the reason is optional).
    pub async fn admin_resend_verification(
        &self,
        actor: &Actor,
        id: &UserId,
        reason: Option<&str>,
    ) -> Result<super::mail::MailSummary> {
        self.authorize(actor, Action::ResendVerification)?;
        let user = self.user(id).await?;
        if self.email_verified_at(id).await?.is_some() {
            return Err(Error::EmailAlreadyVerified);
        }
        let target = id.to_string();
        let reason = reason.map(str::trim).filter(|r| !r.is_empty());
        let mail_id = self
            .send_verification(
                &user,
                Some(&self.draft(actor, "user.resend_verification", &target, reason)),
            )
            .await?;
        let detail = self.show_mail(&mail_id).await?;
        Ok(detail.summary)
    }

    /// Turns off a user's two-factor authentication (reason required, audited; the user is
    /// told by mail). Returns whether it was on.
    pub async fn admin_reset_two_factor(
        &self,
        actor: &Actor,
        id: &UserId,
        reason: Option<&str>,
    ) -> Result<bool> {
        self.authorize(actor, Action::ResetTwoFactor)?;
        let reason = Self::require_reason(reason)?;
        let target = id.to_string();
        self.reset_mfa_audited(
            id,
            &self.draft(actor, "user.reset_two_factor", &target, Some(reason)),
        )
        .await
    }

    fn require_reason(reason: Option<&str>) -> Result<&str> {
        match reason.map(str::trim) {
            Some(r) if !r.is_empty() && r.chars().count() <= 500 => Ok(r),
            _ => Err(Error::validation(
                "reason",
                "required",
                "give a reason (1 to 500 characters); it goes to the audit log",
            )),
        }
    }

    pub async fn admin_suspend(
        &self,
        actor: &Actor,
        id: &UserId,
        reason: Option<&str>,
    ) -> Result<User> {
        self.authorize(actor, Action::SuspendUser)?;
        let reason = Self::require_reason(reason)?;
        if &actor.user.id == id {
            return Err(Error::validation(
                "id",
                "self",
                "you cannot suspend yourself",
            ));
        }
        let target = id.to_string();
        let user = self
            .set_user_status_audited(
                id,
                UserStatus::Suspended,
                Some(&self.draft(actor, "user.suspend", &target, Some(reason))),
            )
            .await?;
        self.clear_rate_limits(id).await;
        Ok(user)
    }

    pub async fn admin_reactivate(
        &self,
        actor: &Actor,
        id: &UserId,
        reason: Option<&str>,
    ) -> Result<User> {
        self.authorize(actor, Action::ReactivateUser)?;
        let current = self.user(id).await?;
        if current.status == UserStatus::Deleted {
            return Err(Error::DeletedAccountCannotBeReactivated);
        }
        let target = id.to_string();
        self.set_user_status_audited(
            id,
            UserStatus::Active,
            Some(&self.draft(actor, "user.reactivate", &target, reason)),
        )
        .await
    }

    /// A plan override without Stripe, now or at the end of the period.
    pub async fn admin_change_plan(
        &self,
        actor: &Actor,
        id: &UserId,
        plan: &str,
        when: Effective,
        reason: Option<&str>,
    ) -> Result<SubscriptionView> {
        self.authorize(actor, Action::ChangePlan)?;
        let reason = Self::require_reason(reason)?;
        let target = id.to_string();
        self.change_plan_audited(
            id,
            plan,
            when,
            Some(&self.draft(actor, "user.plan", &target, Some(reason))),
        )
        .await
    }

    /// Grants (positive) or takes back (negative) credits.
    pub async fn admin_grant_credits(
        &self,
        actor: &Actor,
        id: &UserId,
        metric: &str,
        amount: i64,
        reason: Option<&str>,
    ) -> Result<i64> {
        self.authorize(actor, Action::GrantCredits)?;
        let reason = Self::require_reason(reason)?;
        let target = id.to_string();
        self.grant_credits_audited(
            id,
            metric,
            amount,
            Some(reason),
            Some(&self.draft(actor, "user.credits", &target, Some(reason))),
        )
        .await
    }

    /// Resets a metric's usage for the current window (a `reset` usage event keeps the
    /// counter derivable from the events).
    pub async fn admin_reset_usage(
        &self,
        actor: &Actor,
        id: &UserId,
        metric: &str,
        reason: Option<&str>,
    ) -> Result<i64> {
        self.authorize(actor, Action::ResetUsage)?;
        let target = id.to_string();
        let draft = self.draft(actor, "user.usage_reset", &target, reason);
        self.reset_usage_audited(id, metric, &draft).await
    }

    pub async fn admin_clear_limits(
        &self,
        actor: &Actor,
        id: &UserId,
        reason: Option<&str>,
    ) -> Result<usize> {
        self.authorize(actor, Action::ClearLimits)?;
        self.user(id).await?;
        let cleared = self.clear_rate_limits(id).await;
        let target = id.to_string();
        let mut tx = self.db().begin().await?;
        self.draft(actor, "user.limits_clear", &target, reason)
            .write(
                &mut tx,
                serde_json::json!({ "windows": cleared }),
                serde_json::json!({ "windows": 0 }),
                self.now_ms(),
            )
            .await?;
        tx.commit().await?;
        Ok(cleared)
    }

    /// Revokes one session, or all of them.
    pub async fn admin_revoke_sessions(
        &self,
        actor: &Actor,
        id: &UserId,
        session: Option<&SessionId>,
        reason: Option<&str>,
    ) -> Result<u64> {
        self.authorize(actor, Action::RevokeSessions)?;
        self.user(id).await?;
        let now = self.now_ms();
        let target = id.to_string();
        let mut tx = self.db().begin().await?;
        let n = match session {
            Some(s) => u64::from(
                store::sessions::revoke(&mut tx, id, s.as_str(), "revoked_by_staff", now).await?,
            ),
            None => store::sessions::revoke_all(&mut tx, id, None, "revoked_by_staff", now).await?,
        };
        let after = serde_json::json!({ "revoked": n, "session": session.map(|s| s.to_string()) });
        self.draft(actor, "user.sessions_revoke", &target, reason)
            .write(&mut tx, serde_json::json!({}), after, now)
            .await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Revokes one API key, or all of them.
    pub async fn admin_revoke_keys(
        &self,
        actor: &Actor,
        id: &UserId,
        key: Option<&KeyId>,
        reason: Option<&str>,
    ) -> Result<u64> {
        self.authorize(actor, Action::RevokeKeys)?;
        self.user(id).await?;
        let now = self.now_ms();
        let target = id.to_string();
        let mut tx = self.db().begin().await?;
        let n = match key {
            Some(k) => u64::from(store::api_keys::revoke(&mut tx, id, k, now).await?),
            None => store::api_keys::revoke_all(&mut tx, id, now).await?,
        };
        let after = serde_json::json!({ "revoked": n, "key": key.map(|k| k.to_string()) });
        self.draft(actor, "user.keys_revoke", &target, reason)
            .write(&mut tx, serde_json::json!({}), after, now)
            .await?;
        tx.commit().await?;
        self.forget_verified_keys();
        Ok(n)
    }

    pub async fn admin_delete_user(
        &self,
        actor: &Actor,
        id: &UserId,
        reason: Option<&str>,
    ) -> Result<()> {
        self.authorize(actor, Action::DeleteUser)?;
        let reason = Self::require_reason(reason)?;
        if &actor.user.id == id {
            return Err(Error::validation(
                "id",
                "self",
                "you cannot delete yourself",
            ));
        }
        let target = id.to_string();
        self.delete_account_audited(
            id,
            Some(&self.draft(actor, "user.delete", &target, Some(reason))),
        )
        .await
    }

    /// A short-lived token acting as the user; its claims carry `impersonated_by`. Read-only
    /// unless the permission table lets the actor impersonate with writes.
    pub async fn admin_impersonate(
        &self,
        actor: &Actor,
        id: &UserId,
        reason: Option<&str>,
    ) -> Result<Impersonation> {
        self.authorize(actor, Action::Impersonate)?;
        let reason = Self::require_reason(reason)?;
        let user = self.user(id).await?;
        if user.status != UserStatus::Active {
            return Err(Error::AccountNotActive(user.status.as_str().to_owned()));
        }
        if user.role.is_staff() && actor.user.role != Role::Admin {
            return Err(Error::Forbidden);
        }
        let can_write = allows(actor.user.role, Action::ImpersonateWithWrites);
        let ttl = IMPERSONATION_TTL_SECS;
        let session = SessionId::new();
        let now = self.now_ms();
        let target = id.to_string();
        let mut tx = self.db().begin().await?;
        store::sessions::insert(
            &mut tx,
            store::sessions::NewSession {
                id: &session,
                user_id: id,
                user_agent: Some(&format!("impersonation by {}", actor.user.email)),
                ip: Some(&actor.via),
                now_ms: now,
                expires_ms: now + ttl * 1000,
            },
        )
        .await?;
        let after = serde_json::json!({ "session": session.to_string(), "expires_in": ttl, "can_write": can_write });
        self.draft(actor, "user.impersonate", &target, Some(reason))
            .write(&mut tx, serde_json::json!({}), after, now)
            .await?;
        tx.commit().await?;
        let token =
            self.sign_impersonation_token(id, &session, user.role, ttl, &actor.user.id, can_write)?;
        Ok(Impersonation {
            access_token: token,
            token_type: "bearer",
            expires_in: ttl,
            can_write,
        })
    }

    /// Gives a past-due subscription `days` more before its limits drop to free.
    pub async fn admin_extend_grace(
        &self,
        actor: &Actor,
        id: &UserId,
        days: i64,
        reason: Option<&str>,
    ) -> Result<()> {
        self.authorize(actor, Action::ChangePlan)?;
        let reason = Self::require_reason(reason)?;
        let r = self.resolve_subscription(id).await?;
        let mut row = crate::store::subscriptions::SubscriptionRow::clone(&r.row);
        let now = self.now_ms();
        let before = row.grace_until;
        row.grace_until = Some(row.grace_until.unwrap_or(now).max(now) + days * 86_400_000);
        row.updated_at = now;
        let target = id.to_string();
        let mut tx = self.db().begin().await?;
        store::subscriptions::update(&mut tx, &row).await?;
        self.draft(actor, "user.grace", &target, Some(reason))
            .write(
                &mut tx,
                serde_json::json!({ "grace_until": before }),
                serde_json::json!({ "grace_until": row.grace_until }),
                now,
            )
            .await?;
        tx.commit().await?;
        self.subscription_changed(id.as_str());
        Ok(())
    }

    pub async fn admin_stats(&self, actor: &Actor, days: i64) -> Result<Stats> {
        self.authorize(actor, Action::ViewStats)?;
        if !(1..=366).contains(&days) {
            return Err(Error::validation(
                "days",
                "out_of_range",
                "days must be between 1 and 366",
            ));
        }
        self.home_stats(days).await
    }

    pub async fn admin_audit(&self, actor: &Actor, f: &AuditFilter) -> Result<Vec<AuditEntry>> {
        Ok(self.admin_audit_page(actor, f).await?.entries)
    }

    /// The audit log one page at a time (the console pages with `next_cursor`).
    pub async fn admin_audit_page(&self, actor: &Actor, f: &AuditFilter) -> Result<AuditPage> {
        self.authorize(actor, Action::ViewAudit)?;
        self.audit_page(f).await
    }

    pub async fn admin_list_staff(&self, actor: &Actor) -> Result<Vec<User>> {
        self.authorize(actor, Action::ManageStaff)?;
        Ok(store::admin::staff(self.db().read())
            .await?
            .into_iter()
            .map(store::users::UserRow::into_user)
            .collect())
    }

    /// Gives an account a role (including back to `user`), audited.
    pub async fn admin_set_role(
        &self,
        actor: &Actor,
        email: &str,
        role: Role,
        reason: Option<&str>,
    ) -> Result<User> {
        self.authorize(actor, Action::ManageStaff)?;
        let email = crate::domain::Email::parse(email)?;
        let row = store::users::find_live_by_email(self.db().read(), &email)
            .await?
            .ok_or(Error::NotFound("user"))?;
        let before = row.role.clone();
        let id = UserId::parse(&row.id)?;
        if id == actor.user.id && role != Role::Admin {
            return Err(Error::validation(
                "role",
                "self",
                "you cannot take away your own admin role",
            ));
        }
        let now = self.now_ms();
        let target = id.to_string();
        let mut tx = self.db().begin().await?;
        store::users::set_role(&mut tx, &id, role, now).await?;
        self.draft(actor, "staff.role", &target, reason)
            .write(
                &mut tx,
                serde_json::json!({ "role": before }),
                serde_json::json!({ "role": role }),
                now,
            )
            .await?;
        tx.commit().await?;
        self.forget_verified_keys();
        self.user(&id).await
    }

    /// The account behind a staff token or key, as an actor.
    pub fn actor(&self, principal: &super::auth::Principal, via: &str) -> Result<Actor> {
        if let super::auth::Credential::Session {
            impersonated_by: Some(_),
            ..
        } = &principal.credential
        {
            // Staff powers never pass through an impersonation token.
            return Err(Error::Forbidden);
        }
        Ok(Actor {
            user: principal.user.clone(),
            via: via.to_owned(),
        })
    }
}

/// Impersonation tokens live ten minutes.
pub const IMPERSONATION_TTL_SECS: i64 = 600;
