//! Received Stripe events as operators read them (`tollgate stripe events …`).

use super::Engine;
use crate::domain::UserId;
use crate::error::Result;
use crate::store::{at, stripe};
use chrono::{DateTime, Utc};

/// One stored Stripe event and how applying it went.
#[derive(Debug, Clone, PartialEq)]
pub struct StripeEventRecord {
    pub id: String,
    pub type_: String,
    pub created: DateTime<Utc>,
    pub livemode: bool,
    /// pending, applied, failed or ignored.
    pub status: String,
    pub error: Option<String>,
    pub customer_id: Option<String>,
    pub user_id: Option<UserId>,
    pub received_at: DateTime<Utc>,
    pub applied_at: Option<DateTime<Utc>>,
    pub attempts: i64,
    /// The payload as received (a string when it was not JSON).
    pub payload: serde_json::Value,
}

impl From<stripe::EventRow> for StripeEventRecord {
    fn from(e: stripe::EventRow) -> Self {
        let payload = serde_json::from_str::<serde_json::Value>(&e.payload)
            .unwrap_or(serde_json::Value::String(e.payload));
        StripeEventRecord {
            id: e.id,
            type_: e.type_,
            created: at(e.created),
            livemode: e.livemode != 0,
            status: e.status,
            error: e.error,
            customer_id: e.customer_id,
            user_id: e.user_id,
            received_at: at(e.received_at),
            applied_at: e.applied_at.map(at),
            attempts: e.attempts,
            payload,
        }
    }
}

impl Engine {
    /// Stored events, oldest first, optionally of one type and status.
    pub async fn stripe_events(
        &self,
        type_: Option<&str>,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<StripeEventRecord>> {
        let rows = stripe::list_events(self.db().read(), type_, status, limit).await?;
        Ok(rows.into_iter().map(StripeEventRecord::from).collect())
    }

    /// One stored event, if it was received.
    pub async fn stripe_event(&self, id: &str) -> Result<Option<StripeEventRecord>> {
        Ok(stripe::event(self.db().read(), id)
            .await?
            .map(StripeEventRecord::from))
    }
}

/// The back office's view of stored events (`/v1/admin/stripe/events`, the console's Stripe
/// events screen): listing, one event's raw JSON, replay (or its dry run) and import.
pub mod admin {
    use crate::domain::UserId;
    use crate::error::{Error, Result};
    use crate::service::admin::Actor;
    use crate::service::permissions::Action;
    use crate::service::Engine;
    use crate::store::stripe::{self as db, EventRow};
    use crate::store::{at, subscriptions, usage, users, AnyConn};
    use crate::stripe::apply::ApplyError;
    use crate::stripe::replay::parse_events;
    use crate::stripe::{event, EventStatus};
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Serialize};
    use sqlx::Connection;
    use std::collections::BTreeSet;

    /// Filters and paging of the event list.
    #[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams, utoipa::ToSchema)]
    #[cfg_attr(feature = "desktop", derive(specta::Type))]
    #[into_params(parameter_in = Query)]
    pub struct StripeEventQuery {
        /// An event type such as `invoice.paid`.
        #[serde(rename = "type")]
        pub type_: Option<String>,
        /// `pending`, `applied`, `failed` or `ignored`.
        pub status: Option<String>,
        /// A Stripe customer (`cus_…`) or a user (`usr_…`).
        pub customer: Option<String>,
        /// `next_cursor` of the previous page.
        pub cursor: Option<String>,
        /// 1 to 500, 100 by default.
        #[param(minimum = 1, maximum = 500, default = 100)]
        pub limit: Option<i64>,
    }

    /// One stored event as the list shows it.
    #[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
    #[cfg_attr(feature = "desktop", derive(specta::Type))]
    pub struct StripeEventSummary {
        pub id: String,
        #[serde(rename = "type")]
        pub type_: String,
        pub created: DateTime<Utc>,
        pub livemode: bool,
        pub status: String,
        pub error: Option<String>,
        pub customer_id: Option<String>,
        pub user_id: Option<UserId>,
        pub received_at: DateTime<Utc>,
        pub applied_at: Option<DateTime<Utc>>,
        pub attempts: i64,
    }

    impl From<&EventRow> for StripeEventSummary {
        fn from(e: &EventRow) -> Self {
            StripeEventSummary {
                id: e.id.clone(),
                type_: e.type_.clone(),
                created: at(e.created),
                livemode: e.livemode != 0,
                status: e.status.clone(),
                error: e.error.clone(),
                customer_id: e.customer_id.clone(),
                user_id: e.user_id.clone(),
                received_at: at(e.received_at),
                applied_at: e.applied_at.map(at),
                attempts: e.attempts,
            }
        }
    }

    #[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
    #[cfg_attr(feature = "desktop", derive(specta::Type))]
    pub struct StripeEventPage {
        pub events: Vec<StripeEventSummary>,
        pub next_cursor: Option<String>,
    }

    /// One event with its payload exactly as received.
    #[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
    #[cfg_attr(feature = "desktop", derive(specta::Type))]
    pub struct StripeEventDetail {
        pub event: StripeEventSummary,
        /// The raw JSON text.
        pub raw: String,
    }

    /// Which events to replay, and whether for real.
    #[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
    #[cfg_attr(feature = "desktop", derive(specta::Type))]
    #[schema(examples(json!({"ids": ["evt_1QXf2aLkdIwHu7ix0bC5d1Ev"], "dry_run": true, "reason": null})))]
    pub struct ReplayRequest {
        pub ids: Vec<String>,
        /// Apply inside a transaction that is rolled back: the diff says what would change.
        pub dry_run: bool,
        pub reason: Option<String>,
    }

    /// What a user looks like to billing at one moment.
    #[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
    #[cfg_attr(feature = "desktop", derive(specta::Type))]
    pub struct BillingState {
        /// The account: `active`, `suspended`, `deleted`.
        pub account_status: Option<String>,
        pub subscription_status: Option<String>,
        /// `pro@1`.
        pub plan_version: Option<String>,
        pub credits: Vec<CreditBalance>,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
    #[cfg_attr(feature = "desktop", derive(specta::Type))]
    pub struct CreditBalance {
        pub metric: String,
        pub balance: i64,
    }

    /// One user's state before and after the events, and the fields that differ.
    #[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
    #[cfg_attr(feature = "desktop", derive(specta::Type))]
    pub struct UserStateDiff {
        pub user_id: UserId,
        pub before: BillingState,
        pub after: BillingState,
        /// `account_status`, `subscription_status`, `plan_version`, `credits`.
        pub changed: Vec<String>,
    }

    /// What applying one event did (or would do).
    #[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
    #[cfg_attr(feature = "desktop", derive(specta::Type))]
    pub struct ReplayedEvent {
        pub id: String,
        #[serde(rename = "type")]
        pub type_: String,
        /// `applied`, `pending`, `failed` or `ignored`; `skipped` (already applied before)
        /// in a command-line replay.
        pub outcome: String,
        pub error: Option<String>,
        pub changes: Vec<String>,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
    #[cfg_attr(feature = "desktop", derive(specta::Type))]
    pub struct ReplayReport {
        pub dry_run: bool,
        pub events: Vec<ReplayedEvent>,
        pub users: Vec<UserStateDiff>,
    }

    /// An events file to store as pending.
    #[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
    #[cfg_attr(feature = "desktop", derive(specta::Type))]
    #[schema(examples(json!({"events": "[{\"id\": \"evt_1QXf2aLkdIwHu7ix0bC5d1Ev\", \"type\": \"invoice.paid\", ...}]", "unsigned_local_test_data": true, "reason": "reproduce ticket 4711"})))]
    pub struct StripeEventImport {
        /// A JSON array of events, JSON lines, or the output of `stripe events list`.
        pub events: String,
        /// Required: files carry no `Stripe-Signature` header, so their events cannot be
        /// verified and are stored only as unsigned local test data.
        pub unsigned_local_test_data: bool,
        pub reason: Option<String>,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
    #[cfg_attr(feature = "desktop", derive(specta::Type))]
    pub struct ImportReport {
        /// Stored as pending.
        pub stored: Vec<String>,
        /// Already stored: left as they were.
        pub duplicates: Vec<String>,
        /// JSON values that were not events.
        pub notes: Vec<String>,
    }

    fn cursor_of(e: &EventRow) -> String {
        format!("{}:{}", e.created, e.id)
    }

    fn parse_cursor(c: &str) -> Result<(i64, &str)> {
        c.split_once(':')
            .and_then(|(t, id)| Some((t.parse().ok()?, id)))
            .ok_or_else(|| Error::validation("cursor", "invalid", "not a cursor of this list"))
    }

    fn blank(s: &Option<String>) -> Option<&str> {
        s.as_deref().map(str::trim).filter(|s| !s.is_empty())
    }

    impl Engine {
        /// Stored events, newest first, by type, status and customer or user.
        pub async fn admin_stripe_events(
            &self,
            actor: &Actor,
            q: &StripeEventQuery,
        ) -> Result<StripeEventPage> {
            self.authorize(actor, Action::ViewStripeEvents)?;
            let limit = q.limit.unwrap_or(100);
            if !(1..=500).contains(&limit) {
                return Err(Error::validation(
                    "limit",
                    "out_of_range",
                    "limit must be between 1 and 500",
                ));
            }
            let status = blank(&q.status);
            if let Some(s) = status.filter(|s| EventStatus::parse(s).is_none()) {
                return Err(Error::validation(
                    "status",
                    "invalid",
                    &format!("`{s}` is not pending, applied, failed or ignored"),
                ));
            }
            let after = blank(&q.cursor).map(parse_cursor).transpose()?;
            let mut rows = db::page_events(
                self.db().read(),
                blank(&q.type_),
                status,
                blank(&q.customer),
                after,
                limit + 1,
            )
            .await?;
            let more = rows.len() as i64 > limit;
            rows.truncate(limit as usize);
            Ok(StripeEventPage {
                next_cursor: rows.last().filter(|_| more).map(cursor_of),
                events: rows.iter().map(StripeEventSummary::from).collect(),
            })
        }

        /// One stored event with its raw JSON.
        pub async fn admin_stripe_event(
            &self,
            actor: &Actor,
            id: &str,
        ) -> Result<StripeEventDetail> {
            self.authorize(actor, Action::ViewStripeEvents)?;
            let row = db::event(self.db().read(), id.trim())
                .await?
                .ok_or(Error::NotFound("stripe event"))?;
            Ok(StripeEventDetail {
                event: StripeEventSummary::from(&row),
                raw: row.payload,
            })
        }

        /// Applies the events again (whatever their status), oldest first, with each user's
        /// state before and after. A dry run runs the same code in a transaction that is rolled
        /// back; a real replay commits it with an audit entry (`stripe.replay`).
        pub async fn admin_replay_stripe_events(
            &self,
            actor: &Actor,
            req: &ReplayRequest,
        ) -> Result<ReplayReport> {
            self.authorize(actor, Action::ReplayStripeEvents)?;
            let mut ids: Vec<&str> = req.ids.iter().map(|s| s.trim()).collect();
            ids.sort_unstable();
            ids.dedup();
            if ids.is_empty() || ids.len() > 500 {
                return Err(Error::validation(
                    "ids",
                    "out_of_range",
                    "choose between 1 and 500 events",
                ));
            }
            let mut rows = Vec::new();
            for id in &ids {
                rows.push(
                    db::event(self.db().read(), id)
                        .await?
                        .ok_or(Error::NotFound("stripe event"))?,
                );
            }
            rows.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));

            let mut tx = self.db().begin().await?;
            // The users the events touch: known before, or linked by applying them (found by
            // applying in a savepoint that is rolled back, so that "before" is untouched).
            let mut users: BTreeSet<UserId> = BTreeSet::new();
            {
                let mut sp = tx.begin().await?;
                for row in &rows {
                    users.extend(row.user_id.clone());
                    if let Some(c) = &row.customer_id {
                        users.extend(db::customer_in(&mut sp, c).await?.map(|c| c.user_id));
                    }
                    for e in self.apply_again(&mut sp, &row.id, &ids).await? {
                        users.extend(e.1);
                    }
                }
                sp.rollback().await?;
            }
            let mut before = Vec::new();
            for u in &users {
                before.push(self.billing_state(&mut tx, u).await?);
            }
            let mut events = Vec::new();
            for row in &rows {
                events.extend(
                    self.apply_again(&mut tx, &row.id, &ids)
                        .await?
                        .into_iter()
                        .map(|e| e.0),
                );
            }
            let mut diffs = Vec::new();
            for (u, before) in users.iter().zip(before) {
                let after = self.billing_state(&mut tx, u).await?;
                let mut changed = Vec::new();
                if before.account_status != after.account_status {
                    changed.push("account_status".to_owned());
                }
                if before.subscription_status != after.subscription_status {
                    changed.push("subscription_status".to_owned());
                }
                if before.plan_version != after.plan_version {
                    changed.push("plan_version".to_owned());
                }
                if before.credits != after.credits {
                    changed.push("credits".to_owned());
                }
                diffs.push(UserStateDiff {
                    user_id: u.clone(),
                    before,
                    after,
                    changed,
                });
            }
            if req.dry_run {
                tx.rollback().await?;
            } else {
                let target = ids.join(",");
                self.draft(actor, "stripe.replay", &target, req.reason.as_deref())
                    .write(
                        &mut tx,
                        serde_json::to_value(diffs.iter().map(|d| (&d.user_id, &d.before)).collect::<Vec<_>>())
                            .unwrap_or_default(),
                        serde_json::json!({ "events": &events, "users": diffs.iter().map(|d| (&d.user_id, &d.after)).collect::<Vec<_>>() }),
                        self.now_ms(),
                    )
                    .await?;
                tx.commit().await?;
                for d in diffs.iter().filter(|d| !d.changed.is_empty()) {
                    self.subscription_changed(&d.user_id);
                }
            }
            Ok(ReplayReport {
                dry_run: req.dry_run,
                events,
                users: diffs,
            })
        }

        /// Applies one stored event in a savepoint of `tx` whatever its status (applying is
        /// idempotent), then the pending events of a customer it linked (those not `selected`:
        /// the selected ones follow in their own turn). Returns each event applied with the
        /// user it touched.
        async fn apply_again(
            &self,
            tx: &mut AnyConn,
            id: &str,
            selected: &[&str],
        ) -> Result<Vec<(ReplayedEvent, Option<UserId>)>> {
            let row = db::event_in(tx, id)
                .await?
                .ok_or(Error::NotFound("stripe event"))?;
            let mut out = Vec::new();
            let mut sp = tx.begin().await?;
            let now = self.now_ms();
            let (done, linked) = match self.apply_in(&mut sp, &row).await {
                Ok(a) => {
                    a.record(&mut sp, id, now).await?;
                    sp.commit().await?;
                    let user = a.user_id.clone();
                    (
                        (
                            ReplayedEvent {
                                id: row.id.clone(),
                                type_: row.type_.clone(),
                                outcome: a.status.as_str().into(),
                                error: a.error,
                                changes: a.changes,
                            },
                            user,
                        ),
                        a.linked_customer,
                    )
                }
                Err(ApplyError::Invalid(m)) => {
                    sp.rollback().await?;
                    db::set_event_outcome(
                        tx,
                        id,
                        EventStatus::Failed.as_str(),
                        Some(&m),
                        None,
                        now,
                    )
                    .await?;
                    (
                        (
                            ReplayedEvent {
                                id: row.id.clone(),
                                type_: row.type_.clone(),
                                outcome: EventStatus::Failed.as_str().into(),
                                error: Some(m),
                                changes: vec![],
                            },
                            None,
                        ),
                        None,
                    )
                }
                Err(ApplyError::Store(e)) => return Err(e),
            };
            out.push(done);
            if let Some(customer) = linked {
                for pending in db::pending_ids_for_customer(tx, &customer).await? {
                    if pending != id && !selected.contains(&pending.as_str()) {
                        out.extend(Box::pin(self.apply_again(tx, &pending, selected)).await?);
                    }
                }
            }
            Ok(out)
        }

        /// The user's account status, subscription, plan version and credits, read in `tx`.
        async fn billing_state(&self, tx: &mut AnyConn, user: &str) -> Result<BillingState> {
            let account = users::status_in(tx, user).await?;
            let sub = subscriptions::for_user_in(tx, user).await?;
            let plan_version = match &sub {
                Some(s) => Some(self.plan_version(&s.plan_version_id).await?.label()),
                None => None,
            };
            let credits = usage::credits_of_user_in(tx, user)
                .await?
                .into_iter()
                .map(|(metric, balance)| CreditBalance { metric, balance })
                .collect();
            Ok(BillingState {
                account_status: account,
                subscription_status: sub.map(|s| s.status),
                plan_version,
                credits,
            })
        }

        /// Stores the events of a file as pending and held: nothing applies them but a replay
        /// (not upkeep, not a webhook linking their customer). Files carry no signature, so
        /// they are accepted only when marked as unsigned local test data.
        pub async fn admin_import_stripe_events(
            &self,
            actor: &Actor,
            import: &StripeEventImport,
        ) -> Result<ImportReport> {
            self.authorize(actor, Action::ReplayStripeEvents)?;
            if !import.unsigned_local_test_data {
                return Err(Error::validation(
                    "unsigned_local_test_data",
                    "signature_required",
                    "an events file carries no Stripe-Signature header, so its events cannot be \
                     verified: import it only as unsigned local test data",
                ));
            }
            let (inputs, notes) = parse_events(&import.events, "the file")
                .map_err(|e| Error::InvalidStripeEvent(e.to_string()))?;
            if inputs.is_empty() {
                return Err(Error::InvalidStripeEvent(
                    "the file holds no Stripe events".into(),
                ));
            }
            let mut report = ImportReport {
                stored: vec![],
                duplicates: vec![],
                notes,
            };
            let mut tx = self.db().begin().await?;
            for input in &inputs {
                let env =
                    event::envelope(input.payload.as_bytes()).map_err(Error::InvalidStripeEvent)?;
                if self
                    .store_stripe_event(&mut tx, &env, &input.payload)
                    .await?
                {
                    db::hold_event(&mut tx, &env.id).await?;
                    report.stored.push(env.id);
                } else {
                    report.duplicates.push(env.id);
                }
            }
            self.draft(
                actor,
                "stripe.import",
                "unsigned local test data",
                import.reason.as_deref(),
            )
            .write(
                &mut tx,
                serde_json::Value::Null,
                serde_json::json!({ "stored": &report.stored, "duplicates": &report.duplicates }),
                self.now_ms(),
            )
            .await?;
            tx.commit().await?;
            Ok(report)
        }
    }
}
