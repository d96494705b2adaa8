//! Stripe billing in three steps: receiving (`receive`: verify and store, then apply in the
//! background), merging Stripe's facts order-independently (`event` parses them, `merge`
//! combines them with what is stored, `apply` runs both per event), and projecting them onto
//! the user's subscription (`project`). Beside them: Checkout and the billing portal
//! (`billing`), replay of stored or exported events (`replay`), and reconciliation against
//! Stripe's API (`reconcile`).

pub mod apply;
pub mod billing;
pub mod client;
pub mod event;
pub mod merge;
pub mod project;
pub mod receive;
pub mod reconcile;
pub mod replay;
pub mod signature;

pub use apply::Applied;
pub use receive::{EventStatus, Received};
