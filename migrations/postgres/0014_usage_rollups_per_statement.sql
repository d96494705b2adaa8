-- The usage rollups and active days are written once per INSERT statement, from the rows it
-- inserted (a transition table), instead of once per row. The group commit inserts a whole
-- batch of usage events in one statement: each rollup row it touches is now written once
-- per batch, not once per event, and with batches committing side by side on several
-- connections, every batch takes the shared rows (active-user count, hourly, daily) last and
-- in the same order, so two batches may wait for each other there but never deadlock.
-- The triggers keep their names (the rollup rebuild switches `usage_events_rollup` off by
-- name) and their results: the sums and counts are the same whatever the statement's size.

DROP TRIGGER usage_events_rollup ON usage_events;
DROP TRIGGER stat_usage_events_active ON usage_events;

CREATE OR REPLACE FUNCTION usage_events_rollup() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_shard INTEGER := pg_backend_pid() % 16;
BEGIN
    INSERT INTO usage_hourly
        SELECT metric, at / 3600000 * 3600000, COALESCE(plan_version_id, ''), kind, v_shard,
               SUM(amount), COUNT(*)
        FROM inserted GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (metric, hour, plan_version_id, kind, shard)
        DO UPDATE SET amount = usage_hourly.amount + EXCLUDED.amount,
                      events = usage_hourly.events + EXCLUDED.events;
    INSERT INTO usage_daily
        SELECT metric, at / 86400000 * 86400000, COALESCE(plan_version_id, ''), kind, v_shard,
               SUM(amount), COUNT(*)
        FROM inserted GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (metric, day, plan_version_id, kind, shard)
        DO UPDATE SET amount = usage_daily.amount + EXCLUDED.amount,
                      events = usage_daily.events + EXCLUDED.events;
    INSERT INTO usage_user_daily
        SELECT user_id, metric, at / 86400000 * 86400000, kind, SUM(amount), COUNT(*)
        FROM inserted GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (user_id, metric, day, kind)
        DO UPDATE SET amount = usage_user_daily.amount + EXCLUDED.amount,
                      events = usage_user_daily.events + EXCLUDED.events;
    RETURN NULL;
END $$;

-- A user's first consumption of a UTC day makes them active that day.
CREATE OR REPLACE FUNCTION stat_usage_events_active() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_day BIGINT;
    v_added BIGINT;
BEGIN
    FOR v_day, v_added IN
        WITH added AS (
            INSERT INTO user_active_days
                SELECT DISTINCT user_id, stat_day(at) FROM inserted WHERE kind = 'consume'
                ORDER BY 1, 2
                ON CONFLICT DO NOTHING
                RETURNING day
        )
        SELECT day, COUNT(*) FROM added GROUP BY day ORDER BY day
    LOOP
        PERFORM stat_add('active_users', '', v_day, v_added);
    END LOOP;
    RETURN NULL;
END $$;

-- Statement triggers of one event fire in the order of their names: active days first, then
-- the rollups.
CREATE TRIGGER stat_usage_events_active AFTER INSERT ON usage_events
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION stat_usage_events_active();

CREATE TRIGGER usage_events_rollup AFTER INSERT ON usage_events
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION usage_events_rollup();

-- The plan version is looked up only for an event that does not carry one.
DROP TRIGGER usage_events_plan ON usage_events;
CREATE TRIGGER usage_events_plan BEFORE INSERT ON usage_events
    FOR EACH ROW WHEN (NEW.plan_version_id IS NULL) EXECUTE FUNCTION usage_events_plan();
