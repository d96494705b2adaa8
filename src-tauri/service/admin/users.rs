//! Finding a user among many (filters, sort, cursor pages) and everything support sees about
//! one of them.

use super::{Actor, Explanation};
use crate::domain::{Role, UsageEventId, User, UserId, UserStatus};
use crate::error::{Error, Result};
use crate::service::api_keys::ApiKeyInfo;
use crate::service::audit::{AuditEntry, AuditFilter};
use crate::service::permissions::Action;
use crate::service::subscriptions::SubscriptionView;
use crate::service::Engine;
use crate::store::{self, at, ms};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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
    pub id: UserId,
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
    pub usage: crate::service::metering::UsageSummary,
    pub sessions: Vec<crate::service::accounts::SessionInfo>,
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
    pub recent_mail: Vec<crate::service::mail::MailSummary>,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub struct UsageEventView {
    pub id: UsageEventId,
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
                .map(crate::service::decisions::explain)
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
}
