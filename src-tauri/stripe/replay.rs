//! Replaying events from files: as Stripe sends them (one event per file, an array, JSON
//! lines) or as `tollgate stripe events list --json` prints them. Events are applied in
//! `created` order through the same path as webhooks, so replaying twice changes nothing.
//! A dry run applies them inside one transaction that is rolled back at the end.

use super::apply::ApplyError;
use super::event;
use super::receive::EventStatus;
use crate::error::{Error, Result};
use crate::service::Engine;
use crate::store::stripe as db;
use crate::store::AnyConn;
use anyhow::Context;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// One event read from a file.
#[derive(Debug, Clone)]
pub struct EventInput {
    pub source: String,
    pub payload: String,
}

/// What replaying one event did (or, in a dry run, would do): the same answer the back
/// office's replay gives.
pub use crate::service::stripe_events::admin::ReplayedEvent as ReplayItem;

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ReplaySummary {
    pub total: usize,
    pub applied: usize,
    pub ignored: usize,
    pub pending: usize,
    pub failed: usize,
    pub skipped: usize,
}

impl ReplaySummary {
    fn count(&mut self, item: &ReplayItem) {
        self.total += 1;
        match item.outcome.as_str() {
            "applied" => self.applied += 1,
            "ignored" => self.ignored += 1,
            "pending" => self.pending += 1,
            "failed" => self.failed += 1,
            _ => self.skipped += 1,
        }
    }
}

fn files_under(path: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("reading {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                files_under(&p, out)?;
            } else if matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("json" | "jsonl")
            ) {
                out.push(p);
            }
        }
    } else {
        out.push(path.to_owned());
    }
    Ok(())
}

fn collect(
    value: serde_json::Value,
    source: &str,
    out: &mut Vec<EventInput>,
    skipped: &mut Vec<String>,
) {
    match value {
        serde_json::Value::Array(items) => {
            for v in items {
                collect(v, source, out, skipped);
            }
        }
        serde_json::Value::Object(ref map) => {
            if let (Some("list"), Some(serde_json::Value::Array(items))) =
                (map.get("object").and_then(|o| o.as_str()), map.get("data"))
            {
                // The output of `stripe events list`: a list object holding the events.
                for v in items.clone() {
                    collect(v, source, out, skipped);
                }
            } else if map.get("object").and_then(|o| o.as_str()) == Some("event") {
                out.push(EventInput {
                    source: source.to_owned(),
                    payload: value.to_string(),
                });
            } else if let Some(p) = map.get("payload") {
                // A record of `events list --json`: the payload as stored.
                let payload = match p {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                out.push(EventInput {
                    source: source.to_owned(),
                    payload,
                });
            } else {
                skipped.push(format!("{source}: not a Stripe event"));
            }
        }
        _ => skipped.push(format!("{source}: not a Stripe event")),
    }
}

/// Every event in a file or a folder (recursively, `*.json` and `*.jsonl`). Returns the
/// events and a note for each JSON value that is not an event (such as a catalog file).
pub fn read_events(path: &Path) -> anyhow::Result<(Vec<EventInput>, Vec<String>)> {
    anyhow::ensure!(path.exists(), "{} does not exist", path.display());
    let mut files = Vec::new();
    files_under(path, &mut files)?;
    let mut events = Vec::new();
    let mut skipped = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        let source = file.display().to_string();
        let (mut found, mut notes) = parse_events(&text, &source)?;
        events.append(&mut found);
        skipped.append(&mut notes);
    }
    Ok((events, skipped))
}

/// The events in one file's text: one event, a JSON array, JSON lines, a `stripe events list`
/// output (a list object with `data`) or `tollgate stripe events list --json` records.
pub fn parse_events(text: &str, source: &str) -> anyhow::Result<(Vec<EventInput>, Vec<String>)> {
    let values: Vec<serde_json::Value> = serde_json::Deserializer::from_str(text)
        .into_iter()
        .collect::<std::result::Result<_, _>>()
        .with_context(|| format!("{source} is not JSON"))?;
    let mut events = Vec::new();
    let mut skipped = Vec::new();
    // A file holding exactly one event keeps its bytes as they are.
    if let [v] = values.as_slice() {
        if v.get("object").and_then(|o| o.as_str()) == Some("event") {
            events.push(EventInput {
                source: source.to_owned(),
                payload: text.to_owned(),
            });
            return Ok((events, skipped));
        }
    }
    for v in values {
        collect(v, source, &mut events, &mut skipped);
    }
    Ok((events, skipped))
}

impl Engine {
    /// Stores and applies events in `created` order. With `dry_run`, nothing is kept: the
    /// items say what each event would change. `progress` is called after each event.
    pub async fn replay_stripe_events(
        &self,
        inputs: Vec<EventInput>,
        dry_run: bool,
        mut progress: impl FnMut(usize, usize, &ReplayItem),
    ) -> Result<(Vec<ReplayItem>, ReplaySummary)> {
        let mut events = Vec::new();
        for input in inputs {
            let env = event::envelope(input.payload.as_bytes())
                .map_err(|e| Error::InvalidStripeEvent(format!("{}: {e}", input.source)))?;
            events.push((env, input.payload));
        }
        events.sort_by(|a, b| (a.0.created, &a.0.id).cmp(&(b.0.created, &b.0.id)));
        events.dedup_by(|a, b| a.0.id == b.0.id);
        let total = events.len();
        let mut items = Vec::new();
        let mut summary = ReplaySummary::default();
        let mut dry_tx = if dry_run {
            Some(self.db().begin().await?)
        } else {
            None
        };
        for (n, (env, payload)) in events.into_iter().enumerate() {
            let item = match dry_tx.as_mut() {
                Some(tx) => {
                    self.store_stripe_event(tx, &env, &payload).await?;
                    let mut item = self.apply_dry(tx, &env.id).await?;
                    // A customer linked by this event: its earlier pending events follow.
                    if item.outcome == "applied" {
                        if let Some(c) = &env.customer_id {
                            for id in db::pending_ids_for_customer(tx, c).await? {
                                let more = self.apply_dry(tx, &id).await?;
                                if more.outcome == "applied" {
                                    item.changes.push(format!("then pending {id}:"));
                                    item.changes.extend(more.changes);
                                }
                            }
                        }
                    }
                    item
                }
                None => {
                    let mut tx = self.db().begin().await?;
                    self.store_stripe_event(&mut tx, &env, &payload).await?;
                    tx.commit().await?;
                    let before = db::event(self.db().read(), &env.id).await?;
                    let already = before
                        .as_ref()
                        .is_some_and(|r| matches!(r.status.as_str(), "applied" | "ignored"));
                    if already {
                        ReplayItem {
                            id: env.id.clone(),
                            type_: env.type_.clone(),
                            outcome: "skipped".into(),
                            error: None,
                            changes: vec!["already applied".into()],
                        }
                    } else {
                        let a = self.apply_stripe_event(&env.id).await?;
                        ReplayItem {
                            id: env.id.clone(),
                            type_: env.type_.clone(),
                            outcome: a.status.as_str().into(),
                            error: a.error,
                            changes: a.changes,
                        }
                    }
                }
            };
            summary.count(&item);
            progress(n + 1, total, &item);
            items.push(item);
        }
        if let Some(tx) = dry_tx {
            tx.rollback().await?;
        }
        Ok((items, summary))
    }

    /// Applies one stored event inside a savepoint of the dry-run transaction.
    async fn apply_dry(&self, tx: &mut AnyConn, id: &str) -> Result<ReplayItem> {
        use sqlx::Connection;
        let row = db::event_in(tx, id)
            .await?
            .ok_or(Error::NotFound("stripe event"))?;
        let mut item = ReplayItem {
            id: row.id.clone(),
            type_: row.type_.clone(),
            outcome: "skipped".into(),
            error: None,
            changes: vec![],
        };
        if matches!(row.status.as_str(), "applied" | "ignored") {
            item.changes.push("already applied".into());
            return Ok(item);
        }
        let mut sp = tx.begin().await?;
        match self.apply_in(&mut sp, &row).await {
            Ok(a) => {
                a.record(&mut sp, id, self.now_ms()).await?;
                sp.commit().await?;
                item.outcome = a.status.as_str().into();
                item.error = a.error;
                item.changes = a.changes;
            }
            Err(ApplyError::Invalid(m)) => {
                sp.rollback().await?;
                item.outcome = EventStatus::Failed.as_str().into();
                item.error = Some(m);
            }
            Err(ApplyError::Store(e)) => return Err(e),
        }
        Ok(item)
    }
}
