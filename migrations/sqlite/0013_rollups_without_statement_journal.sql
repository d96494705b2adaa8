-- The running sums that usage events' triggers add to drop their NOT NULL, so that the usage
-- writer's event insert needs no statement journal.
--
-- The triggers' upserts (the rollups', and the daily active users' count) end in DO UPDATE,
-- which SQLite always compiles with ABORT for the columns it sets: with NOT NULL on them,
-- every event insert (a statement that writes several rows, through the triggers) could abort
-- half-way, and SQLite copied each page it touched, before touching it, into a statement
-- journal so that it could undo the insert alone (about a tenth of the writer's time). The
-- writer inserts with OR ROLLBACK, so that nothing else asks for one. The sums are never
-- NULL: triggers and `tollgate usage verify --repair` write them from rows whose amounts are
-- NOT NULL, or add constants. PostgreSQL keeps its tables as they are.

DROP TRIGGER usage_events_rollup;

CREATE TABLE usage_hourly_sums (
    metric           TEXT NOT NULL,
    hour             INTEGER NOT NULL,
    plan_version_id  TEXT NOT NULL,
    kind             TEXT NOT NULL,
    shard            INTEGER NOT NULL,
    amount           INTEGER,
    events           INTEGER,
    PRIMARY KEY (metric, hour, plan_version_id, kind, shard)
);
INSERT INTO usage_hourly_sums SELECT metric, hour, plan_version_id, kind, shard, amount, events FROM usage_hourly;
DROP TABLE usage_hourly;
ALTER TABLE usage_hourly_sums RENAME TO usage_hourly;

CREATE TABLE usage_daily_sums (
    metric           TEXT NOT NULL,
    day              INTEGER NOT NULL,
    plan_version_id  TEXT NOT NULL,
    kind             TEXT NOT NULL,
    shard            INTEGER NOT NULL,
    amount           INTEGER,
    events           INTEGER,
    PRIMARY KEY (metric, day, plan_version_id, kind, shard)
);
INSERT INTO usage_daily_sums SELECT metric, day, plan_version_id, kind, shard, amount, events FROM usage_daily;
DROP TABLE usage_daily;
ALTER TABLE usage_daily_sums RENAME TO usage_daily;

CREATE TABLE usage_user_daily_sums (
    user_id  TEXT NOT NULL,
    metric   TEXT NOT NULL,
    day      INTEGER NOT NULL,
    kind     TEXT NOT NULL,
    amount   INTEGER,
    events   INTEGER,
    PRIMARY KEY (user_id, metric, day, kind)
) WITHOUT ROWID;
INSERT INTO usage_user_daily_sums SELECT user_id, metric, day, kind, amount, events FROM usage_user_daily;
DROP TABLE usage_user_daily;
ALTER TABLE usage_user_daily_sums RENAME TO usage_user_daily;

-- Other tables' triggers add to stat_counts by name: a rename in the legacy way leaves them
-- as they are (they find the new table under the old name), where the modern one would check
-- them while the name is missing and fail.
CREATE TABLE stat_counts_sums (
    stat   TEXT NOT NULL,
    key    TEXT NOT NULL,
    day    INTEGER NOT NULL,
    shard  INTEGER NOT NULL,
    count  INTEGER,
    PRIMARY KEY (stat, key, day, shard)
);
INSERT INTO stat_counts_sums SELECT stat, key, day, shard, count FROM stat_counts;
DROP TABLE stat_counts;
PRAGMA legacy_alter_table = ON;
ALTER TABLE stat_counts_sums RENAME TO stat_counts;
PRAGMA legacy_alter_table = OFF;

-- As migration 0012 wrote it.
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
