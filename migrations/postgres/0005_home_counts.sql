-- Counts behind the back office's home figures, kept by triggers in the same transaction as
-- the change they count, so that reading them never scans users or usage events.
-- stat: users_status (key status), users_role and users_plan (key role / plan version id,
-- live users only), signups and active_users (key '', per UTC day), refusals (key code, per
-- UTC day). day is the UTC day's start in ms, 0 for figures that are not per day. A figure
-- is the SUM over its shards: each connection writes its own shard, so that concurrent
-- transactions do not queue on one row.
-- `tollgate usage verify` recounts them; `--repair` rewrites them.

CREATE TABLE stat_counts (
    stat   TEXT NOT NULL,
    key    TEXT NOT NULL,
    day    BIGINT NOT NULL,
    shard  INTEGER NOT NULL,
    count  BIGINT NOT NULL,
    PRIMARY KEY (stat, key, day, shard)
);

-- The days on which a user consumed something: the first consumption of a day counts them.
CREATE TABLE user_active_days (
    user_id  TEXT NOT NULL,
    day      BIGINT NOT NULL,
    PRIMARY KEY (user_id, day)
);

CREATE FUNCTION stat_add(p_stat TEXT, p_key TEXT, p_day BIGINT, p_n BIGINT) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO stat_counts (stat, key, day, shard, count)
        VALUES (p_stat, p_key, p_day, pg_backend_pid() % 16, p_n)
        ON CONFLICT (stat, key, day, shard) DO UPDATE SET count = stat_counts.count + EXCLUDED.count;
END $$;

CREATE FUNCTION stat_day(ms BIGINT) RETURNS BIGINT LANGUAGE sql IMMUTABLE AS $$
    SELECT ms / 86400000 * 86400000
$$;

CREATE FUNCTION stat_users() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    plan TEXT;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM stat_add('users_status', OLD.status, 0, -1);
        PERFORM stat_add('signups', '', stat_day(OLD.created_at), -1);
        IF OLD.status <> 'deleted' THEN
            PERFORM stat_add('users_role', OLD.role, 0, -1);
            FOR plan IN SELECT plan_version_id FROM subscriptions WHERE user_id = OLD.id LOOP
                PERFORM stat_add('users_plan', plan, 0, -1);
            END LOOP;
        END IF;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM stat_add('users_status', NEW.status, 0, 1);
        PERFORM stat_add('signups', '', stat_day(NEW.created_at), 1);
        IF NEW.status <> 'deleted' THEN
            PERFORM stat_add('users_role', NEW.role, 0, 1);
            FOR plan IN SELECT plan_version_id FROM subscriptions WHERE user_id = NEW.id LOOP
                PERFORM stat_add('users_plan', plan, 0, 1);
            END LOOP;
        END IF;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER stat_users_insert AFTER INSERT OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION stat_users();
CREATE TRIGGER stat_users_update AFTER UPDATE OF status, role, created_at ON users
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.role IS DISTINCT FROM NEW.role
          OR OLD.created_at IS DISTINCT FROM NEW.created_at)
    EXECUTE FUNCTION stat_users();

CREATE FUNCTION stat_subscriptions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE')
       AND EXISTS (SELECT 1 FROM users WHERE id = OLD.user_id AND status <> 'deleted') THEN
        PERFORM stat_add('users_plan', OLD.plan_version_id, 0, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE')
       AND EXISTS (SELECT 1 FROM users WHERE id = NEW.user_id AND status <> 'deleted') THEN
        PERFORM stat_add('users_plan', NEW.plan_version_id, 0, 1);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER stat_subscriptions_insert AFTER INSERT OR DELETE ON subscriptions
    FOR EACH ROW EXECUTE FUNCTION stat_subscriptions();
CREATE TRIGGER stat_subscriptions_update AFTER UPDATE OF plan_version_id, user_id ON subscriptions
    FOR EACH ROW
    WHEN (OLD.plan_version_id IS DISTINCT FROM NEW.plan_version_id OR OLD.user_id IS DISTINCT FROM NEW.user_id)
    EXECUTE FUNCTION stat_subscriptions();

CREATE FUNCTION stat_decisions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM stat_add('refusals', OLD.code, stat_day(OLD.at), -1);
    ELSE
        PERFORM stat_add('refusals', NEW.code, stat_day(NEW.at), 1);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER stat_decisions AFTER INSERT OR DELETE ON decisions
    FOR EACH ROW EXECUTE FUNCTION stat_decisions();

-- A user's first consumption of a UTC day makes them active that day.
CREATE FUNCTION stat_usage_events_active() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    added INTEGER;
BEGIN
    INSERT INTO user_active_days VALUES (NEW.user_id, stat_day(NEW.at)) ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS added = ROW_COUNT;
    IF added > 0 THEN
        PERFORM stat_add('active_users', '', stat_day(NEW.at), 1);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER stat_usage_events_active AFTER INSERT ON usage_events
    FOR EACH ROW WHEN (NEW.kind = 'consume') EXECUTE FUNCTION stat_usage_events_active();

-- The figures of the data already there.
INSERT INTO user_active_days
    SELECT DISTINCT user_id, stat_day(at) FROM usage_events WHERE kind = 'consume';
INSERT INTO stat_counts
    SELECT 'users_status', status, 0, 0, COUNT(*) FROM users GROUP BY status
    UNION ALL SELECT 'users_role', role, 0, 0, COUNT(*) FROM users WHERE status <> 'deleted' GROUP BY role
    UNION ALL SELECT 'users_plan', s.plan_version_id, 0, 0, COUNT(*) FROM subscriptions s
        JOIN users u ON u.id = s.user_id WHERE u.status <> 'deleted' GROUP BY s.plan_version_id
    UNION ALL SELECT 'signups', '', stat_day(created_at), 0, COUNT(*) FROM users
        GROUP BY stat_day(created_at)
    UNION ALL SELECT 'refusals', code, stat_day(at), 0, COUNT(*) FROM decisions
        GROUP BY code, stat_day(at)
    UNION ALL SELECT 'active_users', '', day, 0, COUNT(*) FROM user_active_days GROUP BY day;
