//! Comparing Tollgate's billing state with Stripe's API: every subscription (all statuses) and
//! the invoices of the last days, page by page. Each difference is reported; with `apply`,
//! Stripe's answer is taken as the newest state (audited) and the user's row re-projected.

use super::apply::Applied;
use super::client::StripeClient;
use super::event::{self, SubscriptionFacts};
use super::merge::{self, is_terminal, StateKey};
use super::receive::EventStatus;
use crate::domain::UserId;
use crate::error::Result;
use crate::service::Engine;
use crate::store::stripe::{self as db, SubscriptionState};
use crate::store::{audit, subscriptions as subs, AnyConn};
use serde::Serialize;
use std::collections::HashSet;

/// One difference between Stripe and Tollgate.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Mismatch {
    /// The Stripe object (`sub_…`, `in_…`) or the user it is about.
    pub target: String,
    pub what: String,
    /// True when `--apply` resynced it.
    pub fixed: bool,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ReconcileReport {
    pub subscriptions_checked: usize,
    pub invoices_checked: usize,
    pub mismatches: Vec<Mismatch>,
}

impl ReconcileReport {
    /// A listed object whose JSON did not parse: reported, never applied.
    fn unreadable(&mut self, id: String, e: impl std::fmt::Display) {
        self.mismatches.push(Mismatch {
            target: id,
            what: format!("Stripe's answer could not be read: {e}"),
            fixed: false,
        });
    }
}

const RECONCILE_EVENT: &str = "reconcile";

fn differences(ours: Option<&SubscriptionState>, theirs: &SubscriptionFacts) -> Vec<String> {
    let Some(o) = ours else {
        return vec![format!("unknown to Tollgate (Stripe: {})", theirs.status)];
    };
    let mut d = Vec::new();
    let their_status = merge::stored_status(theirs);
    if o.status != their_status {
        d.push(format!("status {} (Stripe: {their_status})", o.status));
    }
    if o.price_id != theirs.price_id {
        d.push(format!(
            "price {} (Stripe: {})",
            o.price_id.as_deref().unwrap_or("none"),
            theirs.price_id.as_deref().unwrap_or("none")
        ));
    }
    if (o.current_period_start, o.current_period_end) != (theirs.period_start, theirs.period_end) {
        d.push("current period differs".into());
    }
    if (o.cancel_at_period_end != 0) != theirs.cancel_at_period_end {
        d.push(format!(
            "cancel_at_period_end {} (Stripe: {})",
            o.cancel_at_period_end != 0,
            theirs.cancel_at_period_end
        ));
    }
    d
}

impl Engine {
    /// Lists Stripe's subscriptions and the invoices of the last `days` days and compares them
    /// with what Tollgate holds; with `apply`, resyncs each difference (audited as `actor`).
    #[tracing::instrument(skip(self))]
    pub async fn reconcile_stripe(
        &self,
        apply: bool,
        days: i64,
        actor: &str,
    ) -> Result<ReconcileReport> {
        let client = StripeClient::from_settings(self.settings())?;
        let mut report = ReconcileReport::default();
        let listed = client.list_subscriptions().await?;
        let mut seen = HashSet::new();
        for raw in listed {
            report.subscriptions_checked += 1;
            let id = object_id(&raw);
            let parsed: std::result::Result<stripe_shared::Subscription, _> =
                serde_json::from_value(raw);
            let s = match parsed {
                Ok(s) => {
                    let deleted = is_terminal(s.status.as_str());
                    event::subscription_facts(&s, deleted)
                }
                Err(e) => {
                    report.unreadable(id, e);
                    continue;
                }
            };
            seen.insert(s.id.clone());
            self.reconcile_subscription(&s, apply, actor, &mut report)
                .await?;
        }
        // Live in Tollgate, unknown to Stripe.
        for st in db::all_subscription_states(self.db().read()).await? {
            if seen.contains(&st.subscription_id) || st.deleted != 0 || is_terminal(&st.status) {
                continue;
            }
            let mut m = Mismatch {
                target: st.subscription_id.clone(),
                what: format!("{} in Tollgate, but Stripe does not list it", st.status),
                fixed: false,
            };
            if apply {
                let mut ended = st.clone();
                ended.status = "canceled".into();
                ended.deleted = 1;
                ended.ended_at = Some(self.now_ms());
                ended.state_at = self.now_ms();
                ended.state_event = RECONCILE_EVENT.into();
                self.resync_state(&st.user_id, Some(&st), &ended, actor)
                    .await?;
                m.fixed = true;
            }
            report.mismatches.push(m);
        }
        self.reconcile_invoices(&client, apply, days, actor, &mut report)
            .await?;
        Ok(report)
    }

    async fn user_of_customer(
        &self,
        conn: &mut AnyConn,
        s: &SubscriptionFacts,
    ) -> Result<Option<UserId>> {
        if let Some(c) = db::customer_in(conn, &s.customer).await? {
            return Ok(Some(c.user_id));
        }
        Ok(None)
    }

    async fn reconcile_subscription(
        &self,
        s: &SubscriptionFacts,
        apply: bool,
        actor: &str,
        report: &mut ReconcileReport,
    ) -> Result<()> {
        let (user, ours) = {
            let mut conn = self.db().read().acquire().await?;
            let user = self.user_of_customer(&mut conn, s).await?;
            let ours = db::subscription_state_in(&mut conn, &s.id).await?;
            (user, ours)
        };
        let Some(user) = user else {
            report.mismatches.push(Mismatch {
                target: s.id.clone(),
                what: format!(
                    "belongs to customer {}, who is linked to no Tollgate user",
                    s.customer
                ),
                fixed: false,
            });
            return Ok(());
        };
        let diffs = differences(ours.as_ref(), s);
        if !diffs.is_empty() {
            let fixed = if apply {
                let now = self.now_ms();
                // Stripe's answer now is newer than every event received so far.
                let key = StateKey {
                    at: now,
                    event: RECONCILE_EVENT,
                };
                let state = merge::subscription_state(s, &user, key, now);
                self.resync_state(&user, ours.as_ref(), &state, actor)
                    .await?;
                true
            } else {
                false
            };
            report.mismatches.push(Mismatch {
                target: s.id.clone(),
                what: diffs.join("; "),
                fixed,
            });
            return Ok(());
        }
        // The facts agree; does the user's row follow them?
        let mut tx = self.db().begin().await?;
        let row = subs::for_user_in(&mut tx, &user).await?;
        let projected = match &row {
            Some(r) => Some(self.projected_row(&mut tx, r).await?),
            None => None,
        };
        let differs = match (&row, &projected) {
            (Some(r), Some(p)) => {
                subs::SubscriptionRow {
                    updated_at: r.updated_at,
                    ..p.clone()
                } != *r
            }
            _ => false,
        };
        if differs {
            let fixed = if apply {
                let (_, words) = self.project_user(&mut tx, &user).await?;
                audit::insert(
                    &mut tx,
                    &audit::NewAudit {
                        actor,
                        action: "stripe.reconcile",
                        target: &user,
                        before: &format!("{:?}", row),
                        after: &words.join("; "),
                        reason: Some("subscription row differed from Stripe's state"),
                        ip: None,
                        at: self.now_ms(),
                    },
                )
                .await?;
                tx.commit().await?;
                self.subscription_changed(&user);
                true
            } else {
                tx.rollback().await?;
                false
            };
            report.mismatches.push(Mismatch {
                target: user.to_string(),
                what: format!("subscription row does not follow Stripe's {}", s.id),
                fixed,
            });
        } else {
            tx.rollback().await?;
        }
        Ok(())
    }

    async fn resync_state(
        &self,
        user: &str,
        before: Option<&SubscriptionState>,
        after: &SubscriptionState,
        actor: &str,
    ) -> Result<()> {
        let mut tx = self.db().begin().await?;
        db::lock_user(&mut tx, user, self.is_postgres()).await?;
        db::put_subscription_state(&mut tx, after).await?;
        self.project_user(&mut tx, user).await?;
        audit::insert(
            &mut tx,
            &audit::NewAudit {
                actor,
                action: "stripe.reconcile",
                target: &after.subscription_id,
                before: &serde_json::to_string(&before).unwrap_or_default(),
                after: &serde_json::to_string(after).unwrap_or_default(),
                reason: Some("resynced from Stripe's API"),
                ip: None,
                at: self.now_ms(),
            },
        )
        .await?;
        tx.commit().await?;
        self.subscription_changed(user);
        Ok(())
    }

    async fn reconcile_invoices(
        &self,
        client: &StripeClient,
        apply: bool,
        days: i64,
        actor: &str,
        report: &mut ReconcileReport,
    ) -> Result<()> {
        let since = self.now().timestamp() - days.max(0) * 86_400;
        let listed = client.list_invoices_since(since).await?;
        for raw in listed {
            report.invoices_checked += 1;
            let id = object_id(&raw);
            let facts = serde_json::from_value::<stripe_shared::Invoice>(raw.clone())
                .map_err(|e| e.to_string())
                .and_then(|inv| event::invoice_facts(&inv, Some(&raw)));
            let i = match facts {
                Ok(i) => i,
                Err(e) => {
                    report.unreadable(id, e);
                    continue;
                }
            };
            if !matches!(i.status.as_str(), "paid" | "open") {
                continue;
            }
            let mut tx = self.db().begin().await?;
            let Some(customer) = db::customer_in(&mut tx, &i.customer).await? else {
                tx.rollback().await?;
                report.mismatches.push(Mismatch {
                    target: i.id.clone(),
                    what: format!(
                        "invoice of customer {}, who is linked to no Tollgate user",
                        i.customer
                    ),
                    fixed: false,
                });
                continue;
            };
            let ours = db::invoice_in(&mut tx, &i.id).await?;
            let what = match &ours {
                None => Some(format!(
                    "{} invoice of {} {} unknown to Tollgate",
                    i.status, i.amount_paid, i.currency
                )),
                Some(o) if o.status != i.status || o.amount_paid != i.amount_paid => Some(format!(
                    "{} with {} paid (Stripe: {} with {} paid)",
                    o.status, o.amount_paid, i.status, i.amount_paid
                )),
                Some(_) => None,
            };
            let Some(what) = what else {
                tx.rollback().await?;
                continue;
            };
            let fixed = if apply {
                let mut out = Applied::new(EventStatus::Applied);
                db::lock_user(&mut tx, &customer.user_id, self.is_postgres()).await?;
                self.merge_invoice(&mut tx, &customer.user_id, &i, None, &mut out)
                    .await?;
                self.project_user(&mut tx, &customer.user_id).await?;
                audit::insert(
                    &mut tx,
                    &audit::NewAudit {
                        actor,
                        action: "stripe.reconcile",
                        target: &i.id,
                        before: &serde_json::to_string(&ours).unwrap_or_default(),
                        after: &out.changes.join("; "),
                        reason: Some("resynced from Stripe's API"),
                        ip: None,
                        at: self.now_ms(),
                    },
                )
                .await?;
                tx.commit().await?;
                self.subscription_changed(&customer.user_id);
                true
            } else {
                tx.rollback().await?;
                false
            };
            report.mismatches.push(Mismatch {
                target: i.id.clone(),
                what,
                fixed,
            });
        }
        Ok(())
    }
}

/// A listed Stripe object's id, for reports about objects that may not parse.
fn object_id(raw: &serde_json::Value) -> String {
    raw.get("id")
        .and_then(|v| v.as_str())
        .unwrap_or("?")
        .to_owned()
}
