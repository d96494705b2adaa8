//! Metering: `check_and_consume` decides whether a unit of work is allowed, and records it.
//!
//! Two strategies sit behind one interface:
//! - **memory** (one process, the SQLite default): counters and balances are authoritative in
//!   memory, loaded on first use; each consumption is appended to a queue that one writer task
//!   commits in batches (group commit) before the request is answered.
//! - **database** (several processes sharing PostgreSQL): the atomic step is a single guarded
//!   upsert (`used + n <= limit`) in a transaction with the usage event.
//!
//! Credit metrics keep one balance per user and metric. Their usage events carry
//! `period_start = -1` ([`CREDIT_PERIOD`]) so that verification can tell them apart.

use super::catalog::PlanVersion;
use super::subscriptions::Resolved;
use super::Engine;
use crate::domain::UserId;
use crate::error::{Error, InsufficientCredits, QuotaExceeded, Result};
use crate::plans::periods::{self, Window};
use crate::plans::{Per, Quota};
use crate::store::{at, ms, usage, AnyConn};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use tokio::sync::{mpsc, oneshot};

/// Marks usage events of credit metrics (which have balances, not windows).
pub const CREDIT_PERIOD: i64 = -1;

/// Which strategy decides consumptions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Memory for SQLite, database for PostgreSQL.
    Auto,
    Memory,
    Database,
}

pub struct MeterRequest<'a> {
    pub metric: &'a str,
    pub amount: i64,
    pub idempotency_key: Option<&'a str>,
    pub request_id: Option<&'a str>,
}

/// The answer to an allowed consumption; a retry with the same idempotency key gets it again.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Consumption {
    pub event_id: String,
    pub metric: String,
    pub amount: i64,
    pub used: i64,
    pub limit: Option<i64>,
    pub remaining: Option<i64>,
    pub unlimited: bool,
    pub resets_at: DateTime<Utc>,
    /// Credit balance after this consumption (credit metrics only).
    pub credits: Option<i64>,
    /// True when this answer repeats an earlier one (same idempotency key).
    #[serde(default)]
    pub replayed: bool,
}

/// What a plan says of one metric at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    Limit {
        limit: Option<i64>,
        window: Window,
    },
    Credits {
        allowance: i64,
        rollover: bool,
        window: Window,
    },
}

/// The rule of `metric` under `plan` at `now`. A metric the catalog declares but the plan
/// leaves out is not included in the plan: a limit of zero.
pub fn rule_for(
    plan: &PlanVersion,
    declared: &[String],
    metric: &str,
    now: DateTime<Utc>,
    billing: Window,
) -> Result<Rule> {
    match plan.plan.quotas.get(metric) {
        Some(Quota::Limit { limit, per }) => Ok(Rule::Limit {
            limit: *limit,
            window: periods::window(*per, now, billing),
        }),
        Some(Quota::Credits {
            credits,
            per,
            rollover,
        }) => Ok(Rule::Credits {
            allowance: *credits,
            rollover: *rollover,
            window: periods::window(*per, now, billing),
        }),
        None if declared.iter().any(|m| m == metric) => Ok(Rule::Limit {
            limit: Some(0),
            window: periods::window(Per::Day, now, billing),
        }),
        None => Err(Error::UnknownMetric(metric.to_owned())),
    }
}

/// A credit balance after any renewal due at `window.start`, and the events that renewal
/// writes: (kind, amount).
pub fn renew_credits(
    balance: i64,
    granted_for: i64,
    allowance: i64,
    rollover: bool,
    window: Window,
) -> (i64, Vec<(&'static str, i64)>) {
    if granted_for >= ms(window.start) {
        return (balance, vec![]);
    }
    let mut events = Vec::new();
    let next = if rollover {
        balance + allowance
    } else {
        if balance > 0 {
            events.push(("expire", balance));
        }
        allowance
    };
    if allowance > 0 {
        events.push(("grant", allowance));
    }
    (next, events)
}

/// One row of `GET /v1/me/usage`.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct MetricUsage {
    pub limit: Option<i64>,
    pub used: i64,
    pub remaining: Option<i64>,
    pub unlimited: bool,
    pub resets_at: DateTime<Utc>,
    pub per: String,
    /// Credit balance (credit metrics only).
    pub credits: Option<i64>,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct UsageSummary {
    pub plan: String,
    #[schema(value_type = crate::http::docs::PeriodSchema)]
    pub period: Window,
    pub metrics: BTreeMap<String, MetricUsage>,
    pub credits: BTreeMap<String, i64>,
}

impl Serialize for Window {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Window", 2)?;
        st.serialize_field("start", &self.start)?;
        st.serialize_field("end", &self.end)?;
        st.end()
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct DailyUsage {
    pub date: chrono::NaiveDate,
    pub metric: String,
    pub used: i64,
}

/// A counter or balance that does not match the events it is derived from.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Drift {
    pub user_id: String,
    pub metric: String,
    /// `None` for credit balances.
    pub period_start: Option<DateTime<Utc>>,
    pub stored: i64,
    pub expected: i64,
}

// ---------------------------------------------------------------------------------------
// The memory strategy's state and writer.

type CounterKey = (String, String, i64);
type CreditKey = (String, String);

#[derive(Default)]
pub(crate) struct MemoryState {
    counters: HashMap<CounterKey, i64>,
    /// (balance, granted_for)
    credits: HashMap<CreditKey, (i64, i64)>,
    answers: HashMap<(String, String), Consumption>,
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
}

impl MemoryMeter {
    pub(crate) fn start(db: crate::store::Db) -> MemoryMeter {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(group_commit(db, rx));
        MemoryMeter {
            state: Mutex::new(MemoryState::default()),
            queue: tx,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryState> {
        self.state.lock().expect("meter state lock")
    }
}

const MAX_BATCH: usize = 1024;

async fn group_commit(db: crate::store::Db, mut rx: mpsc::UnboundedReceiver<Batch>) {
    while let Some(first) = rx.recv().await {
        let mut batches = vec![first];
        while batches.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(b) => batches.push(b),
                Err(_) => break,
            }
        }
        let result = commit_batches(&db, &batches)
            .await
            .map_err(|e| e.to_string());
        if let Err(e) = &result {
            tracing::error!(error = %e, n = batches.len(), "could not commit usage; the requests are answered with an error");
        }
        for b in batches {
            if let Some(ack) = b.ack {
                let _ = ack.send(result.clone());
            }
        }
    }
}

async fn commit_batches(
    db: &crate::store::Db,
    batches: &[Batch],
) -> std::result::Result<(), sqlx::Error> {
    // One multi-row insert for the events, one upsert per counter and per balance touched.
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
    let mut tx = db.begin().await?;
    usage::insert_events_batch(&mut tx, &events).await?;
    for ((user, metric, start, end), delta) in counters {
        usage::add_within(&mut tx, user, metric, start, end, delta, None).await?;
    }
    for ((user, metric), (delta, granted_for)) in credits {
        // A CHECK constraint is evaluated on the row an upsert would insert, so only a net
        // grant may create a balance; a net spend updates the existing one.
        if delta >= 0 {
            usage::add_credits_upsert(&mut tx, user, metric, delta, granted_for).await?;
        } else {
            if usage::add_credits(&mut tx, user, metric, delta)
                .await?
                .is_none()
            {
                return Err(sqlx::Error::Protocol(format!(
                    "credit balance of {user}/{metric} would go below zero"
                )));
            }
            usage::advance_granted_for(&mut tx, user, metric, granted_for).await?;
        }
    }
    tx.commit().await
}

/// Writes a usage event that answers no request of its own (grants, expiries, resets,
/// releases).
#[allow(clippy::too_many_arguments)]
async fn record_event(
    tx: &mut AnyConn,
    user: &str,
    metric: &str,
    kind: &str,
    amount: i64,
    at: i64,
    period_start: i64,
    request_id: Option<&str>,
) -> std::result::Result<bool, sqlx::Error> {
    let id = new_event_id();
    let event = usage::NewEvent {
        id: &id,
        user_id: user,
        metric,
        kind,
        amount,
        at,
        period_start,
        request_id,
        idempotency_key: None,
        answer: None,
    };
    usage::insert_event(tx, &event).await
}

fn new_event_id() -> String {
    format!(
        "use_{}",
        crate::domain::ids::base62_u128(uuid::Uuid::now_v7().as_u128())
    )
}

fn quota_error(
    r: &Resolved,
    metric: &str,
    limit: i64,
    used: i64,
    amount: i64,
    window: Window,
) -> Error {
    Error::QuotaExceeded(Box::new(QuotaExceeded {
        metric: metric.to_owned(),
        plan: r.effective.plan_id.clone(),
        limit,
        used,
        remaining: (limit - used).max(0),
        requested: amount,
        resets_at: window.end,
        upgrade_to: None,
    }))
}

fn credits_error(r: &Resolved, metric: &str, needed: i64, balance: i64, window: Window) -> Error {
    Error::InsufficientCredits(Box::new(InsufficientCredits {
        metric: metric.to_owned(),
        plan: r.effective.plan_id.clone(),
        needed,
        balance,
        renews_at: window.end,
        upgrade_to: None,
    }))
}

fn limit_answer(
    event_id: String,
    metric: &str,
    amount: i64,
    used: i64,
    limit: Option<i64>,
    window: Window,
) -> Consumption {
    Consumption {
        event_id,
        metric: metric.to_owned(),
        amount,
        used,
        limit,
        remaining: limit.map(|l| (l - used).max(0)),
        unlimited: limit.is_none(),
        resets_at: window.end,
        credits: None,
        replayed: false,
    }
}

fn credit_answer(
    event_id: String,
    metric: &str,
    amount: i64,
    balance: i64,
    allowance: i64,
    window: Window,
) -> Consumption {
    Consumption {
        event_id,
        metric: metric.to_owned(),
        amount,
        used: (allowance - balance).max(0),
        limit: Some(allowance),
        remaining: Some(balance),
        unlimited: false,
        resets_at: window.end,
        credits: Some(balance),
        replayed: false,
    }
}

fn replay(answer: &str) -> Result<Consumption> {
    let mut c: Consumption = serde_json::from_str(answer).map_err(|e| Error::Internal(e.into()))?;
    c.replayed = true;
    Ok(c)
}

impl Engine {
    pub fn meter_strategy(&self) -> Strategy {
        if self.inner.memory.is_some() {
            Strategy::Memory
        } else {
            Strategy::Database
        }
    }

    /// Decides and records one consumption atomically: usage never passes the limit, also
    /// under concurrency; a repeated idempotency key returns the first answer.
    #[tracing::instrument(level = "debug", skip(self, req), fields(metric = req.metric, amount = req.amount))]
    pub async fn check_and_consume(
        &self,
        user: &UserId,
        req: MeterRequest<'_>,
    ) -> Result<Consumption> {
        if req.amount <= 0 || req.amount > 1_000_000 {
            return Err(Error::validation(
                "amount",
                "out_of_range",
                "amount must be between 1 and 1000000",
            ));
        }
        if let Some(k) = req.idempotency_key {
            if k.is_empty() || k.len() > 255 {
                return Err(Error::validation(
                    "idempotency_key",
                    "invalid",
                    "idempotency_key must be 1 to 255 characters",
                ));
            }
        }
        let resolved = self.resolve_subscription(user).await?;
        let catalog = self.catalog().await?;
        let now = self.now();
        let rule = rule_for(
            &resolved.effective,
            &catalog.catalog.metrics,
            req.metric,
            now,
            resolved.billing,
        )?;
        let result = match &self.inner.memory {
            Some(m) => {
                self.consume_in_memory(m, user, &resolved, rule, &req, now)
                    .await
            }
            None => {
                self.consume_in_database(user, &resolved, rule, &req, now)
                    .await
            }
        };
        // The upgrade hint is worked out only for refusals, off the hot path.
        let upgrade = || {
            catalog
                .catalog
                .cheapest_upgrade_for(req.metric, &resolved.effective.plan)
                .map(|p| p.id.clone())
        };
        result.map_err(|e| match e {
            Error::QuotaExceeded(mut d) => {
                d.upgrade_to = upgrade();
                Error::QuotaExceeded(d)
            }
            Error::InsufficientCredits(mut d) => {
                d.upgrade_to = upgrade();
                Error::InsufficientCredits(d)
            }
            other => other,
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn consume_in_memory(
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
        // Load the counter or balance on first use, outside the lock.
        match rule {
            Rule::Limit { window, .. } => {
                let key = (uid.to_owned(), req.metric.to_owned(), ms(window.start));
                if !m.lock().counters.contains_key(&key) {
                    let used = usage::counter(self.db().read(), uid, req.metric, ms(window.start))
                        .await?
                        .unwrap_or(0);
                    m.lock().counters.entry(key).or_insert(used);
                }
            }
            Rule::Credits { .. } => {
                let key = (uid.to_owned(), req.metric.to_owned());
                if !m.lock().credits.contains_key(&key) {
                    let row = usage::credits(self.db().read(), uid, req.metric).await?;
                    let v = row
                        .map(|c| (c.balance, c.granted_for))
                        .unwrap_or((0, i64::MIN));
                    m.lock().credits.entry(key).or_insert(v);
                }
            }
        }
        let event_id = new_event_id();
        let at_ms = ms(now);
        let mut writes = Vec::new();
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
            })
        };
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
            match rule {
                Rule::Limit { limit, window } => {
                    let key = (uid.to_owned(), req.metric.to_owned(), ms(window.start));
                    let used = st.counters.get(&key).copied().unwrap_or(0);
                    if let Some(l) = limit {
                        if used + req.amount > l {
                            return Err(quota_error(r, req.metric, l, used, req.amount, window));
                        }
                    }
                    st.counters.insert(key, used + req.amount);
                    let answer = limit_answer(
                        event_id.clone(),
                        req.metric,
                        req.amount,
                        used + req.amount,
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
                    let (balance, granted_for) =
                        st.credits.get(&key).copied().unwrap_or((0, i64::MIN));
                    let (renewed, renewal) =
                        renew_credits(balance, granted_for, allowance, rollover, window);
                    let granted_for = granted_for.max(ms(window.start));
                    for (kind, amount) in &renewal {
                        writes.push(event(kind, *amount, CREDIT_PERIOD, None, new_event_id()));
                    }
                    if renewed != balance || !renewal.is_empty() {
                        writes.push(Write::CreditDelta {
                            user: uid.to_owned(),
                            metric: req.metric.to_owned(),
                            delta: renewed - balance,
                            granted_for,
                        });
                    }
                    st.credits.insert(key.clone(), (renewed, granted_for));
                    if renewed < req.amount {
                        // The renewal is real even when the consumption is refused.
                        if !writes.is_empty() {
                            let _ = m.queue.send(Batch { writes, ack: None });
                        }
                        return Err(credits_error(r, req.metric, req.amount, renewed, window));
                    }
                    st.credits.insert(key, (renewed - req.amount, granted_for));
                    let answer = credit_answer(
                        event_id.clone(),
                        req.metric,
                        req.amount,
                        renewed - req.amount,
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
            }
        };
        if let Some(key) = &idem {
            m.lock().answers.insert(key.clone(), answer.clone());
        }
        let (ack, done) = oneshot::channel();
        let sent = m.queue.send(Batch {
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
        Ok(answer)
    }

    async fn consume_in_database(
        &self,
        user: &UserId,
        r: &Resolved,
        rule: Rule,
        req: &MeterRequest<'_>,
        now: DateTime<Utc>,
    ) -> Result<Consumption> {
        let uid = user.as_str();
        let event_id = new_event_id();
        let mut tx = self.db().begin().await?;
        if let Some(k) = req.idempotency_key {
            if let Some(ev) = usage::event_by_key_in(&mut tx, uid, k).await? {
                return replay(ev.answer.as_deref().unwrap_or("{}"));
            }
        }
        let (answer, period_start) = match rule {
            Rule::Limit { limit, window } => {
                let start = ms(window.start);
                match usage::add_within(
                    &mut tx,
                    uid,
                    req.metric,
                    start,
                    ms(window.end),
                    req.amount,
                    limit,
                )
                .await?
                {
                    Some(used) => (
                        limit_answer(
                            event_id.clone(),
                            req.metric,
                            req.amount,
                            used,
                            limit,
                            window,
                        ),
                        start,
                    ),
                    None => {
                        let used = usage::counter_in(&mut tx, uid, req.metric, start)
                            .await?
                            .unwrap_or(0);
                        return Err(quota_error(
                            r,
                            req.metric,
                            limit.unwrap_or(0),
                            used,
                            req.amount,
                            window,
                        ));
                    }
                }
            }
            Rule::Credits {
                allowance,
                rollover,
                window,
            } => {
                self.renew_credits_in(
                    &mut tx,
                    uid,
                    req.metric,
                    allowance,
                    rollover,
                    window,
                    now,
                    req.request_id,
                )
                .await?;
                match usage::add_credits(&mut tx, uid, req.metric, -req.amount).await? {
                    Some(balance) => (
                        credit_answer(
                            event_id.clone(),
                            req.metric,
                            req.amount,
                            balance,
                            allowance,
                            window,
                        ),
                        CREDIT_PERIOD,
                    ),
                    None => {
                        let balance = usage::credits_in(&mut tx, uid, req.metric, false)
                            .await?
                            .map(|c| c.balance)
                            .unwrap_or(0);
                        tx.commit().await?;
                        return Err(credits_error(r, req.metric, req.amount, balance, window));
                    }
                }
            }
        };
        let json = serde_json::to_string(&answer).map_err(|e| Error::Internal(e.into()))?;
        let inserted = usage::insert_event(
            &mut tx,
            &usage::NewEvent {
                id: &event_id,
                user_id: uid,
                metric: req.metric,
                kind: "consume",
                amount: req.amount,
                at: ms(now),
                period_start,
                request_id: req.request_id,
                idempotency_key: req.idempotency_key,
                answer: Some(&json),
            },
        )
        .await?;
        if !inserted {
            // A concurrent request with the same key won; undo ours and answer as it did.
            drop(tx);
            let k = req.idempotency_key.unwrap_or_default();
            let ev = usage::event_by_key(self.db().read(), uid, k)
                .await?
                .ok_or(Error::IdempotencyKeyInUse)?;
            return replay(ev.answer.as_deref().unwrap_or("{}"));
        }
        tx.commit().await?;
        Ok(answer)
    }

    /// Grants the period's credits if not yet granted, in the caller's transaction.
    #[allow(clippy::too_many_arguments)]
    async fn renew_credits_in(
        &self,
        tx: &mut AnyConn,
        uid: &str,
        metric: &str,
        allowance: i64,
        rollover: bool,
        window: Window,
        now: DateTime<Utc>,
        request_id: Option<&str>,
    ) -> Result<()> {
        let pg = self.db().kind() == crate::store::Kind::Postgres;
        let row = match usage::credits_in(tx, uid, metric, pg).await? {
            Some(r) => r,
            None => {
                usage::add_credits_upsert(tx, uid, metric, 0, i64::MIN).await?;
                usage::credits_in(tx, uid, metric, pg)
                    .await?
                    .ok_or(Error::NotFound("credit balance"))?
            }
        };
        let (next, events) =
            renew_credits(row.balance, row.granted_for, allowance, rollover, window);
        if events.is_empty() && next == row.balance {
            return Ok(());
        }
        for (kind, amount) in events {
            record_event(
                tx,
                uid,
                metric,
                kind,
                amount,
                ms(now),
                CREDIT_PERIOD,
                request_id,
            )
            .await?;
        }
        usage::set_credits(tx, uid, metric, next, ms(window.start)).await?;
        Ok(())
    }

    /// Undoes a consumption whose work failed, by event id or idempotency key. Releasing
    /// twice is refused.
    pub async fn release(
        &self,
        user: &UserId,
        event_id: Option<&str>,
        idempotency_key: Option<&str>,
    ) -> Result<Consumption> {
        let uid = user.as_str();
        let mut tx = self.db().begin().await?;
        let ev = match (event_id, idempotency_key) {
            (Some(id), _) => usage::event_in(&mut tx, id).await?,
            (None, Some(k)) => usage::event_by_key_in(&mut tx, uid, k).await?,
            (None, None) => {
                return Err(Error::validation(
                    "event_id",
                    "required",
                    "give event_id or idempotency_key",
                ));
            }
        };
        let ev = ev
            .filter(|e| e.user_id == uid && e.kind == "consume")
            .ok_or(Error::NotFound("usage event"))?;
        if !usage::mark_released(&mut tx, &ev.id).await? {
            return Err(Error::AlreadyReleased);
        }
        record_event(
            &mut tx,
            uid,
            &ev.metric,
            "release",
            -ev.amount,
            self.now_ms(),
            ev.period_start,
            None,
        )
        .await?;
        if ev.period_start == CREDIT_PERIOD {
            usage::add_credits_upsert(&mut tx, uid, &ev.metric, ev.amount, i64::MIN).await?;
        } else {
            usage::add_within(
                &mut tx,
                uid,
                &ev.metric,
                ev.period_start,
                ev.period_start,
                -ev.amount,
                None,
            )
            .await?;
        }
        tx.commit().await?;
        if let Some(m) = &self.inner.memory {
            let mut st = m.lock();
            if ev.period_start == CREDIT_PERIOD {
                if let Some(v) = st.credits.get_mut(&(uid.to_owned(), ev.metric.clone())) {
                    v.0 += ev.amount;
                }
            } else if let Some(v) =
                st.counters
                    .get_mut(&(uid.to_owned(), ev.metric.clone(), ev.period_start))
            {
                *v -= ev.amount;
            }
            if let Some(k) = &ev.idempotency_key {
                st.answers.remove(&(uid.to_owned(), k.clone()));
            }
        }
        // Answer with the state after the release.
        let mut answer = ev
            .answer
            .as_deref()
            .map(replay)
            .transpose()?
            .ok_or(Error::NotFound("usage event answer"))?;
        answer.replayed = false;
        if ev.period_start == CREDIT_PERIOD {
            let balance = usage::credits(self.db().read(), uid, &ev.metric)
                .await?
                .map(|c| c.balance)
                .unwrap_or(0);
            answer.credits = Some(balance);
            answer.remaining = Some(balance);
            answer.used = answer.limit.map(|l| (l - balance).max(0)).unwrap_or(0);
        } else {
            let used = usage::counter(self.db().read(), uid, &ev.metric, ev.period_start)
                .await?
                .unwrap_or(0);
            answer.used = used;
            answer.remaining = answer.limit.map(|l| (l - used).max(0));
        }
        Ok(answer)
    }

    /// Current use of one metric, from memory when this process holds it.
    async fn current_use(&self, uid: &str, metric: &str, rule: Rule) -> Result<(i64, Option<i64>)> {
        match rule {
            Rule::Limit { window, .. } => {
                if let Some(m) = &self.inner.memory {
                    if let Some(v) = m.lock().counters.get(&(
                        uid.to_owned(),
                        metric.to_owned(),
                        ms(window.start),
                    )) {
                        return Ok((*v, None));
                    }
                }
                Ok((
                    usage::counter(self.db().read(), uid, metric, ms(window.start))
                        .await?
                        .unwrap_or(0),
                    None,
                ))
            }
            Rule::Credits {
                allowance,
                rollover,
                window,
            } => {
                let stored = match self.inner.memory.as_ref().and_then(|m| {
                    m.lock()
                        .credits
                        .get(&(uid.to_owned(), metric.to_owned()))
                        .copied()
                }) {
                    Some(v) => v,
                    None => usage::credits(self.db().read(), uid, metric)
                        .await?
                        .map(|c| (c.balance, c.granted_for))
                        .unwrap_or((0, i64::MIN)),
                };
                let (balance, _) = renew_credits(stored.0, stored.1, allowance, rollover, window);
                Ok(((allowance - balance).max(0), Some(balance)))
            }
        }
    }

    /// Usage of every metric in the current windows, for the user and for staff.
    pub async fn usage_summary(&self, user: &UserId) -> Result<UsageSummary> {
        let r = self.resolve_subscription(user).await?;
        let catalog = self.catalog().await?;
        let now = self.now();
        let mut metrics = BTreeMap::new();
        let mut credits = BTreeMap::new();
        for metric in &catalog.catalog.metrics {
            let rule = rule_for(
                &r.effective,
                &catalog.catalog.metrics,
                metric,
                now,
                r.billing,
            )?;
            let (used, balance) = self.current_use(user.as_str(), metric, rule).await?;
            let (limit, window, per) = match (rule, r.effective.plan.quotas.get(metric)) {
                (Rule::Limit { limit, window }, q) => (limit, window, per_of(q)),
                (
                    Rule::Credits {
                        allowance, window, ..
                    },
                    q,
                ) => (Some(allowance), window, per_of(q)),
            };
            if let Some(b) = balance {
                credits.insert(metric.clone(), b);
            }
            metrics.insert(
                metric.clone(),
                MetricUsage {
                    limit,
                    used,
                    remaining: balance.or(limit.map(|l| (l - used).max(0))),
                    unlimited: limit.is_none(),
                    resets_at: window.end,
                    per,
                    credits: balance,
                },
            );
        }
        Ok(UsageSummary {
            plan: r.effective.label(),
            period: r.billing,
            metrics,
            credits,
        })
    }

    /// Net use per UTC day over the last `days` days.
    pub async fn usage_history(
        &self,
        user: &UserId,
        days: i64,
        metric: Option<&str>,
    ) -> Result<Vec<DailyUsage>> {
        if !(1..=366).contains(&days) {
            return Err(Error::validation(
                "days",
                "out_of_range",
                "days must be between 1 and 366",
            ));
        }
        if let Some(m) = metric {
            if !self.catalog().await?.catalog.metrics.iter().any(|x| x == m) {
                return Err(Error::UnknownMetric(m.to_owned()));
            }
        }
        let today = periods::window(
            Per::Day,
            self.now(),
            Window {
                start: self.now(),
                end: self.now(),
            },
        )
        .start;
        let since = today - chrono::Duration::days(days - 1);
        let rows = usage::daily_history(self.db().read(), user.as_str(), ms(since), metric).await?;
        Ok(rows
            .into_iter()
            .map(|(metric, day, used)| DailyUsage {
                date: at(day).date_naive(),
                metric,
                used,
            })
            .collect())
    }

    /// Adds (or removes) credits outside any period grant: staff grants and plan changes.
    pub async fn grant_credits(
        &self,
        user: &UserId,
        metric: &str,
        amount: i64,
        reason: Option<&str>,
    ) -> Result<i64> {
        self.grant_credits_audited(user, metric, amount, reason, None)
            .await
    }

    pub(crate) async fn grant_credits_audited(
        &self,
        user: &UserId,
        metric: &str,
        amount: i64,
        reason: Option<&str>,
        audit: Option<&super::audit::Draft<'_>>,
    ) -> Result<i64> {
        if amount == 0 {
            return Err(Error::validation(
                "amount",
                "zero",
                "amount must not be zero",
            ));
        }
        let r = self.resolve_subscription(user).await?;
        let catalog = self.catalog().await?;
        let now = self.now();
        let Rule::Credits {
            allowance,
            rollover,
            window,
        } = rule_for(
            &r.effective,
            &catalog.catalog.metrics,
            metric,
            now,
            r.billing,
        )?
        else {
            return Err(Error::validation(
                "metric",
                "not_credits",
                &format!("`{metric}` is not a credit metric on this plan"),
            ));
        };
        let uid = user.as_str();
        let mut tx = self.db().begin().await?;
        self.renew_credits_in(
            &mut tx, uid, metric, allowance, rollover, window, now, reason,
        )
        .await?;
        let balance = usage::add_credits(&mut tx, uid, metric, amount)
            .await?
            .ok_or_else(|| {
                Error::validation(
                    "amount",
                    "negative_balance",
                    "the balance cannot go below zero",
                )
            })?;
        let (kind, logged) = if amount > 0 {
            ("grant", amount)
        } else {
            ("expire", -amount)
        };
        record_event(
            &mut tx,
            uid,
            metric,
            kind,
            logged,
            ms(now),
            CREDIT_PERIOD,
            None,
        )
        .await?;
        if let Some(a) = audit {
            let before = serde_json::json!({ "metric": metric, "balance": balance - amount });
            a.write(
                &mut tx,
                before,
                serde_json::json!({ "metric": metric, "balance": balance }),
                ms(now),
            )
            .await?;
        }
        tx.commit().await?;
        self.forget_credits(uid);
        Ok(balance)
    }

    /// On an immediate plan change, credit metrics get the difference between the new and the
    /// old allowance (never negative: a downgrade keeps what was granted).
    pub(crate) async fn grant_plan_change_credits(
        &self,
        tx: &mut AnyConn,
        user: &UserId,
        old: &PlanVersion,
        new: &PlanVersion,
        billing: Window,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let catalog = self.catalog().await?;
        for metric in &catalog.catalog.metrics {
            let (
                Ok(Rule::Credits {
                    allowance: new_allow,
                    rollover,
                    window,
                }),
                old_rule,
            ) = (
                rule_for(new, &catalog.catalog.metrics, metric, now, billing),
                rule_for(old, &catalog.catalog.metrics, metric, now, billing),
            )
            else {
                continue;
            };
            let old_allow = match old_rule {
                Ok(Rule::Credits { allowance, .. }) => allowance,
                _ => 0,
            };
            self.renew_credits_in(
                tx,
                user.as_str(),
                metric,
                old_allow,
                rollover,
                window,
                now,
                None,
            )
            .await?;
            let extra = new_allow - old_allow;
            if extra > 0 {
                usage::add_credits(tx, user.as_str(), metric, extra).await?;
                record_event(
                    tx,
                    user.as_str(),
                    metric,
                    "grant",
                    extra,
                    ms(now),
                    CREDIT_PERIOD,
                    None,
                )
                .await?;
            }
        }
        Ok(())
    }

    pub(crate) fn forget_credits(&self, user: &str) {
        if let Some(m) = &self.inner.memory {
            m.lock().credits.retain(|(u, _), _| u != user);
        }
    }

    pub(crate) fn forget_counters(&self, user: &str) {
        if let Some(m) = &self.inner.memory {
            let mut st = m.lock();
            st.counters.retain(|(u, _, _), _| u != user);
            st.credits.retain(|(u, _), _| u != user);
        }
    }

    /// Rebuilds every counter and balance from the usage events and reports what differs;
    /// with `repair`, writes the rebuilt values (audited).
    pub async fn verify_usage(&self, repair: bool, actor: &str) -> Result<Vec<Drift>> {
        let stored: HashMap<(String, String, i64), (i64, i64)> =
            usage::all_counters(self.db().read())
                .await?
                .into_iter()
                .map(|c| {
                    (
                        (c.user_id, c.metric, c.period_start),
                        (c.used, c.period_end),
                    )
                })
                .collect();
        let expected: HashMap<(String, String, i64), i64> =
            usage::counters_from_events(self.db().read())
                .await?
                .into_iter()
                .map(|(u, m, p, n)| ((u, m, p), n))
                .collect();
        let mut drifts = Vec::new();
        for (key, (used, _)) in &stored {
            let want = expected.get(key).copied().unwrap_or(0);
            if *used != want {
                drifts.push(Drift {
                    user_id: key.0.clone(),
                    metric: key.1.clone(),
                    period_start: Some(at(key.2)),
                    stored: *used,
                    expected: want,
                });
            }
        }
        for (key, want) in &expected {
            if !stored.contains_key(key) && *want != 0 {
                drifts.push(Drift {
                    user_id: key.0.clone(),
                    metric: key.1.clone(),
                    period_start: Some(at(key.2)),
                    stored: 0,
                    expected: *want,
                });
            }
        }
        let balances: HashMap<(String, String), i64> = usage::all_credits(self.db().read())
            .await?
            .into_iter()
            .map(|(u, m, b)| ((u, m), b))
            .collect();
        let want_balances: HashMap<(String, String), i64> =
            usage::credits_from_events(self.db().read())
                .await?
                .into_iter()
                .map(|(u, m, b)| ((u, m), b))
                .collect();
        for (key, b) in &balances {
            let want = want_balances.get(key).copied().unwrap_or(0);
            if *b != want {
                drifts.push(Drift {
                    user_id: key.0.clone(),
                    metric: key.1.clone(),
                    period_start: None,
                    stored: *b,
                    expected: want,
                });
            }
        }
        drifts.sort_by(|a, b| {
            (&a.user_id, &a.metric, a.period_start).cmp(&(&b.user_id, &b.metric, b.period_start))
        });
        if repair && !drifts.is_empty() {
            let mut tx = self.db().begin().await?;
            for d in &drifts {
                match d.period_start {
                    Some(p) => {
                        let end = stored
                            .get(&(d.user_id.clone(), d.metric.clone(), ms(p)))
                            .map(|x| x.1)
                            .unwrap_or(ms(p));
                        usage::set_counter(&mut tx, &d.user_id, &d.metric, ms(p), end, d.expected)
                            .await?;
                    }
                    None => usage::set_balance(&mut tx, &d.user_id, &d.metric, d.expected).await?,
                }
            }
            crate::store::audit::insert(
                &mut tx,
                &crate::store::audit::NewAudit {
                    actor,
                    action: "usage.repair",
                    target: "usage_counters",
                    before: &serde_json::to_string(
                        &drifts.iter().map(|d| d.stored).collect::<Vec<_>>(),
                    )
                    .unwrap_or_default(),
                    after: &serde_json::to_string(&drifts).unwrap_or_default(),
                    reason: None,
                    ip: None,
                    at: self.now_ms(),
                },
            )
            .await?;
            tx.commit().await?;
            for d in &drifts {
                self.forget_counters(&d.user_id);
            }
        }
        Ok(drifts)
    }
}

fn per_of(q: Option<&Quota>) -> String {
    match q {
        Some(Quota::Limit { per, .. }) | Some(Quota::Credits { per, .. }) => {
            per.as_str().to_owned()
        }
        None => Per::Day.as_str().to_owned(),
    }
}

impl Engine {
    /// Resets a metric's usage for its current window (staff). Written as a `reset` usage
    /// event so that counters stay derivable from events; returns how much was reset.
    pub(crate) async fn reset_usage_audited(
        &self,
        user: &UserId,
        metric: &str,
        audit: &super::audit::Draft<'_>,
    ) -> Result<i64> {
        let r = self.resolve_subscription(user).await?;
        let catalog = self.catalog().await?;
        let now = self.now();
        let Rule::Limit { window, .. } = rule_for(
            &r.effective,
            &catalog.catalog.metrics,
            metric,
            now,
            r.billing,
        )?
        else {
            return Err(Error::validation(
                "metric",
                "credits",
                "credit metrics are changed with a credit grant, not a reset",
            ));
        };
        let uid = user.as_str();
        let start = ms(window.start);
        let mut tx = self.db().begin().await?;
        let used = usage::counter_in(&mut tx, uid, metric, start)
            .await?
            .unwrap_or(0);
        if used > 0 {
            record_event(&mut tx, uid, metric, "reset", -used, ms(now), start, None).await?;
            usage::add_within(&mut tx, uid, metric, start, ms(window.end), -used, None).await?;
        }
        audit
            .write(
                &mut tx,
                serde_json::json!({ "metric": metric, "used": used }),
                serde_json::json!({ "metric": metric, "used": 0 }),
                ms(now),
            )
            .await?;
        tx.commit().await?;
        self.forget_counters(uid);
        Ok(used)
    }
}
