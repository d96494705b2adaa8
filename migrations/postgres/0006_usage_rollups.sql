-- Usage over time for the back office's charts, kept by triggers in the same transaction as
-- each usage event: per hour and per day for the platform (by metric, plan version and event
-- kind), and per day for each user. Each usage event now records the plan version it was
-- counted under, so that the split by plan can be recounted exactly.
-- Amounts are summed as the events store them (releases and resets are negative). Platform
-- rows are sharded per connection, so that concurrent meters do not queue on one row.
-- `tollgate usage verify` recounts them; `--repair` rewrites them.

ALTER TABLE usage_events ADD COLUMN plan_version_id TEXT;
UPDATE usage_events e SET plan_version_id = s.plan_version_id
    FROM subscriptions s WHERE s.user_id = e.user_id;

CREATE TABLE usage_hourly (
    metric           TEXT NOT NULL,
    hour             BIGINT NOT NULL,
    plan_version_id  TEXT NOT NULL,
    kind             TEXT NOT NULL,
    shard            INTEGER NOT NULL,
    amount           BIGINT NOT NULL,
    events           BIGINT NOT NULL,
    PRIMARY KEY (metric, hour, plan_version_id, kind, shard)
);

CREATE TABLE usage_daily (
    metric           TEXT NOT NULL,
    day              BIGINT NOT NULL,
    plan_version_id  TEXT NOT NULL,
    kind             TEXT NOT NULL,
    shard            INTEGER NOT NULL,
    amount           BIGINT NOT NULL,
    events           BIGINT NOT NULL,
    PRIMARY KEY (metric, day, plan_version_id, kind, shard)
);

CREATE TABLE usage_user_daily (
    user_id  TEXT NOT NULL,
    metric   TEXT NOT NULL,
    day      BIGINT NOT NULL,
    kind     TEXT NOT NULL,
    amount   BIGINT NOT NULL,
    events   BIGINT NOT NULL,
    PRIMARY KEY (user_id, metric, day, kind)
);

CREATE FUNCTION usage_events_plan() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.plan_version_id IS NULL THEN
        SELECT plan_version_id INTO NEW.plan_version_id FROM subscriptions WHERE user_id = NEW.user_id;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER usage_events_plan BEFORE INSERT ON usage_events
    FOR EACH ROW EXECUTE FUNCTION usage_events_plan();

CREATE FUNCTION usage_events_rollup() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_plan TEXT := COALESCE(NEW.plan_version_id, '');
    v_shard INTEGER := pg_backend_pid() % 16;
BEGIN
    INSERT INTO usage_hourly VALUES (NEW.metric, NEW.at / 3600000 * 3600000, v_plan, NEW.kind, v_shard, NEW.amount, 1)
        ON CONFLICT (metric, hour, plan_version_id, kind, shard)
        DO UPDATE SET amount = usage_hourly.amount + EXCLUDED.amount, events = usage_hourly.events + 1;
    INSERT INTO usage_daily VALUES (NEW.metric, NEW.at / 86400000 * 86400000, v_plan, NEW.kind, v_shard, NEW.amount, 1)
        ON CONFLICT (metric, day, plan_version_id, kind, shard)
        DO UPDATE SET amount = usage_daily.amount + EXCLUDED.amount, events = usage_daily.events + 1;
    INSERT INTO usage_user_daily VALUES (NEW.user_id, NEW.metric, NEW.at / 86400000 * 86400000, NEW.kind, NEW.amount, 1)
        ON CONFLICT (user_id, metric, day, kind)
        DO UPDATE SET amount = usage_user_daily.amount + EXCLUDED.amount, events = usage_user_daily.events + 1;
    RETURN NULL;
END $$;

CREATE TRIGGER usage_events_rollup AFTER INSERT ON usage_events
    FOR EACH ROW EXECUTE FUNCTION usage_events_rollup();

-- The usage already there.
INSERT INTO usage_hourly
    SELECT metric, at / 3600000 * 3600000, COALESCE(plan_version_id, ''), kind, 0, SUM(amount), COUNT(*)
    FROM usage_events GROUP BY 1, 2, 3, 4;
INSERT INTO usage_daily
    SELECT metric, at / 86400000 * 86400000, COALESCE(plan_version_id, ''), kind, 0, SUM(amount), COUNT(*)
    FROM usage_events GROUP BY 1, 2, 3, 4;
INSERT INTO usage_user_daily
    SELECT user_id, metric, at / 86400000 * 86400000, kind, SUM(amount), COUNT(*)
    FROM usage_events GROUP BY 1, 2, 3, 4;
