//! Stripe events parsed at the edge: the envelope (id, type, created) read when an event is
//! stored, and the typed event (async-stripe's generated `Event`) turned into the few facts
//! Tollgate acts on. Field locations follow API 2025-03-31.basil and later: subscription
//! periods on `items.data[0]`, an invoice's subscription under `parent.subscription_details`.

use serde::Deserialize;
use std::collections::HashMap;
use stripe_webhook::{Event, EventObject};

/// What every stored event needs, read without the typed parser so that an event of a shape
/// the parser does not know is still kept (and can be replayed after an upgrade).
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub id: String,
    pub type_: String,
    /// Unix ms.
    pub created: i64,
    pub livemode: bool,
    /// The customer the event is about, when it names one.
    pub customer_id: Option<String>,
}

#[derive(Deserialize)]
struct RawEnvelope {
    id: String,
    object: String,
    #[serde(rename = "type")]
    type_: String,
    created: i64,
    #[serde(default)]
    livemode: bool,
    data: RawData,
}

#[derive(Deserialize)]
struct RawData {
    object: RawObject,
}

#[derive(Deserialize)]
struct RawObject {
    id: Option<String>,
    object: Option<String>,
    customer: Option<serde_json::Value>,
}

/// Reads the envelope of one event as Stripe sends it.
pub fn envelope(payload: &[u8]) -> Result<Envelope, String> {
    let raw: RawEnvelope = serde_json::from_slice(payload).map_err(|e| e.to_string())?;
    if raw.object != "event" || !raw.id.starts_with("evt_") {
        return Err(format!("`{}` is not a Stripe event", raw.id));
    }
    let customer_id = match (raw.data.object.object.as_deref(), raw.data.object.customer) {
        (Some("customer"), _) => raw.data.object.id,
        (_, Some(serde_json::Value::String(c))) => Some(c),
        (_, Some(serde_json::Value::Object(o))) => {
            o.get("id").and_then(|v| v.as_str()).map(str::to_owned)
        }
        _ => None,
    };
    Ok(Envelope {
        id: raw.id,
        type_: raw.type_,
        created: raw.created.saturating_mul(1000),
        livemode: raw.livemode,
        customer_id,
    })
}

/// Parses a payload into async-stripe's typed event.
pub fn parse(payload: &str) -> Result<Event, String> {
    serde_json::from_str::<Event>(payload).map_err(|e| format!("unreadable event: {e}"))
}

/// The state of a Stripe subscription as one event (or one API answer) shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionFacts {
    pub id: String,
    pub customer: String,
    /// `metadata.user_id`, as Tollgate's checkout sets it.
    pub user_ref: Option<String>,
    /// Stripe's status, as is (`active`, `past_due`, `incomplete_expired`, …).
    pub status: String,
    pub price_id: Option<String>,
    /// Unix ms.
    pub period_start: i64,
    pub period_end: i64,
    pub cancel_at_period_end: bool,
    pub trial_end: Option<i64>,
    pub ended_at: Option<i64>,
    pub started_at: i64,
    /// From a `customer.subscription.deleted` event: the subscription is over for good.
    pub deleted: bool,
}

/// A checkout session that completed.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckoutFacts {
    pub session_id: String,
    pub customer: Option<String>,
    pub subscription: Option<String>,
    pub user_ref: Option<String>,
    pub plan: Option<String>,
    pub paid: bool,
    pub created: i64,
}

/// An invoice as an `invoice.*` event shows it. Amounts in minor units.
#[derive(Debug, Clone, PartialEq)]
pub struct InvoiceFacts {
    pub id: String,
    pub customer: String,
    pub subscription: Option<String>,
    pub user_ref: Option<String>,
    pub status: String,
    pub amount_due: i64,
    pub amount_paid: i64,
    pub currency: String,
    pub billing_reason: Option<String>,
    pub price_id: Option<String>,
    /// The subscription period the invoice bills (its non-proration line), Unix ms.
    pub period: Option<(i64, i64)>,
    pub created: i64,
    pub paid_at: Option<i64>,
    pub attempt_count: i64,
}

/// A charge's refunds (cumulative).
#[derive(Debug, Clone, PartialEq)]
pub struct RefundFacts {
    pub charge_id: String,
    pub customer: String,
    pub payment_intent: Option<String>,
    pub amount: i64,
    pub amount_refunded: i64,
    pub currency: String,
    pub refunded: bool,
}

/// What an event means to Tollgate.
#[derive(Debug, Clone, PartialEq)]
pub enum Fact {
    CheckoutCompleted(CheckoutFacts),
    Subscription(SubscriptionFacts),
    InvoicePaid(InvoiceFacts),
    InvoicePaymentFailed(InvoiceFacts),
    Refund(RefundFacts),
    CustomerDeleted {
        customer: String,
    },
    /// A type Tollgate does not act on: stored and acknowledged.
    Ignored,
}

impl Fact {
    pub fn customer(&self) -> Option<&str> {
        match self {
            Fact::CheckoutCompleted(c) => c.customer.as_deref(),
            Fact::Subscription(s) => Some(&s.customer),
            Fact::InvoicePaid(i) | Fact::InvoicePaymentFailed(i) => Some(&i.customer),
            Fact::Refund(r) => Some(&r.customer),
            Fact::CustomerDeleted { customer } => Some(customer),
            Fact::Ignored => None,
        }
    }

    /// The Tollgate user id the object's metadata names, if any.
    pub fn user_ref(&self) -> Option<&str> {
        match self {
            Fact::CheckoutCompleted(c) => c.user_ref.as_deref(),
            Fact::Subscription(s) => s.user_ref.as_deref(),
            Fact::InvoicePaid(i) | Fact::InvoicePaymentFailed(i) => i.user_ref.as_deref(),
            _ => None,
        }
    }
}

fn ms(secs: i64) -> i64 {
    secs.saturating_mul(1000)
}

fn user_ref(meta: Option<&HashMap<String, String>>) -> Option<String> {
    meta.and_then(|m| m.get("user_id"))
        .filter(|s| !s.is_empty())
        .cloned()
}

/// The facts of a subscription object (from an event or from the API).
pub fn subscription_facts(s: &stripe_shared::Subscription, deleted: bool) -> SubscriptionFacts {
    let item = s.items.data.first();
    SubscriptionFacts {
        id: s.id.as_str().to_owned(),
        customer: s.customer.id().as_str().to_owned(),
        user_ref: user_ref(Some(&s.metadata)),
        status: s.status.as_str().to_owned(),
        price_id: item.map(|i| i.price.id.as_str().to_owned()),
        period_start: ms(item.map_or(s.start_date, |i| i.current_period_start)),
        period_end: ms(item.map_or(s.start_date, |i| i.current_period_end)),
        cancel_at_period_end: s.cancel_at_period_end,
        trial_end: s.trial_end.map(ms),
        ended_at: s.ended_at.map(ms),
        started_at: ms(s.created),
        deleted,
    }
}

/// The facts of an invoice object. `raw` is the same object as JSON, for the top-level
/// `subscription` that API versions before basil used.
pub fn invoice_facts(
    inv: &stripe_shared::Invoice,
    raw: Option<&serde_json::Value>,
) -> Result<InvoiceFacts, String> {
    let id = inv
        .id
        .as_ref()
        .ok_or("an invoice without an id")?
        .as_str()
        .to_owned();
    let customer = inv
        .customer
        .as_ref()
        .ok_or_else(|| format!("invoice {id} has no customer"))?
        .id()
        .as_str()
        .to_owned();
    let parent = inv
        .parent
        .as_ref()
        .and_then(|p| p.subscription_details.as_ref());
    let subscription = parent
        .map(|d| d.subscription.id().as_str().to_owned())
        .or_else(|| {
            inv.subscription
                .as_ref()
                .map(|s| s.id().as_str().to_owned())
        })
        .or_else(|| {
            raw.and_then(|r| r.get("subscription"))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        });
    // The line that bills the subscription's period (not a proration) carries the period
    // and the price; a proration-only invoice has a price but no new period.
    let lines = &inv.lines.data;
    let is_period_line = |l: &&stripe_shared::InvoiceLineItem| {
        l.parent
            .as_ref()
            .and_then(|p| p.subscription_item_details.as_ref())
            .is_some_and(|d| !d.proration)
    };
    let price_of = |l: &stripe_shared::InvoiceLineItem| {
        l.pricing
            .as_ref()
            .and_then(|p| p.price_details.as_ref())
            .map(|d| d.price.id().as_str().to_owned())
    };
    let period_line = lines.iter().find(is_period_line);
    let price_id = period_line
        .and_then(price_of)
        .or_else(|| lines.iter().rev().find_map(price_of));
    Ok(InvoiceFacts {
        customer,
        subscription,
        user_ref: user_ref(parent.and_then(|d| d.metadata.as_ref())),
        status: inv
            .status
            .as_ref()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_else(|| "draft".into()),
        amount_due: inv.amount_due,
        amount_paid: inv.amount_paid,
        currency: inv.currency.to_string(),
        billing_reason: inv.billing_reason.as_ref().map(|r| r.as_str().to_owned()),
        price_id,
        period: period_line.map(|l| (ms(l.period.start), ms(l.period.end))),
        created: ms(inv.created),
        paid_at: inv.status_transitions.paid_at.map(ms),
        attempt_count: inv.attempt_count as i64,
        id,
    })
}

/// What a typed event means to Tollgate.
pub fn facts(event: &Event, raw: &serde_json::Value) -> Result<Fact, String> {
    let raw_object = raw.get("data").and_then(|d| d.get("object"));
    Ok(match &event.data.object {
        EventObject::CheckoutSessionCompleted(s) => Fact::CheckoutCompleted(CheckoutFacts {
            session_id: s.id.as_str().to_owned(),
            customer: s.customer.as_ref().map(|c| c.id().as_str().to_owned()),
            subscription: s.subscription.as_ref().map(|x| x.id().as_str().to_owned()),
            user_ref: user_ref(s.metadata.as_ref()).or_else(|| s.client_reference_id.clone()),
            plan: s.metadata.as_ref().and_then(|m| m.get("plan")).cloned(),
            paid: matches!(s.payment_status.as_str(), "paid" | "no_payment_required"),
            created: ms(s.created),
        }),
        EventObject::CustomerSubscriptionCreated(s)
        | EventObject::CustomerSubscriptionUpdated(s) => {
            Fact::Subscription(subscription_facts(s, false))
        }
        EventObject::CustomerSubscriptionDeleted(s) => {
            Fact::Subscription(subscription_facts(s, true))
        }
        EventObject::InvoicePaid(i) | EventObject::InvoicePaymentSucceeded(i) => {
            Fact::InvoicePaid(invoice_facts(i, raw_object)?)
        }
        EventObject::InvoicePaymentFailed(i) => {
            Fact::InvoicePaymentFailed(invoice_facts(i, raw_object)?)
        }
        EventObject::ChargeRefunded(c) => Fact::Refund(RefundFacts {
            charge_id: c.id.as_str().to_owned(),
            customer: c
                .customer
                .as_ref()
                .ok_or_else(|| format!("charge {} has no customer", c.id.as_str()))?
                .id()
                .as_str()
                .to_owned(),
            payment_intent: c
                .payment_intent
                .as_ref()
                .map(|p| p.id().as_str().to_owned()),
            amount: c.amount,
            amount_refunded: c.amount_refunded,
            currency: c.currency.to_string(),
            refunded: c.refunded,
        }),
        EventObject::CustomerDeleted(c) => Fact::CustomerDeleted {
            customer: c.id.as_str().to_owned(),
        },
        _ => Fact::Ignored,
    })
}

/// The event types Tollgate acts on; every other type is stored and acknowledged.
pub const HANDLED_TYPES: &[&str] = &[
    "checkout.session.completed",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "invoice.payment_succeeded",
    "invoice.payment_failed",
    "charge.refunded",
    "customer.deleted",
];
