//! Stripe billing: webhook verification and storage, typed event parsing, applying events to
//! subscriptions (idempotent and order-independent), Checkout and the billing portal, replay
//! of stored or exported events, and reconciliation against Stripe's API.

pub mod apply;
pub mod billing;
pub mod client;
pub mod event;
pub mod reconcile;
pub mod replay;
pub mod signature;

pub use apply::{Applied, EventStatus, Received};
