-- The usage journal: where the usage writer thread appends a metered request's consumption
-- when it is answered. Appending touches the last pages of one table only, whatever the
-- customer; the writer moves the journal into usage_events and usage_counters (their indexes,
-- the rollup triggers) in larger transactions, where the pages of many customers' rows are
-- written once for many events. Every row is durable either here or there; at start-up the
-- server moves whatever a stopped process left here before it serves.
CREATE TABLE usage_journal (
    seq              INTEGER PRIMARY KEY,
    id               TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    metric           TEXT NOT NULL,
    kind             TEXT NOT NULL,
    amount           INTEGER NOT NULL,
    at               INTEGER NOT NULL,
    period_start     INTEGER NOT NULL,
    period_end       INTEGER NOT NULL,
    request_id       TEXT,
    idempotency_key  TEXT,
    answer           TEXT,
    plan_version_id  TEXT
);
