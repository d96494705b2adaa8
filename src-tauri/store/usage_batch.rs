//! A group commit's writes: the usage events, counter deltas and balance changes of many
//! metered requests, committed in one transaction before any of them is answered. On SQLite
//! the dedicated writer thread commits them ([`super::sqlite_writer`]); elsewhere [`commit`].

use super::usage::{self, CounterDelta, NewEvent};
use super::Db;

/// One balance's net change in a group commit.
pub struct CreditDelta<'a> {
    pub user_id: &'a str,
    pub metric: &'a str,
    pub delta: i64,
    /// The latest grant period the balance has had its grant for.
    pub granted_for: i64,
}

/// Everything one group commit writes. Each counter and balance appears once.
#[derive(Default)]
pub struct GroupWrites<'a> {
    pub events: Vec<NewEvent<'a>>,
    pub counters: Vec<CounterDelta<'a>>,
    pub credits: Vec<CreditDelta<'a>>,
}

/// The error of a net spend that would take a balance below zero (the memory strategy
/// decided against a balance the database no longer has).
pub fn overdrawn(c: &CreditDelta<'_>) -> String {
    format!(
        "credit balance of {}/{} would go below zero",
        c.user_id, c.metric
    )
}

/// Commits `w` through the pool: one multi-row insert for the events, one multi-row upsert
/// for the counters, one statement per balance.
pub async fn commit(db: &Db, w: &GroupWrites<'_>) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    usage::insert_events_batch(&mut tx, &w.events).await?;
    usage::add_counters_batch(&mut tx, &w.counters).await?;
    for c in &w.credits {
        // A CHECK constraint is evaluated on the row an upsert would insert, so only a net
        // grant may create a balance; a net spend updates the existing one.
        if c.delta >= 0 {
            usage::add_credits_upsert(&mut tx, c.user_id, c.metric, c.delta, c.granted_for).await?;
        } else {
            if usage::add_credits(&mut tx, c.user_id, c.metric, c.delta)
                .await?
                .is_none()
            {
                return Err(sqlx::Error::Protocol(overdrawn(c)));
            }
            usage::advance_granted_for(&mut tx, c.user_id, c.metric, c.granted_for).await?;
        }
    }
    tx.commit().await
}
