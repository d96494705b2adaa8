//! The memory strategy's writes: one group commit of every request waiting, answered only
//! after it is on disk. On a SQLite file a thread of its own commits them (consumptions of a
//! quota go to the usage journal, which the same thread moves on to the usage tables in
//! larger transactions); elsewhere a task commits them through the pool.

use super::memory::MemoryState;
use crate::store::usage_batch::{self, CountedEvent, CreditDelta, GroupWrites};
use crate::store::{sqlite_writer, usage};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// One write the group commit applies. All are deltas or inserts, so batches commute with
/// direct writes such as releases.
#[derive(Debug)]
pub(super) enum Write {
    Event(OwnedEvent),
    /// A consumption of a quota: its event, and the delta of its window's counter.
    Counted {
        event: OwnedEvent,
        end: i64,
    },
    CreditDelta {
        user: String,
        metric: String,
        delta: i64,
        granted_for: i64,
    },
}

#[derive(Debug)]
pub(super) struct OwnedEvent {
    pub(super) id: String,
    pub(super) user: String,
    pub(super) metric: String,
    pub(super) kind: &'static str,
    pub(super) amount: i64,
    pub(super) at: i64,
    pub(super) period_start: i64,
    pub(super) request_id: Option<String>,
    pub(super) idempotency_key: Option<String>,
    pub(super) answer: Option<String>,
    pub(super) plan_version_id: Option<String>,
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

pub(super) type Ack = oneshot::Sender<std::result::Result<(), String>>;

pub(super) struct Batch {
    pub(super) writes: Vec<Write>,
    pub(super) ack: Option<Ack>,
}

pub(super) enum Message {
    Batch(Batch),
    /// Answered once every batch sent before it is in the usage tables (not the journal).
    Settle(Ack),
}

/// What the group commit and the meter share.
pub(super) struct Shared {
    pub(super) state: Mutex<MemoryState>,
    /// Batches sent to the writer and not yet committed (the writer-queue gauge).
    pub(super) waiting: AtomicUsize,
    /// Consumptions answered and still in the usage journal.
    pub(super) journaled: AtomicUsize,
}

impl Shared {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, MemoryState> {
        self.state.lock().expect("meter state lock")
    }
}

/// The sending end of the group commit.
pub(super) enum Queue {
    Thread(std::sync::mpsc::Sender<Message>),
    Task(mpsc::UnboundedSender<Message>),
}

/// The journal is moved on once it holds this many consumptions, ...
const APPLY_AT: usize = 1024;
/// ... once its oldest has waited this long, ...
const APPLY_AFTER: Duration = Duration::from_millis(250);
/// ... or once no request has come for this long.
const IDLE: Duration = Duration::from_millis(2);

/// How many batches one group commit takes at most.
const MAX_BATCH: usize = 1024;

/// Starts the group commit: on a SQLite file, a writer thread of its own
/// (`store::sqlite_writer`), after moving on what a stopped process left in the journal;
/// otherwise a task committing through the pool. Answers the queue, and the sender that keeps
/// the log's checkpoint thread running.
pub(super) fn start(
    db: crate::store::Db,
    shared: Arc<Shared>,
) -> (Queue, Option<std::sync::mpsc::Sender<()>>) {
    match sqlite_writer::file_of(&db).map(|f| (sqlite_writer::open(&f), f)) {
        Some((Ok(mut conn), file)) => {
            match sqlite_writer::apply_journal(&mut conn) {
                Ok(0) => {}
                Ok(n) => tracing::info!(n, "moved consumptions left in the usage journal"),
                Err(e) => {
                    tracing::error!(error = %e, "could not move the usage journal; tried again shortly");
                    shared.journaled.store(1, Ordering::SeqCst);
                }
            }
            let (tx, rx) = std::sync::mpsc::channel();
            let started = std::thread::Builder::new()
                .name("tollgate-usage-writer".into())
                .spawn(move || write_on_thread(conn, rx, shared));
            if let Err(e) = started {
                panic!("could not start the usage writer thread: {e}");
            }
            (
                Queue::Thread(tx),
                sqlite_writer::start_checkpoints(file).ok(),
            )
        }
        Some((Err(e), _)) => {
            tracing::warn!(error = %e, "could not open the usage writer's connection; usage is committed through the pool");
            start_task(db, shared)
        }
        None => start_task(db, shared),
    }
}

fn start_task(
    db: crate::store::Db,
    shared: Arc<Shared>,
) -> (Queue, Option<std::sync::mpsc::Sender<()>>) {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(group_commit(db, rx, shared));
    (Queue::Task(tx), None)
}

impl Queue {
    fn send(&self, m: Message) -> bool {
        match self {
            Queue::Thread(q) => q.send(m).is_ok(),
            Queue::Task(q) => q.send(m).is_ok(),
        }
    }
}

/// Sends `batch` to the group commit; false if it has stopped.
pub(super) fn enqueue(queue: &Queue, shared: &Shared, batch: Batch) -> bool {
    shared.waiting.fetch_add(1, Ordering::SeqCst);
    let sent = queue.send(Message::Batch(batch));
    if !sent {
        shared.waiting.fetch_sub(1, Ordering::SeqCst);
    }
    sent
}

/// Waits until every consumption answered so far is in the usage tables.
pub(super) async fn settle(queue: &Queue, shared: &Shared) -> std::result::Result<(), String> {
    if shared.journaled.load(Ordering::SeqCst) == 0 {
        return Ok(());
    }
    let (ack, done) = oneshot::channel();
    if !queue.send(Message::Settle(ack)) {
        return Err("the usage writer stopped".into());
    }
    done.await
        .unwrap_or_else(|_| Err("the usage writer stopped".into()))
}

/// The messages waiting after `first`, up to [`MAX_BATCH`] batches, as batches and settles.
fn gather(first: Message, mut next: impl FnMut() -> Option<Message>) -> (Vec<Batch>, Vec<Ack>) {
    let (mut batches, mut settles) = (Vec::new(), Vec::new());
    let mut m = Some(first);
    while let Some(message) = m {
        match message {
            Message::Batch(b) => batches.push(b),
            Message::Settle(a) => settles.push(a),
        }
        if batches.len() >= MAX_BATCH {
            break;
        }
        m = next();
    }
    (batches, settles)
}

/// Answers every request of `batches` with the commit's result.
fn acknowledge(batches: Vec<Batch>, result: std::result::Result<(), String>, shared: &Shared) {
    if let Err(e) = &result {
        tracing::error!(error = %e, n = batches.len(), "could not commit usage; the requests are answered with an error");
    }
    shared.waiting.fetch_sub(batches.len(), Ordering::SeqCst);
    for b in batches {
        if let Some(ack) = b.ack {
            let _ = ack.send(result.clone());
        }
    }
}

/// The idempotency keys of `batches`' consumptions: their answers are kept in memory until
/// the events are in `usage_events`, where a repeat looks for them.
fn keys_of(batches: &[Batch]) -> Vec<(String, String)> {
    batches
        .iter()
        .flat_map(|b| &b.writes)
        .filter_map(|w| match w {
            Write::Event(e) | Write::Counted { event: e, .. } => e
                .idempotency_key
                .as_ref()
                .map(|k| (e.user.clone(), k.clone())),
            Write::CreditDelta { .. } => None,
        })
        .collect()
}

/// The consumptions in the journal, as the writer thread knows them.
#[derive(Default)]
struct Journal {
    rows: usize,
    since: Option<Instant>,
    /// The idempotency keys of the journaled consumptions.
    keys: Vec<(String, String)>,
}

/// The writer thread's loop: it ends, after moving the journal on, when the meter (the
/// channel's sender) is dropped.
fn write_on_thread(
    mut conn: rusqlite::Connection,
    rx: std::sync::mpsc::Receiver<Message>,
    shared: Arc<Shared>,
) {
    let mut journal = Journal::default();
    if shared.journaled.load(Ordering::SeqCst) > 0 {
        journal.rows = 1;
        journal.since = Some(Instant::now());
    }
    loop {
        let first = if journal.rows == 0 {
            match rx.recv() {
                Ok(m) => Some(m),
                Err(_) => break,
            }
        } else {
            match rx.recv_timeout(IDLE) {
                Ok(m) => Some(m),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            }
        };
        let idle = first.is_none();
        let (batches, settles) = match first {
            Some(m) => gather(m, || rx.try_recv().ok()),
            None => (Vec::new(), Vec::new()),
        };
        if !batches.is_empty() {
            let writes = writes_of(&batches, true);
            let result = sqlite_writer::commit(&mut conn, &writes);
            if result.is_ok() && !writes.journal.is_empty() {
                journal.rows += writes.journal.len();
                journal.since.get_or_insert_with(Instant::now);
                journal.keys.extend(keys_of(&batches));
                shared.journaled.store(journal.rows, Ordering::SeqCst);
            } else if result.is_ok() {
                forget_answers(&shared, keys_of(&batches));
            }
            drop(writes);
            acknowledge(batches, result, &shared);
        }
        let due = idle
            || !settles.is_empty()
            || journal.rows >= APPLY_AT
            || journal.since.is_some_and(|t| t.elapsed() >= APPLY_AFTER);
        let mut result = Ok(());
        if journal.rows > 0 && due {
            result = apply(&mut conn, &mut journal, &shared);
        }
        for s in settles {
            let _ = s.send(result.clone());
        }
    }
    if journal.rows > 0 {
        let _ = apply(&mut conn, &mut journal, &shared);
    }
}

/// Moves the journal on; once its events are in `usage_events`, their answers leave memory.
fn apply(
    conn: &mut rusqlite::Connection,
    journal: &mut Journal,
    shared: &Shared,
) -> std::result::Result<(), String> {
    match sqlite_writer::apply_journal(conn) {
        Ok(_) => {
            let j = std::mem::take(journal);
            shared.journaled.store(0, Ordering::SeqCst);
            forget_answers(shared, j.keys);
            Ok(())
        }
        Err(e) => {
            tracing::error!(error = %e, rows = journal.rows, "could not move the usage journal; tried again shortly");
            // Tried again at the next due time, not at once.
            journal.since = Some(Instant::now());
            Err(e.to_string())
        }
    }
}

/// Drops the answers of consumptions whose events are in `usage_events`.
fn forget_answers(shared: &Shared, keys: Vec<(String, String)>) {
    if keys.is_empty() {
        return;
    }
    let mut st = shared.lock();
    for k in &keys {
        st.answers.remove(k);
    }
}

async fn group_commit(
    db: crate::store::Db,
    mut rx: mpsc::UnboundedReceiver<Message>,
    shared: Arc<Shared>,
) {
    while let Some(first) = rx.recv().await {
        let (batches, settles) = gather(first, || rx.try_recv().ok());
        if !batches.is_empty() {
            let result = usage_batch::commit(&db, &writes_of(&batches, false))
                .await
                .map_err(|e| e.to_string());
            if result.is_ok() {
                forget_answers(&shared, keys_of(&batches));
            }
            acknowledge(batches, result, &shared);
        }
        for s in settles {
            let _ = s.send(Ok(()));
        }
    }
}

/// The batches' writes, with the deltas of one counter or balance added together. With
/// `journal`, consumptions of a quota go to the journal instead of the events and counters.
fn writes_of(batches: &[Batch], journal: bool) -> GroupWrites<'_> {
    let mut w = GroupWrites::default();
    let mut counters: HashMap<(&str, &str, i64, i64), i64> = HashMap::new();
    let mut credits: HashMap<(&str, &str), (i64, i64)> = HashMap::new();
    for write in batches.iter().flat_map(|b| &b.writes) {
        match write {
            Write::Event(e) => w.events.push(e.as_new()),
            Write::Counted { event, end } if journal => w.journal.push(CountedEvent {
                event: event.as_new(),
                period_end: *end,
            }),
            Write::Counted { event, end } => {
                w.events.push(event.as_new());
                *counters
                    .entry((&event.user, &event.metric, event.period_start, *end))
                    .or_default() += event.amount;
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
    w.counters = counters
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
        .collect();
    w.credits = credits
        .into_iter()
        .map(|((user_id, metric), (delta, granted_for))| CreditDelta {
            user_id,
            metric,
            delta,
            granted_for,
        })
        .collect();
    w
}
