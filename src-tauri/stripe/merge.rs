//! Merging Stripe facts into what Tollgate stores, with rules that do not depend on arrival
//! order: the newest event wins for a subscription, a deleted subscription stays deleted, an
//! invoice once paid stays paid, the largest refunded amount wins. Pure functions: the
//! caller reads the stored row and writes the merged one.

use super::event::{InvoiceFacts, RefundFacts, SubscriptionFacts};
use crate::domain::UserId;
use crate::store::stripe::{InvoiceRow, RefundRow, SubscriptionState};

/// Statuses that end a subscription for good.
pub(crate) fn is_terminal(stripe_status: &str) -> bool {
    matches!(stripe_status, "canceled" | "incomplete_expired")
}

/// The status Tollgate keeps for a subscription: a deleted one is `canceled` unless Stripe
/// already gave it a terminal status.
pub(crate) fn stored_status(s: &SubscriptionFacts) -> &str {
    if s.deleted && !is_terminal(&s.status) {
        "canceled"
    } else {
        &s.status
    }
}

/// Which event (or reconciliation) a subscription state comes from: its time (Unix ms) and
/// name. Of two states, the later key wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct StateKey<'a> {
    pub at: i64,
    pub event: &'a str,
}

/// The stored state a subscription's facts call for: the one constructor of a
/// `SubscriptionState`, shared by events and by reconciliation.
pub(crate) fn subscription_state(
    s: &SubscriptionFacts,
    user: &UserId,
    key: StateKey<'_>,
    now_ms: i64,
) -> SubscriptionState {
    SubscriptionState {
        subscription_id: s.id.clone(),
        customer_id: s.customer.clone(),
        user_id: user.clone(),
        price_id: s.price_id.clone(),
        status: stored_status(s).to_owned(),
        current_period_start: s.period_start,
        current_period_end: s.period_end,
        cancel_at_period_end: i64::from(s.cancel_at_period_end),
        trial_end: s.trial_end,
        ended_at: s.ended_at,
        started_at: s.started_at,
        deleted: i64::from(s.deleted),
        state_at: key.at,
        state_event: key.event.to_owned(),
        updated_at: now_ms,
    }
}

/// The provisional state of a subscription a paid checkout created, until the subscription's
/// own events arrive: older than any real event, so that the first of them replaces it.
pub(crate) fn checkout_state(
    subscription: &str,
    customer: &str,
    user: &UserId,
    price: &str,
    (period_start, period_end): (i64, i64),
    now_ms: i64,
) -> SubscriptionState {
    SubscriptionState {
        subscription_id: subscription.to_owned(),
        customer_id: customer.to_owned(),
        user_id: user.clone(),
        price_id: Some(price.to_owned()),
        status: "active".into(),
        current_period_start: period_start,
        current_period_end: period_end,
        cancel_at_period_end: 0,
        trial_end: None,
        ended_at: None,
        started_at: period_start,
        deleted: 0,
        state_at: 0,
        state_event: String::new(),
        updated_at: now_ms,
    }
}

/// Whether facts carried by `key` replace the state already stored.
pub(crate) fn replaces(
    existing: Option<&SubscriptionState>,
    s: &SubscriptionFacts,
    key: StateKey<'_>,
) -> bool {
    match existing {
        None => true,
        // A deleted subscription stays deleted; among deletions, the newest wins.
        Some(e) if e.deleted != 0 && !s.deleted => false,
        Some(e) if e.deleted == 0 && s.deleted => true,
        Some(e) => {
            key > StateKey {
                at: e.state_at,
                event: &e.state_event,
            }
        }
    }
}

fn status_rank(invoice_status: &str) -> u8 {
    match invoice_status {
        "paid" => 4,
        "void" | "uncollectible" => 3,
        "open" => 2,
        _ => 1,
    }
}

/// An invoice merged with what is stored of it. `plan_id` is the plan of the invoice's price,
/// when the catalog knows it; `failed_at` the time of a payment-failure event.
pub(crate) fn merged_invoice(
    existing: Option<&InvoiceRow>,
    i: &InvoiceFacts,
    user: &UserId,
    plan_id: Option<String>,
    failed_at: Option<i64>,
    now_ms: i64,
) -> InvoiceRow {
    let status = match existing {
        Some(e) if status_rank(&e.status) >= status_rank(&i.status) => e.status.clone(),
        _ => i.status.clone(),
    };
    let earliest = |a: Option<i64>, b: Option<i64>| match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let latest = |a: Option<i64>, b: Option<i64>| match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    InvoiceRow {
        invoice_id: i.id.clone(),
        customer_id: i.customer.clone(),
        user_id: user.clone(),
        subscription_id: i
            .subscription
            .clone()
            .or_else(|| existing.and_then(|e| e.subscription_id.clone())),
        status,
        amount_due: existing.map_or(i.amount_due, |e| e.amount_due.max(i.amount_due)),
        amount_paid: existing.map_or(i.amount_paid, |e| e.amount_paid.max(i.amount_paid)),
        currency: i.currency.clone(),
        billing_reason: i.billing_reason.clone(),
        price_id: i
            .price_id
            .clone()
            .or_else(|| existing.and_then(|e| e.price_id.clone())),
        plan_id: plan_id.or_else(|| existing.and_then(|e| e.plan_id.clone())),
        period_start: i
            .period
            .map(|p| p.0)
            .or_else(|| existing.and_then(|e| e.period_start)),
        period_end: i
            .period
            .map(|p| p.1)
            .or_else(|| existing.and_then(|e| e.period_end)),
        created: i.created,
        paid_at: earliest(existing.and_then(|e| e.paid_at), i.paid_at),
        failed_at: latest(existing.and_then(|e| e.failed_at), failed_at),
        attempt_count: existing.map_or(i.attempt_count, |e| e.attempt_count.max(i.attempt_count)),
        updated_at: now_ms,
    }
}

/// A charge's refunds merged with what is stored of them; `event_at` is the event's time.
pub(crate) fn merged_refund(
    existing: Option<&RefundRow>,
    r: &RefundFacts,
    user: &UserId,
    event_at: i64,
    now_ms: i64,
) -> RefundRow {
    RefundRow {
        charge_id: r.charge_id.clone(),
        customer_id: r.customer.clone(),
        user_id: user.clone(),
        payment_intent: r.payment_intent.clone(),
        amount: r.amount,
        amount_refunded: existing.map_or(r.amount_refunded, |e| {
            e.amount_refunded.max(r.amount_refunded)
        }),
        currency: r.currency.clone(),
        refunded: existing.map_or(i64::from(r.refunded), |e| {
            e.refunded.max(i64::from(r.refunded))
        }),
        refunded_at: existing.map_or(event_at, |e| e.refunded_at.max(event_at)),
        updated_at: now_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u() -> UserId {
        UserId::parse("usr_u").unwrap()
    }

    fn sub(status: &str, deleted: bool) -> SubscriptionFacts {
        SubscriptionFacts {
            id: "sub_1".into(),
            customer: "cus_1".into(),
            user_ref: None,
            status: status.into(),
            price_id: Some("price_pro_monthly".into()),
            period_start: 1_000,
            period_end: 2_000,
            cancel_at_period_end: false,
            trial_end: None,
            ended_at: None,
            started_at: 500,
            deleted,
        }
    }

    fn key(at: i64, event: &str) -> StateKey<'_> {
        StateKey { at, event }
    }

    fn invoice(status: &str, paid: i64, paid_at: Option<i64>) -> InvoiceFacts {
        InvoiceFacts {
            id: "in_1".into(),
            customer: "cus_1".into(),
            subscription: Some("sub_1".into()),
            user_ref: None,
            status: status.into(),
            amount_due: 1200,
            amount_paid: paid,
            currency: "usd".into(),
            billing_reason: Some("subscription_create".into()),
            price_id: Some("price_pro_monthly".into()),
            period: Some((1_000, 2_000)),
            created: 900,
            paid_at,
            attempt_count: 1,
        }
    }

    fn refund(refunded: i64, full: bool) -> RefundFacts {
        RefundFacts {
            charge_id: "ch_1".into(),
            customer: "cus_1".into(),
            payment_intent: None,
            amount: 1200,
            amount_refunded: refunded,
            currency: "usd".into(),
            refunded: full,
        }
    }

    #[test]
    fn a_deleted_subscription_is_stored_canceled_unless_already_terminal() {
        let s = |status, deleted| subscription_state(&sub(status, deleted), &u(), key(1, "e"), 9);
        assert_eq!(s("active", true).status, "canceled");
        assert_eq!(s("past_due", true).status, "canceled");
        assert_eq!(s("incomplete_expired", true).status, "incomplete_expired");
        assert_eq!(s("active", false).status, "active");
        let st = s("active", true);
        assert_eq!(
            (
                st.deleted,
                st.state_at,
                st.state_event.as_str(),
                st.updated_at
            ),
            (1, 1, "e", 9)
        );
    }

    #[test]
    fn any_event_of_the_subscription_replaces_a_checkout_state() {
        let provisional = checkout_state("sub_1", "cus_1", &u(), "price_pro_monthly", (10, 20), 0);
        assert!(replaces(
            Some(&provisional),
            &sub("past_due", false),
            key(1, "evt_a")
        ));
    }

    #[test]
    fn the_newest_state_wins_and_a_deletion_stays() {
        let stored = subscription_state(&sub("active", false), &u(), key(100, "evt_b"), 0);
        assert!(replaces(None, &sub("active", false), key(1, "evt_a")));
        assert!(replaces(
            Some(&stored),
            &sub("past_due", false),
            key(101, "evt_a")
        ));
        assert!(!replaces(
            Some(&stored),
            &sub("past_due", false),
            key(99, "evt_z")
        ));
        // Same time: the event id breaks the tie, so every order agrees.
        assert!(replaces(
            Some(&stored),
            &sub("past_due", false),
            key(100, "evt_c")
        ));
        assert!(!replaces(
            Some(&stored),
            &sub("past_due", false),
            key(100, "evt_a")
        ));
        // A deletion replaces any live state, even an older one; nothing revives it.
        assert!(replaces(
            Some(&stored),
            &sub("canceled", true),
            key(1, "evt_a")
        ));
        let deleted = subscription_state(&sub("canceled", true), &u(), key(100, "evt_b"), 0);
        assert!(!replaces(
            Some(&deleted),
            &sub("active", false),
            key(500, "evt_z")
        ));
        assert!(replaces(
            Some(&deleted),
            &sub("canceled", true),
            key(500, "evt_z")
        ));
    }

    #[test]
    fn an_invoice_once_paid_stays_paid_whatever_arrives_after() {
        let paid = merged_invoice(None, &invoice("paid", 1200, Some(950)), &u(), None, None, 1);
        let failed = merged_invoice(
            Some(&paid),
            &invoice("open", 0, None),
            &u(),
            None,
            Some(960),
            2,
        );
        assert_eq!((failed.status.as_str(), failed.amount_paid), ("paid", 1200));
        assert_eq!((failed.paid_at, failed.failed_at), (Some(950), Some(960)));
        // The other order reaches the same facts.
        let open = merged_invoice(None, &invoice("open", 0, None), &u(), None, Some(960), 1);
        let then_paid = merged_invoice(
            Some(&open),
            &invoice("paid", 1200, Some(950)),
            &u(),
            None,
            None,
            2,
        );
        assert_eq!(
            InvoiceRow {
                updated_at: 2,
                ..failed
            },
            then_paid
        );
    }

    #[test]
    fn an_invoice_keeps_what_a_later_event_leaves_out() {
        let first = merged_invoice(
            None,
            &invoice("paid", 1200, Some(950)),
            &u(),
            Some("pro".into()),
            None,
            1,
        );
        let mut bare = invoice("paid", 1200, Some(970));
        bare.subscription = None;
        bare.price_id = None;
        bare.period = None;
        let again = merged_invoice(Some(&first), &bare, &u(), None, None, 2);
        assert_eq!(again.subscription_id.as_deref(), Some("sub_1"));
        assert_eq!(again.plan_id.as_deref(), Some("pro"));
        assert_eq!(
            (again.period_start, again.period_end),
            (Some(1_000), Some(2_000))
        );
        assert_eq!(again.paid_at, Some(950), "the earliest payment time");
        assert_eq!(
            InvoiceRow {
                updated_at: 2,
                ..first
            },
            again,
            "nothing new"
        );
    }

    #[test]
    fn the_largest_refund_wins_in_any_order() {
        let partial = merged_refund(None, &refund(400, false), &u(), 10, 1);
        let full = merged_refund(Some(&partial), &refund(1200, true), &u(), 20, 2);
        let late_partial = merged_refund(Some(&full), &refund(400, false), &u(), 15, 3);
        assert_eq!(
            (
                late_partial.amount_refunded,
                late_partial.refunded,
                late_partial.refunded_at
            ),
            (1200, 1, 20)
        );
    }
}
