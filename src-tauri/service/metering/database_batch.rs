//! Group commit for the database strategy on PostgreSQL.
//!
//! Quota consumptions (`Rule::Limit`) of this process are queued to one task that gathers
//! whatever is waiting (up to [`MAX_BATCH`], with no delay when one request is alone) into
//! batches, up to [`IN_FLIGHT`] of them committing at once, each in one transaction of a
//! fixed number of statements, whatever its size:
//! the stored answers of the batch's idempotency keys (only when some carry one), one guarded
//! multi-row counter update (`used + n <= limit`, so the guard stays in the database that
//! several instances share), one multi-row insert of the allowed requests' usage events, and
//! the counters of the refused ones (only when some were refused). Answers leave after
//! COMMIT: "allowed" means on disk.
//!
//! One statement may not change a counter twice, so a batch holds at most one request per
//! counter (and per idempotency key); the others wait for the next batch, in order. When an
//! idempotency key was taken by another instance meanwhile, the batch is rolled back and its
//! requests take the per-request path, which handles that race. Credit metrics (balances,
//! renewals) always take the per-request path.

use super::{limit_answer, new_event_id, refusal, replay, Consumption, MeterRequest};
use crate::domain::UserId;
use crate::error::{Error, Result};
use crate::plans::periods::Window;
use crate::plans::rules::{Denial, Rule};
use crate::service::subscriptions::Resolved;
use crate::service::Engine;
use crate::store::usage::NewEvent;
use crate::store::usage_pg_batch::{self, Take};
use crate::store::{ms, Db};
use chrono::{DateTime, Utc};
use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio::task::{self, JoinSet};

/// The most requests one transaction commits.
pub(crate) const MAX_BATCH: usize = 256;

/// Batches committed at once, each in its own transaction on a connection of its own. A
/// batch spends most of its time waiting for PostgreSQL's answers, so one batch at a time
/// leaves the database (and the process) mostly idle. A customer's requests are in at most
/// one batch in flight, so that two batches never wait for each other on a customer's rows
/// (counters, daily rollups, active days); on the shared rollup rows they may, and a
/// deadlock there is retried like one with another instance.
const IN_FLIGHT: usize = 4;

/// Requests read off the channel and held by the task at most: beyond it, senders wait in
/// the channel (so a hot counter cannot make the task hold an unbounded queue).
const MAX_HELD: usize = 4 * MAX_BATCH;

/// How often a request whose counter appeared between the guarded update's snapshot and
/// its insert is tried again in a batch before it takes the per-request path.
const MAX_ATTEMPTS: u8 = 3;

/// How one request of a batch ended.
#[derive(Debug)]
enum Outcome {
    /// Allowed and committed, or replayed from its idempotency key.
    Answered(Consumption),
    /// Refused: the counter's value when the batch looked at it.
    Refused {
        used: i64,
    },
    /// Not decided in a batch: the request takes the per-request path.
    OnItsOwn,
    Failed(Error),
}

struct Job {
    user: String,
    metric: String,
    amount: i64,
    limit: Option<i64>,
    window: Window,
    at: i64,
    idempotency_key: Option<String>,
    request_id: Option<String>,
    /// The plan version the consumption was decided under (its event counts there).
    plan_version_id: String,
    attempts: u8,
    reply: oneshot::Sender<Outcome>,
}

impl Job {
    fn counter_hash(&self) -> u64 {
        hash_of(&(&self.user, &self.metric, ms(self.window.start)))
    }

    fn user_hash(&self) -> u64 {
        hash_of(&self.user)
    }

    fn key_hash(&self) -> Option<u64> {
        self.idempotency_key
            .as_ref()
            .map(|k| hash_of(&(&self.user, k)))
    }
}

/// Equal keys hash equal, so distinct hashes mean distinct counters; a collision only makes
/// a request wait one batch more.
fn hash_of(v: &impl Hash) -> u64 {
    let mut h = DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}

enum Message {
    Consume(Job),
    /// Commit everything queued, stop taking requests, then answer.
    Drain(oneshot::Sender<()>),
}

/// Batches and requests committed so far, for `/metrics`.
#[derive(Debug, Default)]
struct Totals {
    batches: AtomicU64,
    requests: AtomicU64,
    on_their_own: AtomicU64,
}

/// What the group commit has done since the process started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BatchTotals {
    /// Transactions the group commit ran (committed or not).
    pub batches: u64,
    /// Requests decided in them; `requests / batches` is the mean batch size.
    pub requests: u64,
    /// Requests handed back to the per-request path (a key taken by another instance).
    pub on_their_own: u64,
}

pub(crate) struct DatabaseBatcher {
    queue: mpsc::UnboundedSender<Message>,
    totals: Arc<Totals>,
}

impl DatabaseBatcher {
    /// Starts the task; it ends when the batcher is dropped or drained.
    pub(crate) fn start(db: Db) -> DatabaseBatcher {
        let (tx, rx) = mpsc::unbounded_channel();
        let totals = Arc::new(Totals::default());
        tokio::spawn(run(db, rx, totals.clone()));
        DatabaseBatcher { queue: tx, totals }
    }

    /// Commits what is queued and stops: later requests take the per-request path.
    pub(crate) async fn drain(&self) {
        let (ack, done) = oneshot::channel();
        if self.queue.send(Message::Drain(ack)).is_ok() {
            let _ = done.await;
        }
    }

    pub(crate) fn totals(&self) -> BatchTotals {
        BatchTotals {
            batches: self.totals.batches.load(Ordering::Relaxed),
            requests: self.totals.requests.load(Ordering::Relaxed),
            on_their_own: self.totals.on_their_own.load(Ordering::Relaxed),
        }
    }
}

async fn run(db: Db, mut rx: mpsc::UnboundedReceiver<Message>, totals: Arc<Totals>) {
    let mut held: VecDeque<Job> = VecDeque::new();
    let mut drained = Vec::new();
    let mut in_flight: JoinSet<Vec<Job>> = JoinSet::new();
    // The customers of each batch in flight, and of all of them.
    let mut customers: HashMap<task::Id, Vec<u64>> = HashMap::new();
    let mut busy: HashSet<u64> = HashSet::new();
    let mut open = true;
    loop {
        while held.len() < MAX_HELD {
            match rx.try_recv() {
                Ok(m) => accept(m, &mut held, &mut drained, &mut rx),
                Err(_) => break,
            }
        }
        while in_flight.len() < IN_FLIGHT {
            let batch = next_batch(&mut held, &busy);
            if batch.is_empty() {
                break;
            }
            totals.batches.fetch_add(1, Ordering::Relaxed);
            totals
                .requests
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            let users: Vec<u64> = batch.iter().map(Job::user_hash).collect();
            busy.extend(users.iter().copied());
            let (db, totals) = (db.clone(), totals.clone());
            let task = in_flight.spawn(async move { commit(&db, batch, &totals).await });
            customers.insert(task.id(), users);
        }
        let receive = open && held.len() < MAX_HELD;
        if !receive && in_flight.is_empty() {
            if held.is_empty() {
                break;
            }
            // Only requests whose clients went away were held: the next turn drops them.
            continue;
        }
        tokio::select! {
            m = rx.recv(), if receive => match m {
                Some(m) => accept(m, &mut held, &mut drained, &mut rx),
                None => open = false,
            },
            Some(done) = in_flight.join_next_with_id() => {
                let (task, again) = match done {
                    Ok(done) => done,
                    // A batch's task only ends by returning; a panic in it is a bug. Its
                    // requests are answered with an error (their answer channels dropped),
                    // and its customers are free again.
                    Err(e) => {
                        tracing::error!(error = %e, "a batch of usage stopped");
                        (e.id(), Vec::new())
                    }
                };
                for u in customers.remove(&task).unwrap_or_default() {
                    busy.remove(&u);
                }
                for job in again.into_iter().rev() {
                    held.push_front(job);
                }
            }
        }
    }
    for ack in drained {
        let _ = ack.send(());
    }
}

fn accept(
    m: Message,
    held: &mut VecDeque<Job>,
    drained: &mut Vec<oneshot::Sender<()>>,
    rx: &mut mpsc::UnboundedReceiver<Message>,
) {
    match m {
        Message::Consume(job) => held.push_back(job),
        Message::Drain(ack) => {
            // What is already in the channel is still received and committed.
            rx.close();
            drained.push(ack);
        }
    }
}

/// The next batch: requests in arrival order, at most one per counter and per idempotency
/// key, none of a customer in `busy`; the others stay held, in their order.
fn next_batch(held: &mut VecDeque<Job>, busy: &HashSet<u64>) -> Vec<Job> {
    let mut batch = Vec::new();
    let mut counters = HashSet::new();
    let mut keys = HashSet::new();
    let mut rest = VecDeque::with_capacity(held.len());
    while let Some(job) = held.pop_front() {
        // Nobody waits for it any more (the client went away): as with one transaction per
        // request, a request dropped before its commit consumes nothing.
        if job.reply.is_closed() {
            continue;
        }
        let counter = job.counter_hash();
        let key = job.key_hash();
        let fits = batch.len() < MAX_BATCH
            && !busy.contains(&job.user_hash())
            && !counters.contains(&counter)
            && key.is_none_or(|k| !keys.contains(&k));
        // Taken or not, the request's counter and key are marked: a later request of the
        // same counter must not pass an earlier one.
        counters.insert(counter);
        if let Some(k) = key {
            keys.insert(k);
        }
        if fits {
            batch.push(job);
        } else {
            rest.push_back(job);
        }
    }
    *held = rest;
    batch
}

/// Commits one batch and answers its requests; returns those to try again in a later batch.
async fn commit(db: &Db, batch: Vec<Job>, totals: &Totals) -> Vec<Job> {
    match decide(db, &batch).await {
        Ok(Decided::Committed(outcomes)) => {
            let mut again = Vec::new();
            for (mut job, outcome) in batch.into_iter().zip(outcomes) {
                match outcome {
                    Some(o) => {
                        let _ = job.reply.send(o);
                    }
                    None if job.attempts + 1 < MAX_ATTEMPTS => {
                        job.attempts += 1;
                        again.push(job);
                    }
                    None => {
                        totals.on_their_own.fetch_add(1, Ordering::Relaxed);
                        let _ = job.reply.send(Outcome::OnItsOwn);
                    }
                }
            }
            again
        }
        Ok(Decided::RolledBack(replays)) => {
            for (job, replay) in batch.into_iter().zip(replays) {
                let o = replay.unwrap_or_else(|| {
                    totals.on_their_own.fetch_add(1, Ordering::Relaxed);
                    Outcome::OnItsOwn
                });
                let _ = job.reply.send(o);
            }
            Vec::new()
        }
        Err(e) if may_retry(&e) => {
            tracing::debug!(error = %e, n = batch.len(), "a batch of usage met another transaction; it is tried again");
            let mut again = Vec::new();
            for mut job in batch {
                if job.attempts + 1 < MAX_ATTEMPTS {
                    job.attempts += 1;
                    again.push(job);
                } else {
                    totals.on_their_own.fetch_add(1, Ordering::Relaxed);
                    let _ = job.reply.send(Outcome::OnItsOwn);
                }
            }
            again
        }
        Err(e) => {
            tracing::error!(error = %e, n = batch.len(), "could not commit a batch of usage; its requests are answered with an error");
            let message = e.to_string();
            let unavailable = matches!(Error::from(e), Error::DatabaseUnavailable(_));
            for job in batch {
                let e = if unavailable {
                    Error::DatabaseUnavailable(message.clone())
                } else {
                    Error::Internal(anyhow::anyhow!("recording usage failed: {message}"))
                };
                let _ = job.reply.send(Outcome::Failed(e));
            }
            Vec::new()
        }
    }
}

/// A deadlock or a serialization failure: nothing was written, and the same batch may well
/// pass a moment later.
fn may_retry(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => matches!(db.code().as_deref(), Some("40P01" | "40001")),
        _ => false,
    }
}

enum Decided {
    /// The outcome of each request, in batch order; `None`: try it again.
    Committed(Vec<Option<Outcome>>),
    /// An event's idempotency key was taken meanwhile: nothing was written; the replays
    /// found before stand, the others take the per-request path.
    RolledBack(Vec<Option<Outcome>>),
}

/// The batch's transaction; no request is answered from here.
async fn decide(db: &Db, batch: &[Job]) -> std::result::Result<Decided, sqlx::Error> {
    let mut tx = db.begin().await?;
    let mut outcomes: Vec<Option<Outcome>> = batch.iter().map(|_| None).collect();

    // (1) Replays: requests whose key already has a stored answer.
    let keyed: Vec<(&str, &str)> = batch
        .iter()
        .filter_map(|j| j.idempotency_key.as_deref().map(|k| (j.user.as_str(), k)))
        .collect();
    if !keyed.is_empty() {
        let stored = usage_pg_batch::answers_by_keys(&mut tx, &keyed).await?;
        let by_key: HashMap<(&str, &str), Option<&str>> = stored
            .iter()
            .map(|a| {
                (
                    (a.user_id.as_str(), a.idempotency_key.as_str()),
                    a.answer.as_deref(),
                )
            })
            .collect();
        for (job, slot) in batch.iter().zip(outcomes.iter_mut()) {
            let Some(k) = job.idempotency_key.as_deref() else {
                continue;
            };
            if let Some(answer) = by_key.get(&(job.user.as_str(), k)) {
                *slot = Some(match replay(answer.unwrap_or("{}")) {
                    Ok(c) => Outcome::Answered(c),
                    Err(e) => Outcome::Failed(e),
                });
            }
        }
    }
    let mut open: Vec<usize> = (0..batch.len())
        .filter(|i| outcomes[*i].is_none())
        .collect();
    // Rows are locked in this order: the same order in every instance keeps two batches
    // from waiting on each other (a deadlock that remains is retried).
    open.sort_by(|a, b| {
        let (a, b) = (&batch[*a], &batch[*b]);
        (&a.user, &a.metric, a.window.start).cmp(&(&b.user, &b.metric, b.window.start))
    });
    if open.is_empty() {
        tx.commit().await?;
        return Ok(Decided::Committed(outcomes));
    }

    // (2) The guarded counter update of every other request.
    let takes: Vec<Take> = open
        .iter()
        .map(|i| {
            let j = &batch[*i];
            Take {
                user_id: &j.user,
                metric: &j.metric,
                period_start: ms(j.window.start),
                period_end: ms(j.window.end),
                amount: j.amount,
                limit: j.limit,
            }
        })
        .collect();
    let taken = usage_pg_batch::take_within(&mut tx, &takes).await?;
    let used_after: HashMap<(&str, &str, i64), i64> = taken
        .iter()
        .map(|t| {
            (
                (t.user_id.as_str(), t.metric.as_str(), t.period_start),
                t.used,
            )
        })
        .collect();

    // (3) The usage events of the allowed ones.
    let mut allowed = Vec::new();
    let mut refused = Vec::new();
    for (i, take) in open.iter().zip(&takes) {
        match used_after.get(&(take.user_id, take.metric, take.period_start)) {
            Some(used) => {
                let j = &batch[*i];
                let answer = limit_answer(
                    new_event_id(),
                    &j.metric,
                    j.amount,
                    *used,
                    j.limit,
                    j.window,
                );
                let json =
                    serde_json::to_string(&answer).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
                allowed.push((*i, answer, json));
            }
            None => refused.push(*i),
        }
    }
    if !allowed.is_empty() {
        let events: Vec<NewEvent> = allowed
            .iter()
            .map(|(i, answer, json)| {
                let j = &batch[*i];
                NewEvent {
                    id: &answer.event_id,
                    user_id: &j.user,
                    metric: &j.metric,
                    kind: "consume",
                    amount: j.amount,
                    at: j.at,
                    period_start: ms(j.window.start),
                    request_id: j.request_id.as_deref(),
                    idempotency_key: j.idempotency_key.as_deref(),
                    answer: Some(json),
                    plan_version_id: Some(&j.plan_version_id),
                }
            })
            .collect();
        let inserted = usage_pg_batch::insert_consume_events(&mut tx, &events).await?;
        if inserted < events.len() as u64 {
            tx.rollback().await?;
            return Ok(Decided::RolledBack(outcomes));
        }
    }

    // (4) The counters of the refused ones, for their answers.
    if !refused.is_empty() {
        let counters: Vec<(&str, &str, i64)> = refused
            .iter()
            .map(|i| {
                let j = &batch[*i];
                (j.user.as_str(), j.metric.as_str(), ms(j.window.start))
            })
            .collect();
        let now = usage_pg_batch::counters_of(&mut tx, &counters).await?;
        for (i, used) in refused.iter().zip(now) {
            let j = &batch[*i];
            // The guard failed against a newer value than this one only when the counter
            // appeared or shrank meanwhile: such a request is tried again.
            if j.limit.is_some_and(|l| used + j.amount > l) {
                outcomes[*i] = Some(Outcome::Refused { used });
            }
        }
    }
    tx.commit().await?;
    for (i, answer, _) in allowed {
        outcomes[i] = Some(Outcome::Answered(answer));
    }
    Ok(Decided::Committed(outcomes))
}

impl Engine {
    /// A quota consumption decided in the group commit (see the module's comment).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn consume_in_batch(
        &self,
        batcher: &DatabaseBatcher,
        user: &UserId,
        r: &Resolved,
        limit: Option<i64>,
        window: Window,
        req: &MeterRequest<'_>,
        now: DateTime<Utc>,
    ) -> Result<Consumption> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            user: user.as_str().to_owned(),
            metric: req.metric.to_owned(),
            amount: req.amount,
            limit,
            window,
            at: ms(now),
            idempotency_key: req.idempotency_key.map(str::to_owned),
            request_id: req.request_id.map(str::to_owned),
            plan_version_id: r.row.plan_version_id.as_str().to_owned(),
            attempts: 0,
            reply,
        };
        let outcome = match batcher.queue.send(Message::Consume(job)) {
            Ok(()) => answer.await.map_err(|_| {
                Error::Internal(anyhow::anyhow!("the usage batch stopped before answering"))
            })?,
            // Drained (the engine is shutting down): on its own.
            Err(_) => Outcome::OnItsOwn,
        };
        match outcome {
            Outcome::Answered(c) => Ok(c),
            Outcome::Refused { used } => {
                let denial = Denial::QuotaExceeded {
                    limit: limit.unwrap_or(0),
                    used,
                };
                Err(refusal(r, req.metric, req.amount, window, denial))
            }
            Outcome::OnItsOwn => {
                self.consume_in_database(user, r, Rule::Limit { limit, window }, req, now)
                    .await
            }
            Outcome::Failed(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(user: &str, metric: &str, key: Option<&str>) -> (Job, oneshot::Receiver<Outcome>) {
        let (reply, answer) = oneshot::channel();
        let start = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        let job = Job {
            user: user.to_owned(),
            metric: metric.to_owned(),
            amount: 1,
            limit: Some(10),
            window: Window {
                start,
                end: start + chrono::Duration::days(1),
            },
            at: 0,
            idempotency_key: key.map(str::to_owned),
            request_id: None,
            plan_version_id: "plv_1".to_owned(),
            attempts: 0,
            reply,
        };
        (job, answer)
    }

    fn names(jobs: impl IntoIterator<Item = impl std::borrow::Borrow<Job>>) -> Vec<String> {
        jobs.into_iter()
            .map(|j| format!("{}/{}", j.borrow().user, j.borrow().metric))
            .collect()
    }

    /// A batch holds one request per counter and none of a customer whose batch is still in
    /// flight; what stays held keeps its order, and a later request of a counter never passes
    /// an earlier one.
    #[test]
    fn a_batch_skips_busy_customers_and_repeated_counters() {
        let mut answers = Vec::new();
        let mut held = VecDeque::new();
        for (user, metric) in [
            ("a", "calls"),
            ("b", "calls"),
            ("a", "calls"),
            ("a", "mb"),
            ("c", "calls"),
        ] {
            let (j, answer) = job(user, metric, None);
            answers.push(answer);
            held.push_back(j);
        }
        let busy = HashSet::from([hash_of(&"b".to_owned())]);
        let batch = next_batch(&mut held, &busy);
        assert_eq!(names(&batch), ["a/calls", "a/mb", "c/calls"]);
        assert_eq!(names(&held), ["b/calls", "a/calls"]);

        // Once b's batch is done, b and the second a/calls go together.
        let batch = next_batch(&mut held, &HashSet::new());
        assert_eq!(names(&batch), ["b/calls", "a/calls"]);
        assert!(held.is_empty());
    }

    /// A request whose client went away is dropped, not committed.
    #[test]
    fn a_request_nobody_waits_for_is_dropped() {
        let (gone, answer) = job("a", "calls", Some("k1"));
        drop(answer);
        let (kept, _answer) = job("a", "calls", Some("k1"));
        let mut held = VecDeque::from([gone, kept]);
        let batch = next_batch(&mut held, &HashSet::new());
        assert_eq!(batch.len(), 1);
        assert!(!batch[0].reply.is_closed());
        assert!(held.is_empty());
    }
}
