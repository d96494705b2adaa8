//! The memory strategy: counters and balances held in this process, loaded on first use, and
//! written by one group-commit task before each request is answered.

use super::{credit_answer, limit_answer, new_event_id, refusal, replay, stored_credits};
use super::{Consumption, MeterRequest, CREDIT_PERIOD};
use crate::domain::UserId;
use crate::error::{Error, Result};
use crate::plans::rules::{self, Credits, Rule};
use crate::service::subscriptions::Resolved;
use crate::service::Engine;
use crate::store::usage_batch::{self, CreditDelta, GroupWrites};
use crate::store::{ms, sqlite_writer, usage};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

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

/// How many buckets [`MemoryState::settled`] counts in.
const SETTLE_BUCKETS: usize = 1024;

pub(crate) struct MemoryState {
    pub(super) counters: HashMap<CounterKey, Counter>,
    /// When counters of ended windows were last dropped (unix ms).
    pruned_at: i64,
    pub(super) credits: HashMap<CreditKey, Credits>,
    /// Answers of consumptions not committed yet, by (user, idempotency key).
    pub(super) answers: HashMap<(String, String), Consumption>,
    /// Answers that left [`Self::answers`] once committed, counted by a hash of their key.
    /// A repeat that found its key neither here nor in the database decides only if its
    /// bucket has not moved since: otherwise the first may have committed and left memory
    /// while the repeat read the database, and the repeat reads it again.
    settled: Box<[u64]>,
}

fn settle_bucket(key: &(String, String)) -> usize {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    BuildHasherDefault::<DefaultHasher>::default().hash_one(key) as usize % SETTLE_BUCKETS
}

impl Default for MemoryState {
    fn default() -> Self {
        MemoryState {
            counters: HashMap::new(),
            pruned_at: 0,
            credits: HashMap::new(),
            answers: HashMap::new(),
            settled: vec![0; SETTLE_BUCKETS].into_boxed_slice(),
        }
    }
}

/// One write the group-commit task applies. All are deltas or inserts, so batches commute
/// with direct writes such as releases.
#[derive(Debug)]
enum Write {
    Event(OwnedEvent),
    CounterDelta {
        user: String,
        metric: String,
        start: i64,
        end: i64,
        delta: i64,
    },
    CreditDelta {
        user: String,
        metric: String,
        delta: i64,
        granted_for: i64,
    },
}

#[derive(Debug)]
struct OwnedEvent {
    id: String,
    user: String,
    metric: String,
    kind: &'static str,
    amount: i64,
    at: i64,
    period_start: i64,
    request_id: Option<String>,
    idempotency_key: Option<String>,
    answer: Option<String>,
    plan_version_id: Option<String>,
}

impl OwnedEvent {
    fn as_new(&self) -> usage::NewEvent<'_> {
        usage::NewEvent {
            id: &self.id,
            user_id: &self.user,
            metric: &self.metric,
            kind: self.kind,
            amount: self.amount,
            at: self.at,
            period_start: self.period_start,
            request_id: self.request_id.as_deref(),
            idempotency_key: self.idempotency_key.as_deref(),
            answer: self.answer.as_deref(),
            plan_version_id: self.plan_version_id.as_deref(),
        }
    }
}

struct Batch {
    writes: Vec<Write>,
    ack: Option<oneshot::Sender<std::result::Result<(), String>>>,
}

pub(crate) struct MemoryMeter {
    state: Mutex<MemoryState>,
    queue: mpsc::UnboundedSender<Batch>,
    /// Batches sent to the writer and not yet committed (the writer-queue gauge).
    waiting: Arc<AtomicUsize>,
}

impl MemoryState {
    /// The answer of `key` still on its way to disk, as a replay.
    fn replay_of(&self, key: &(String, String)) -> Option<Consumption> {
        self.answers.get(key).map(|a| Consumption {
            replayed: true,
            ..a.clone()
        })
    }

    /// The answer of `key` (in `bucket`) is committed: a repeat finds it in the database
    /// from now on.
    fn settle(&mut self, key: &(String, String), bucket: usize) {
        self.answers.remove(key);
        self.settled[bucket] += 1;
    }

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
    /// Starts the group commit: on a SQLite file, a writer thread of its own
    /// (`store::sqlite_writer`); otherwise a task committing through the pool.
    pub(crate) fn start(db: crate::store::Db) -> MemoryMeter {
        let (tx, rx) = mpsc::unbounded_channel();
        let waiting = Arc::new(AtomicUsize::new(0));
        match sqlite_writer::file_of(&db).map(|f| (sqlite_writer::open(&f), f)) {
            Some((Ok(conn), file)) => {
                let w = waiting.clone();
                // The writer holds the checkpoint thread, which stops when the writer does.
                let checkpoints = sqlite_writer::Checkpoints::start(file).ok();
                let (answers, answers_rx) = mpsc::unbounded_channel();
                tokio::spawn(answer_groups(answers_rx));
                if let Err(e) = std::thread::Builder::new()
                    .name("tollgate-usage-writer".into())
                    .spawn(move || write_on_thread(conn, rx, answers, w, checkpoints))
                {
                    panic!("could not start the usage writer thread: {e}");
                }
            }
            Some((Err(e), _)) => {
                tracing::warn!(error = %e, "could not open the usage writer's connection; usage is committed through the pool");
                tokio::spawn(group_commit(db, rx, waiting.clone()));
            }
            None => {
                tokio::spawn(group_commit(db, rx, waiting.clone()));
            }
        }
        MemoryMeter {
            state: Mutex::new(MemoryState::default()),
            queue: tx,
            waiting,
        }
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, MemoryState> {
        self.state.lock().expect("meter state lock")
    }

    fn enqueue(&self, batch: Batch) -> std::result::Result<(), mpsc::error::SendError<Batch>> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        self.queue.send(batch).inspect_err(|_| {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
        })
    }

    /// Batches of usage waiting for the group commit.
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Quota counters held in memory.
    pub(crate) fn held_counters(&self) -> usize {
        self.lock().counters.len()
    }
}

const MAX_BATCH: usize = 1024;

/// The batches waiting after `first`, up to [`MAX_BATCH`].
fn gather(first: Batch, rx: &mut mpsc::UnboundedReceiver<Batch>) -> Vec<Batch> {
    let mut batches = vec![first];
    while batches.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(b) => batches.push(b),
            Err(_) => break,
        }
    }
    batches
}

/// What answers the requests of a group: their senders, and the commit's result.
type Acks = (
    Vec<oneshot::Sender<std::result::Result<(), String>>>,
    std::result::Result<(), String>,
);

/// The group of `batches` is done: counts it out of the queue and returns what answers it.
fn done(
    batches: Vec<Batch>,
    result: std::result::Result<(), String>,
    waiting: &AtomicUsize,
) -> Acks {
    if let Err(e) = &result {
        tracing::error!(error = %e, n = batches.len(), "could not commit usage; the requests are answered with an error");
    }
    waiting.fetch_sub(batches.len(), Ordering::Relaxed);
    (batches.into_iter().filter_map(|b| b.ack).collect(), result)
}

/// Answers every request of a group with the commit's result.
fn answer((acks, result): Acks) {
    for ack in acks {
        let _ = ack.send(result.clone());
    }
}

/// Answers the writer thread's groups from a task of the runtime. Waking a request's task from
/// a thread outside the runtime goes through the runtime's shared queue, and wakes a parked
/// worker with a system call; from a task inside it, the woken tasks go to that worker's own
/// queue. So the writer wakes one task per group, not one per request.
async fn answer_groups(mut rx: mpsc::UnboundedReceiver<Acks>) {
    while let Some(acks) = rx.recv().await {
        answer(acks);
    }
}

/// The writer thread's loop: it ends when the meter (the channel's sender) is dropped.
fn write_on_thread(
    mut conn: rusqlite::Connection,
    mut rx: mpsc::UnboundedReceiver<Batch>,
    answers: mpsc::UnboundedSender<Acks>,
    waiting: Arc<AtomicUsize>,
    checkpoints: Option<sqlite_writer::Checkpoints>,
) {
    while let Some(first) = rx.blocking_recv() {
        let batches = gather(first, &mut rx);
        let result = sqlite_writer::commit(&mut conn, &writes_of(&batches));
        let acks = done(batches, result, &waiting);
        // With the runtime gone (the process ending), answered from here.
        if let Err(mpsc::error::SendError(acks)) = answers.send(acks) {
            answer(acks);
        }
        if let Some(c) = &checkpoints {
            c.finish(&conn);
        }
    }
}

async fn group_commit(
    db: crate::store::Db,
    mut rx: mpsc::UnboundedReceiver<Batch>,
    waiting: Arc<AtomicUsize>,
) {
    while let Some(first) = rx.recv().await {
        let batches = gather(first, &mut rx);
        let result = usage_batch::commit(&db, &writes_of(&batches))
            .await
            .map_err(|e| e.to_string());
        answer(done(batches, result, &waiting));
    }
}

/// The batches' writes, with the deltas of one counter or balance added together.
fn writes_of(batches: &[Batch]) -> GroupWrites<'_> {
    let mut events = Vec::new();
    let mut counters: HashMap<(&str, &str, i64, i64), i64> = HashMap::new();
    let mut credits: HashMap<(&str, &str), (i64, i64)> = HashMap::new();
    for w in batches.iter().flat_map(|b| &b.writes) {
        match w {
            Write::Event(e) => events.push(e.as_new()),
            Write::CounterDelta {
                user,
                metric,
                start,
                end,
                delta,
            } => {
                *counters.entry((user, metric, *start, *end)).or_default() += delta;
            }
            Write::CreditDelta {
                user,
                metric,
                delta,
                granted_for,
            } => {
                let slot = credits.entry((user, metric)).or_insert((0, i64::MIN));
                slot.0 += delta;
                slot.1 = slot.1.max(*granted_for);
            }
        }
    }
    GroupWrites {
        events,
        counters: counters
            .into_iter()
            .map(
                |((user_id, metric, period_start, period_end), delta)| usage::CounterDelta {
                    user_id,
                    metric,
                    period_start,
                    period_end,
                    delta,
                },
            )
            .collect(),
        credits: credits
            .into_iter()
            .map(|((user_id, metric), (delta, granted_for))| CreditDelta {
                user_id,
                metric,
                delta,
                granted_for,
            })
            .collect(),
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
        // The key and its bucket of `MemoryState::settled`, hashed once.
        let idem = req.idempotency_key.map(|k| {
            let key = (uid.to_owned(), k.to_owned());
            let bucket = settle_bucket(&key);
            (key, bucket)
        });
        let event_id = new_event_id();
        let at_ms = ms(now);
        let event = |kind: &'static str,
                     amount: i64,
                     period_start: i64,
                     answer: Option<String>,
                     id: String| {
            Write::Event(OwnedEvent {
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
            })
        };
        // Loads what the decision needs, then decides under the lock; when a change of the
        // subscription made the process forget it in between, round again.
        let (answer, writes) = loop {
            // A repeat of the key replays the first answer: from memory while it is on its way
            // to disk, from the database once committed.
            let mut settled = 0;
            if let Some((key, bucket)) = &idem {
                {
                    let st = m.lock();
                    if let Some(a) = st.replay_of(key) {
                        return Ok(a);
                    }
                    settled = st.settled[*bucket];
                }
                if let Some(ev) = usage::event_by_key(self.db().read(), uid, &key.1).await? {
                    return replay(ev.answer.as_deref().unwrap_or("{}"));
                }
            }
            // Load the counter or balance on first use, outside the lock.
            match rule {
                Rule::Limit { window, .. } => {
                    let key = (uid.to_owned(), req.metric.to_owned(), ms(window.start));
                    if !m.lock().counters.contains_key(&key) {
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
                if let Some((key, bucket)) = &idem {
                    if let Some(a) = st.replay_of(key) {
                        return Ok(a);
                    }
                    // Committed (or another key of its bucket) since the database was read.
                    if st.settled[*bucket] != settled {
                        continue;
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
                        writes.push(event(
                            "consume",
                            req.amount,
                            ms(window.start),
                            json,
                            event_id.clone(),
                        ));
                        writes.push(Write::CounterDelta {
                            user: uid.to_owned(),
                            metric: req.metric.to_owned(),
                            start: ms(window.start),
                            end: ms(window.end),
                            delta: req.amount,
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
                            writes.push(event(kind, *amount, CREDIT_PERIOD, None, new_event_id()));
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
                                    let _ = m.enqueue(Batch { writes, ack: None });
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
                        writes.push(event(
                            "consume",
                            req.amount,
                            CREDIT_PERIOD,
                            json,
                            event_id.clone(),
                        ));
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
                if let Some((key, _)) = &idem {
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
        let committed = match sent {
            Ok(()) => done
                .await
                .unwrap_or_else(|_| Err("the usage writer stopped".into())),
            Err(_) => Err("the usage writer stopped".into()),
        };
        if let Err(e) = committed {
            // The database did not take it: forget the in-memory state so that the next
            // request reloads what was really committed.
            let mut st = m.lock();
            if let Some((key, _)) = &idem {
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
        if let Some((key, bucket)) = &idem {
            // Committed: a repeat of the key now finds the event in the database. Only
            // answers still on their way to disk stay here, so the map stays small.
            m.lock().settle(key, *bucket);
        }
        Ok(answer)
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
