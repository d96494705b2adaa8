//! The back office: one module used by the admin HTTP API, the CLI and the desktop console.
//! Every function checks the permission table for the acting staff member and writes an audit
//! event in the same transaction as the change it makes.

use super::api_keys::ApiKeyInfo;
use super::audit::{AuditEntry, AuditFilter, AuditPage, Draft};
pub use super::decisions::{Explanation, Fix};
use super::permissions::{allows, Action};
use super::subscriptions::{Effective, SubscriptionView};
use super::Engine;
use crate::domain::{KeyId, Role, SessionId, User, UserId, UserStatus};
use crate::error::{Error, Result};
use crate::store::{self, at, ms};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A staff member acting in the back office, and from where.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user: User,
    /// Client IP, or `desktop` / `cli`.
    pub via: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub enum UserSort {
    #[default]
    CreatedDesc,
    CreatedAsc,
    EmailAsc,
}

/// Filters and page of `GET /v1/admin/users`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// Search text: an exact user id (`usr_…`), a Stripe customer id (`cus_…`), or an email
    /// prefix (`ada@`) or any part of it (3 characters or more).
    pub q: Option<String>,
    /// Users whose current plan is this one (`pro`).
    pub plan: Option<String>,
    #[param(inline)]
    pub status: Option<UserStatus>,
    #[param(inline)]
    pub role: Option<Role>,
    /// Signed up at or after this time (RFC 3339).
    pub created_after: Option<DateTime<Utc>>,
    /// Signed up before this time (RFC 3339).
    pub created_before: Option<DateTime<Utc>>,
    #[param(inline)]
    pub sort: Option<UserSort>,
    /// 1 to 200; 50 by default.
    #[param(minimum = 1, maximum = 200, default = 50)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub full_name: Option<String>,
    pub role: String,
    pub status: String,
    pub plan: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub struct UserPage {
    pub users: Vec<UserRow>,
    /// Users matching the filters, counted up to [`COUNT_CAP`].
    pub total: i64,
    /// True when there are more than `total` matches.
    pub total_capped: bool,
    pub next_cursor: Option<String>,
}

/// Counting stops here so that a page answers fast at any scale.
pub const COUNT_CAP: i64 = 100_000;

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub struct UserDetail {
    pub user: User,
    pub subscription: SubscriptionView,
    pub usage: super::metering::UsageSummary,
    pub sessions: Vec<super::accounts::SessionInfo>,
    pub keys: Vec<ApiKeyInfo>,
    pub recent_usage: Vec<UsageEventView>,
    pub audit: Vec<AuditEntry>,
    /// The latest events of each credit metric: grants, spends, expiries (newest first).
    pub credit_ledger: Vec<UsageEventView>,
    /// The latest refused requests, each explained.
    pub refusals: Vec<Explanation>,
    /// When the email was verified; `None` while it is not.
    pub email_verified_at: Option<DateTime<Utc>>,
    /// Whether two-factor authentication (TOTP) is on.
    pub mfa_enabled: bool,
    /// Unused recovery codes (0 when two-factor is off).
    pub recovery_codes_left: i64,
    /// The latest mail sent (or waiting) to the user, newest first, without bodies.
    pub recent_mail: Vec<super::mail::MailSummary>,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub struct UsageEventView {
    pub id: String,
    pub metric: String,
    pub kind: String,
    pub amount: i64,
    pub at: DateTime<Utc>,
    pub request_id: Option<String>,
    pub released: bool,
}

impl From<store::usage::EventRow> for UsageEventView {
    fn from(e: store::usage::EventRow) -> Self {
        UsageEventView {
            id: e.id,
            metric: e.metric,
            kind: e.kind,
            amount: e.amount,
            at: at(e.at),
            request_id: e.request_id,
            released: e.released != 0,
        }
    }
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

/// A page cursor of the user search: the sort key and the id of the last row shown.
pub fn cursor_encode(key: &str, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{key}\n{id}"))
}

/// Reads a cursor a client sent back (outside input: anything may arrive).
pub fn cursor_decode(c: &str) -> Result<(String, String)> {
    let bad = || Error::validation("cursor", "invalid", "cursor is not one this API gave out");
    let raw = URL_SAFE_NO_PAD.decode(c).map_err(|_| bad())?;
    let s = String::from_utf8(raw).map_err(|_| bad())?;
    let (k, id) = s.split_once('\n').ok_or_else(bad)?;
    Ok((k.to_owned(), id.to_owned()))
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

    /// Search and page through users.
    pub async fn admin_list_users(&self, actor: &Actor, q: &UserQuery) -> Result<UserPage> {
        use store::admin::{After, EmailMatch, UserOrder, UserSearch};
        self.authorize(actor, Action::ListUsers)?;
        let limit = q.limit.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Err(Error::validation(
                "limit",
                "out_of_range",
                "limit must be between 1 and 200",
            ));
        }
        let sort = q.sort.unwrap_or_default();
        let mut search = UserSearch {
            status: q.status.map(|s| s.as_str().to_owned()),
            role: q.role.map(|r| r.as_str().to_owned()),
            created_after: q.created_after.map(ms),
            created_before: q.created_before.map(ms),
            ..Default::default()
        };
        if let Some(text) =
            q.q.as_deref()
                .map(|t| t.trim().to_lowercase())
                .filter(|t| !t.is_empty())
        {
            if text.len() > 254 {
                return Err(Error::validation(
                    "q",
                    "too_long",
                    "search text is longer than an email",
                ));
            }
            let raw = q.q.as_deref().unwrap_or_default().trim();
            if text.starts_with("usr_") {
                // Ids are case-sensitive: search with the text as typed.
                search.id = Some(raw.to_owned());
            } else if text.starts_with("cus_") {
                search.stripe_customer = Some(raw.to_owned());
            } else {
                let prefix_like = text.contains('@') || text.chars().count() < 3;
                search.email = Some(if prefix_like {
                    EmailMatch::Prefix(text)
                } else {
                    EmailMatch::Substring(text)
                });
            }
        }
        if let Some(plan) = &q.plan {
            let versions = store::admin::plan_version_ids(self.db().read(), plan).await?;
            if versions.is_empty() {
                return Ok(UserPage {
                    users: vec![],
                    total: 0,
                    total_capped: false,
                    next_cursor: None,
                });
            }
            search.plan_versions = Some(versions);
        }
        let after = match &q.cursor {
            None => None,
            Some(c) => {
                let (key, id) = cursor_decode(c)?;
                Some(match sort {
                    UserSort::CreatedDesc | UserSort::CreatedAsc => {
                        let k: i64 = key.parse().map_err(|_| {
                            Error::validation("cursor", "invalid", "cursor does not fit this sort")
                        })?;
                        After::Created(k, id)
                    }
                    UserSort::EmailAsc => After::Email(key, id),
                })
            }
        };
        let order = match sort {
            UserSort::CreatedDesc => UserOrder::CreatedDesc,
            UserSort::CreatedAsc => UserOrder::CreatedAsc,
            UserSort::EmailAsc => UserOrder::EmailAsc,
        };
        let (rows, total) = store::admin::search_users(
            self.db().read(),
            self.db().kind(),
            &search,
            order,
            after.as_ref(),
            limit + 1,
            COUNT_CAP + 1,
        )
        .await?;
        let has_more = rows.len() as i64 > limit;
        let mut users: Vec<UserRow> = rows
            .into_iter()
            .take(limit as usize)
            .map(|r| UserRow {
                id: r.id,
                email: r.email,
                full_name: r.full_name,
                role: r.role,
                status: r.status,
                plan: format!("{}@{}", r.plan_id, r.plan_version),
                created_at: at(r.created_at),
            })
            .collect();
        let next_cursor = if has_more {
            users.last().map(|u| match sort {
                UserSort::EmailAsc => cursor_encode(&u.email, &u.id),
                _ => cursor_encode(&ms(u.created_at).to_string(), &u.id),
            })
        } else {
            None
        };
        users.shrink_to_fit();
        Ok(UserPage {
            users,
            total: total.min(COUNT_CAP),
            total_capped: total > COUNT_CAP,
            next_cursor,
        })
    }

    /// Everything support needs to know about one user.
    pub async fn admin_user_detail(&self, actor: &Actor, id: &UserId) -> Result<UserDetail> {
        self.authorize(actor, Action::ViewUser)?;
        let user = self.user(id).await?;
        let recent = store::usage::recent_events(self.db().read(), id.as_str(), 50).await?;
        let usage = self.usage_summary(id).await?;
        let mut credit_ledger = Vec::new();
        for metric in usage.credits.keys() {
            credit_ledger.extend(
                store::usage::recent_events_of(self.db().read(), id.as_str(), metric, 50)
                    .await?
                    .into_iter()
                    .map(UsageEventView::from),
            );
        }
        credit_ledger.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| b.id.cmp(&a.id)));
        Ok(UserDetail {
            subscription: self.subscription(id).await?,
            usage,
            sessions: self.list_sessions(id, None).await?,
            keys: self.list_api_keys(id).await?,
            recent_usage: recent.into_iter().map(UsageEventView::from).collect(),
            credit_ledger,
            refusals: self
                .recent_decisions(id, 20)
                .await?
                .into_iter()
                .map(super::decisions::explain)
                .collect(),
            audit: self
                .audit_log(&AuditFilter {
                    target: Some(id.to_string()),
                    limit: Some(50),
                    ..Default::default()
                })
                .await?,
            email_verified_at: self.email_verified_at(id).await?,
            mfa_enabled: self.mfa_enabled(id).await?,
            recovery_codes_left: self.recovery_codes_left(id).await?,
            recent_mail: self.list_mail(Some(id.as_str()), 20).await?,
            user,
        })
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
        self.clear_rate_limits(id);
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
        let cleared = self.clear_rate_limits(id);
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
