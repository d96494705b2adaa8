-- Usage over time for the back office's charts, kept by triggers in the same transaction as
-- each usage event: per hour and per day for the platform (by metric, plan version and event
-- kind), and per day for each user. Each usage event now records the plan version it was
-- counted under, so that the split by plan can be recounted exactly.
-- Amounts are summed as the events store them (releases and resets are negative).
-- `tollgate usage verify` recounts them; `--repair` rewrites them.

ALTER TABLE usage_events ADD COLUMN plan_version_id TEXT;
UPDATE usage_events SET plan_version_id =
    (SELECT s.plan_version_id FROM subscriptions s WHERE s.user_id = usage_events.user_id);

CREATE TABLE usage_hourly (
    metric           TEXT NOT NULL,
    hour             INTEGER NOT NULL,
    plan_version_id  TEXT NOT NULL,
    kind             TEXT NOT NULL,
    shard            INTEGER NOT NULL,
    amount           INTEGER NOT NULL,
    events           INTEGER NOT NULL,
    PRIMARY KEY (metric, hour, plan_version_id, kind, shard)
);

CREATE TABLE usage_daily (
    metric           TEXT NOT NULL,
    day              INTEGER NOT NULL,
    plan_version_id  TEXT NOT NULL,
    kind             TEXT NOT NULL,
    shard            INTEGER NOT NULL,
    amount           INTEGER NOT NULL,
    events           INTEGER NOT NULL,
    PRIMARY KEY (metric, day, plan_version_id, kind, shard)
);

CREATE TABLE usage_user_daily (
    user_id  TEXT NOT NULL,
    metric   TEXT NOT NULL,
    day      INTEGER NOT NULL,
    kind     TEXT NOT NULL,
    amount   INTEGER NOT NULL,
    events   INTEGER NOT NULL,
    PRIMARY KEY (user_id, metric, day, kind)
);

-- SQLite cannot change NEW before an insert: the plan version is written just after, then
-- read back by the rollups.
CREATE TRIGGER usage_events_rollup AFTER INSERT ON usage_events BEGIN
    UPDATE usage_events SET plan_version_id =
        (SELECT s.plan_version_id FROM subscriptions s WHERE s.user_id = new.user_id)
    WHERE rowid = new.rowid AND new.plan_version_id IS NULL;
    INSERT INTO usage_hourly
        SELECT new.metric, new.at / 3600000 * 3600000, COALESCE(plan_version_id, ''), new.kind, 0, new.amount, 1
        FROM usage_events WHERE rowid = new.rowid
        ON CONFLICT (metric, hour, plan_version_id, kind, shard)
        DO UPDATE SET amount = amount + excluded.amount, events = events + 1;
    INSERT INTO usage_daily
        SELECT new.metric, new.at / 86400000 * 86400000, COALESCE(plan_version_id, ''), new.kind, 0, new.amount, 1
        FROM usage_events WHERE rowid = new.rowid
        ON CONFLICT (metric, day, plan_version_id, kind, shard)
        DO UPDATE SET amount = amount + excluded.amount, events = events + 1;
    INSERT INTO usage_user_daily
        VALUES (new.user_id, new.metric, new.at / 86400000 * 86400000, new.kind, new.amount, 1)
        ON CONFLICT (user_id, metric, day, kind)
        DO UPDATE SET amount = amount + excluded.amount, events = events + 1;
END;

-- The usage already there.
INSERT INTO usage_hourly
    SELECT metric, at / 3600000 * 3600000, COALESCE(plan_version_id, ''), kind, 0, SUM(amount), COUNT(*)
    FROM usage_events GROUP BY metric, at / 3600000 * 3600000, COALESCE(plan_version_id, ''), kind;
INSERT INTO usage_daily
    SELECT metric, at / 86400000 * 86400000, COALESCE(plan_version_id, ''), kind, 0, SUM(amount), COUNT(*)
    FROM usage_events GROUP BY metric, at / 86400000 * 86400000, COALESCE(plan_version_id, ''), kind;
INSERT INTO usage_user_daily
    SELECT user_id, metric, at / 86400000 * 86400000, kind, SUM(amount), COUNT(*)
    FROM usage_events GROUP BY user_id, metric, at / 86400000 * 86400000, kind;
