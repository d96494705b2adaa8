//! The memory strategy: counters and balances held in this process, loaded on first use, and
//! written by one group commit (`memory_writer`) before each request is answered.

use super::memory_writer::{self, Batch, OwnedEvent, Queue, Shared, Write};
use super::{credit_answer, limit_answer, new_event_id, refusal, replay, stored_credits};
use super::{Consumption, MeterRequest, CREDIT_PERIOD};
use crate::domain::UserId;
use crate::error::{Error, Result};
use crate::plans::rules::{self, Credits, Rule};
use crate::service::subscriptions::Resolved;
use crate::service::Engine;
use crate::store::{ms, usage};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

type CounterKey = (String, String, i64);
type CreditKey = (String, String);

/// A quota counter held in memory, with the end of its window.
#[derive(Debug, Clone, Copy)]
pub(super) struct Counter {
    pub(super) used: i64,
    /// Unix ms; after it no request counts on this window, and the entry may go.
    pub(super) ends_at: i64,
}

/// How often counters of windows that have ended are dropped.
const PRUNE_EVERY_MS: i64 = 60_000;

#[derive(Default)]
pub(crate) struct MemoryState {
    pub(super) counters: HashMap<CounterKey, Counter>,
    /// When counters of ended windows were last dropped (unix ms).
    pruned_at: i64,
    pub(super) credits: HashMap<CreditKey, Credits>,
    /// Answers of consumptions not committed yet, by (user, idempotency key).
    pub(super) answers: HashMap<(String, String), Consumption>,
}

pub(crate) struct MemoryMeter {
    shared: Arc<Shared>,
    queue: Queue,
    /// Keeps the SQLite log's checkpoint thread running while the writer runs.
    _checkpoints: Option<std::sync::mpsc::Sender<()>>,
}

impl MemoryState {
    /// Drops the counters of windows that ended before `now_ms` (at most once a minute):
    /// nothing counts on them any more, and a process that runs for months would otherwise
    /// keep one per customer and window it has seen.
    fn prune_ended(&mut self, now_ms: i64) {
        if now_ms - self.pruned_at < PRUNE_EVERY_MS {
            return;
        }
        self.pruned_at = now_ms;
        self.counters.retain(|_, c| c.ends_at > now_ms);
    }
}

impl MemoryMeter {
    /// Starts the group commit (`memory_writer`).
    pub(crate) fn start(db: crate::store::Db) -> MemoryMeter {
        let shared = Arc::new(Shared {
            state: Mutex::new(MemoryState::default()),
            waiting: AtomicUsize::new(0),
            journaled: AtomicUsize::new(0),
        });
        let (queue, checkpoints) = memory_writer::start(db, shared.clone());
        MemoryMeter {
            shared,
            queue,
            _checkpoints: checkpoints,
        }
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, MemoryState> {
        self.shared.lock()
    }

    fn enqueue(&self, batch: Batch) -> bool {
        memory_writer::enqueue(&self.queue, &self.shared, batch)
    }

    /// Waits until every consumption answered so far is in the usage tables.
    pub(crate) async fn settle(&self) -> Result<()> {
        memory_writer::settle(&self.queue, &self.shared)
            .await
            .map_err(|e| Error::Internal(anyhow::anyhow!("moving the usage journal failed: {e}")))
    }

    /// Batches of usage waiting for the group commit.
    pub(crate) fn waiting(&self) -> usize {
        self.shared.waiting.load(Ordering::Relaxed)
    }

    /// Quota counters held in memory.
    pub(crate) fn held_counters(&self) -> usize {
        self.lock().counters.len()
    }
}

impl Engine {
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn consume_in_memory(
        &self,
        m: &MemoryMeter,
        user: &UserId,
        r: &Resolved,
        rule: Rule,
        req: &MeterRequest<'_>,
        now: DateTime<Utc>,
    ) -> Result<Consumption> {
        let uid = user.as_str();
        let idem = req.idempotency_key.map(|k| (uid.to_owned(), k.to_owned()));
        if let Some(key) = &idem {
            if let Some(a) = m.lock().answers.get(key) {
                return Ok(Consumption {
                    replayed: true,
                    ..a.clone()
                });
            }
            if let Some(ev) = usage::event_by_key(self.db().read(), uid, &key.1).await? {
                return replay(ev.answer.as_deref().unwrap_or("{}"));
            }
        }
        let event_id = new_event_id();
        let at_ms = ms(now);
        let event = |kind: &'static str,
                     amount: i64,
                     period_start: i64,
                     answer: Option<String>,
                     id: String| {
            OwnedEvent {
                id,
                user: uid.to_owned(),
                metric: req.metric.to_owned(),
                kind,
                amount,
                at: at_ms,
                period_start,
                request_id: req.request_id.map(str::to_owned),
                idempotency_key: if kind == "consume" {
                    req.idempotency_key.map(str::to_owned)
                } else {
                    None
                },
                answer,
                plan_version_id: Some(r.row.plan_version_id.as_str().to_owned()),
            }
        };
        // Loads what the decision needs, then decides under the lock; when a change of the
        // subscription made the process forget it in between, round again.
        let (answer, writes) = loop {
            // Load the counter or balance on first use, outside the lock.
            match rule {
                Rule::Limit { window, .. } => {
                    let key = (uid.to_owned(), req.metric.to_owned(), ms(window.start));
                    if !m.lock().counters.contains_key(&key) {
                        // Consumptions answered before the counter was forgotten may still
                        // be in the usage journal, not yet on the stored counter.
                        m.settle().await?;
                        let used =
                            usage::counter(self.db().read(), uid, req.metric, ms(window.start))
                                .await?
                                .unwrap_or(0);
                        let mut st = m.lock();
                        st.prune_ended(ms(now));
                        st.counters.entry(key).or_insert(Counter {
                            used,
                            ends_at: ms(window.end),
                        });
                    }
                }
                Rule::Credits { .. } => {
                    let key = (uid.to_owned(), req.metric.to_owned());
                    if !m.lock().credits.contains_key(&key) {
                        let row = usage::credits(self.db().read(), uid, req.metric, false).await?;
                        let v = row.map(stored_credits).unwrap_or(Credits::EMPTY);
                        m.lock().credits.entry(key).or_insert(v);
                    }
                }
            }
            let mut writes = Vec::new();
            let answer = {
                let mut st = m.lock();
                if let Some(key) = &idem {
                    if let Some(a) = st.answers.get(key) {
                        return Ok(Consumption {
                            replayed: true,
                            ..a.clone()
                        });
                    }
                }
                let answer = match rule {
                    Rule::Limit { limit, window } => {
                        let key = (uid.to_owned(), req.metric.to_owned(), ms(window.start));
                        // Forgotten since it was loaded (the subscription changed): load again.
                        let Some(used) = st.counters.get(&key).map(|c| c.used) else {
                            continue;
                        };
                        let used = rules::consume_within(limit, used, req.amount)
                            .map_err(|d| refusal(r, req.metric, req.amount, window, d))?;
                        st.counters.insert(
                            key,
                            Counter {
                                used,
                                ends_at: ms(window.end),
                            },
                        );
                        let answer = limit_answer(
                            event_id.clone(),
                            req.metric,
                            req.amount,
                            used,
                            limit,
                            window,
                        );
                        let json = serde_json::to_string(&answer).ok();
                        writes.push(Write::Counted {
                            event: event(
                                "consume",
                                req.amount,
                                ms(window.start),
                                json,
                                event_id.clone(),
                            ),
                            end: ms(window.end),
                        });
                        answer
                    }
                    Rule::Credits {
                        allowance,
                        rollover,
                        window,
                    } => {
                        let key = (uid.to_owned(), req.metric.to_owned());
                        let Some(before) = st.credits.get(&key).copied() else {
                            continue;
                        };
                        let renewal = rules::renew_credits(before, allowance, rollover, window);
                        let renewed = renewal.credits;
                        let granted_for = renewed.granted_for;
                        for (kind, amount) in &renewal.events {
                            writes.push(Write::Event(event(
                                kind,
                                *amount,
                                CREDIT_PERIOD,
                                None,
                                new_event_id(),
                            )));
                        }
                        if renewal.is_due(before) {
                            writes.push(Write::CreditDelta {
                                user: uid.to_owned(),
                                metric: req.metric.to_owned(),
                                delta: renewed.balance - before.balance,
                                granted_for,
                            });
                        }
                        st.credits.insert(key.clone(), renewed);
                        let balance = match rules::spend_credits(renewed.balance, req.amount) {
                            Ok(balance) => balance,
                            Err(denial) => {
                                // The renewal is real even when the consumption is refused.
                                if !writes.is_empty() {
                                    m.enqueue(Batch { writes, ack: None });
                                }
                                return Err(refusal(r, req.metric, req.amount, window, denial));
                            }
                        };
                        st.credits.insert(
                            key,
                            Credits {
                                balance,
                                granted_for,
                            },
                        );
                        let answer = credit_answer(
                            event_id.clone(),
                            req.metric,
                            req.amount,
                            balance,
                            allowance,
                            window,
                        );
                        let json = serde_json::to_string(&answer).ok();
                        writes.push(Write::Event(event(
                            "consume",
                            req.amount,
                            CREDIT_PERIOD,
                            json,
                            event_id.clone(),
                        )));
                        writes.push(Write::CreditDelta {
                            user: uid.to_owned(),
                            metric: req.metric.to_owned(),
                            delta: -req.amount,
                            granted_for,
                        });
                        answer
                    }
                };
                // Recorded under the decision's lock, so that a concurrent repeat of the key
                // sees it and replays instead of consuming a second time.
                if let Some(key) = &idem {
                    st.answers.insert(key.clone(), answer.clone());
                }
                answer
            };
            break (answer, writes);
        };
        let (ack, done) = oneshot::channel();
        let sent = m.enqueue(Batch {
            writes,
            ack: Some(ack),
        });
        let committed = if sent {
            done.await
                .unwrap_or_else(|_| Err("the usage writer stopped".into()))
        } else {
            Err("the usage writer stopped".into())
        };
        if let Err(e) = committed {
            // The database did not take it: forget the in-memory state so that the next
            // request reloads what was really committed.
            let mut st = m.lock();
            if let Some(key) = &idem {
                st.answers.remove(key);
            }
            match rule {
                Rule::Limit { window, .. } => {
                    st.counters
                        .remove(&(uid.to_owned(), req.metric.to_owned(), ms(window.start)));
                }
                Rule::Credits { .. } => {
                    st.credits.remove(&(uid.to_owned(), req.metric.to_owned()));
                }
            }
            return Err(Error::Internal(anyhow::anyhow!(
                "recording usage failed: {e}"
            )));
        }
        // Committed. The group commit drops the answer of the key once a repeat finds the event
        // in `usage_events`, so that only answers on their way there stay in memory.
        Ok(answer)
    }

    /// Waits until every consumption answered so far is in the usage tables, so that what is
    /// read next counts it (see `memory_writer`: the SQLite writer journals consumptions
    /// first). Immediate when nothing is journaled. The engine's readers of usage call it;
    /// a reader of the tables themselves calls it first.
    pub async fn settle_usage(&self) -> Result<()> {
        match &self.inner.memory {
            Some(m) => m.settle().await,
            None => Ok(()),
        }
    }

    pub(crate) fn forget_credits(&self, user: &str) {
        if let Some(m) = &self.inner.memory {
            m.lock().credits.retain(|(u, _), _| u != user);
        }
    }

    /// [`Engine::forget_counters`] for several users, in one pass.
    pub(crate) fn forget_counters_of(&self, users: &std::collections::HashSet<String>) {
        if let Some(m) = &self.inner.memory {
            let mut st = m.lock();
            st.counters.retain(|(u, _, _), _| !users.contains(u));
            st.credits.retain(|(u, _), _| !users.contains(u));
        }
    }

    pub(crate) fn forget_counters(&self, user: &str) {
        if let Some(m) = &self.inner.memory {
            let mut st = m.lock();
            st.counters.retain(|(u, _, _), _| u != user);
            st.credits.retain(|(u, _), _| u != user);
        }
    }
}
