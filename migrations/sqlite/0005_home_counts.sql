-- Counts behind the back office's home figures, kept by triggers in the same transaction as
-- the change they count, so that reading them never scans users or usage events.
-- stat: users_status (key status), users_role and users_plan (key role / plan version id,
-- live users only), signups and active_users (key '', per UTC day), refusals (key code, per
-- UTC day). day is the UTC day's start in ms, 0 for figures that are not per day. A figure
-- is the SUM over its shards (PostgreSQL spreads concurrent writers over shards).
-- `tollgate usage verify` recounts them; `--repair` rewrites them.

CREATE TABLE stat_counts (
    stat   TEXT NOT NULL,
    key    TEXT NOT NULL,
    day    INTEGER NOT NULL,
    shard  INTEGER NOT NULL,
    count  INTEGER NOT NULL,
    PRIMARY KEY (stat, key, day, shard)
);

-- The days on which a user consumed something: the first consumption of a day counts them.
CREATE TABLE user_active_days (
    user_id  TEXT NOT NULL,
    day      INTEGER NOT NULL,
    PRIMARY KEY (user_id, day)
);

CREATE TRIGGER stat_users_insert AFTER INSERT ON users BEGIN
    INSERT INTO stat_counts VALUES ('users_status', new.status, 0, 0, 1)
        ON CONFLICT (stat, key, day, shard) DO UPDATE SET count = count + 1;
    INSERT INTO stat_counts SELECT 'users_role', new.role, 0, 0, 1 WHERE new.status <> 'deleted'
        ON CONFLICT (stat, key, day, shard) DO UPDATE SET count = count + 1;
    INSERT INTO stat_counts VALUES ('signups', '', new.created_at / 86400000 * 86400000, 0, 1)
        ON CONFLICT (stat, key, day, shard) DO UPDATE SET count = count + 1;
    INSERT INTO stat_counts SELECT 'users_plan', s.plan_version_id, 0, 0, 1 FROM subscriptions s
        WHERE s.user_id = new.id AND new.status <> 'deleted'
        ON CONFLICT (stat, key, day, shard) DO UPDATE SET count = count + 1;
END;

CREATE TRIGGER stat_users_update AFTER UPDATE OF status, role, created_at ON users
WHEN old.status IS NOT new.status OR old.role IS NOT new.role OR old.created_at IS NOT new.created_at
BEGIN
    INSERT INTO stat_counts VALUES ('users_status', old.status, 0, 0, -1)
        ON CONFLICT (stat, key, day, shard) DO UPDATE SET count = count - 1;
    INSERT INTO stat_counts VALUES ('users_status', new.status, 0, 0, 1)
        ON CONFLICT (stat, key, day, shard) DO UPDATE SET count = count + 1;
    INSERT INTO stat_counts SELECT 'users_role', old.role, 0, 0, -1 WHERE old.status <> 'deleted'
        ON CONFLICT (stat, key, day, shard) DO UPDATE SET count = count - 1;
    INSERT INTO stat_counts SELECT 'users_role', new.role, 0, 0, 1 WHERE new.status <> 'deleted'
        ON CONFLICT (stat, key, day, shard) DO UPDATE SET count = count + 1;
    INSERT INTO stat_counts VALUES ('signups', '', old.created_at / 86400000 * 86400000, 0, -1)
        ON CONFLICT (stat, key, day, shard) DO UPDATE SET count = count - 1;
    INSERT INTO stat_counts VALUES ('signups', '', new.created_at / 86400000 * 86400000, 0, 1)
        ON CONFLICT (stat, key, day, shard) DO UPDATE SET count = count + 1;
    INSERT INTO stat_counts SELECT 'users_plan', s.plan_version_id, 0, 0, -1 FROM subscriptions s
        WHERE s.user_id = old.id AND old.status <> 'deleted'
        ON CONFLICT (stat, key, day, shard) DO UPDATE SET count = count - 1;
    INSERT INTO stat_counts SELECT 'users_plan', s.plan_version_id, 0, 0, 1 FROM subscriptions s
        WHERE s.user_id = new.id AND new.status <> 'deleted'
        ON CONFLICT (stat, key, day, shard) DO UPDATE SET count = count + 1;
END;

CREATE TRIGGER stat_users_delete AFTER DELETE ON users BEGIN
    INSERT INTO stat_counts VALUES ('users_status', old.status, 0, 0, -1)
        ON CONFLICT (stat, key, day, shard) DO UPDATE SET count = count - 1;
    INSERT INTO stat_counts SELECT 'users_role', old.role, 0, 0, -1 WHERE old.status <> 'deleted'
        ON CONFLICT (stat, key, day, shard) DO UPDATE SET count = count - 1;
    INSERT INTO stat_counts VALUES ('signups', '', old.created_at / 86400000 * 86400000, 0, -1)
        ON CONFLICT (stat, key, day, shard) DO UPDATE SET count = count - 1;
    INSERT INTO stat_counts SELECT 'users_plan', s.plan_version_id, 0, 0, -1 FROM subscriptions s
        WHERE s.user_id = old.id AND old.status <> 'deleted'
        ON CONFLICT (stat, key, day, shard) DO UPDATE SET count = count - 1;
END;

CREATE TRIGGER stat_subscriptions_insert AFTER INSERT ON subscriptions BEGIN
    INSERT INTO stat_counts SELECT 'users_plan', new.plan_version_id, 0, 0, 1 FROM users u
        WHERE u.id = new.user_id AND u.status <> 'deleted'
        ON CONFLICT (stat, key, day, shard) DO UPDATE SET count = count + 1;
END;

CREATE TRIGGER stat_subscriptions_update AFTER UPDATE OF plan_version_id, user_id ON subscriptions
WHEN old.plan_version_id IS NOT new.plan_version_id OR old.user_id IS NOT new.user_id
BEGIN
    INSERT INTO stat_counts SELECT 'users_plan', old.plan_version_id, 0, 0, -1 FROM users u
        WHERE u.id = old.user_id AND u.status <> 'deleted'
        ON CONFLICT (stat, key, day, shard) DO UPDATE SET count = count - 1;
    INSERT INTO stat_counts SELECT 'users_plan', new.plan_version_id, 0, 0, 1 FROM users u
        WHERE u.id = new.user_id AND u.status <> 'deleted'
        ON CONFLICT (stat, key, day, shard) DO UPDATE SET count = count + 1;
END;

CREATE TRIGGER stat_subscriptions_delete AFTER DELETE ON subscriptions BEGIN
    INSERT INTO stat_counts SELECT 'users_plan', old.plan_version_id, 0, 0, -1 FROM users u
        WHERE u.id = old.user_id AND u.status <> 'deleted'
        ON CONFLICT (stat, key, day, shard) DO UPDATE SET count = count - 1;
END;

CREATE TRIGGER stat_decisions_insert AFTER INSERT ON decisions BEGIN
    INSERT INTO stat_counts VALUES ('refusals', new.code, new.at / 86400000 * 86400000, 0, 1)
        ON CONFLICT (stat, key, day, shard) DO UPDATE SET count = count + 1;
END;

CREATE TRIGGER stat_decisions_delete AFTER DELETE ON decisions BEGIN
    INSERT INTO stat_counts VALUES ('refusals', old.code, old.at / 86400000 * 86400000, 0, -1)
        ON CONFLICT (stat, key, day, shard) DO UPDATE SET count = count - 1;
END;

-- A user's first consumption of a UTC day makes them active that day.
CREATE TRIGGER stat_usage_events_active AFTER INSERT ON usage_events
WHEN new.kind = 'consume' AND NOT EXISTS (
    SELECT 1 FROM user_active_days WHERE user_id = new.user_id AND day = new.at / 86400000 * 86400000)
BEGIN
    INSERT INTO user_active_days VALUES (new.user_id, new.at / 86400000 * 86400000);
    INSERT INTO stat_counts VALUES ('active_users', '', new.at / 86400000 * 86400000, 0, 1)
        ON CONFLICT (stat, key, day, shard) DO UPDATE SET count = count + 1;
END;

-- The figures of the data already there.
INSERT INTO user_active_days
    SELECT DISTINCT user_id, at / 86400000 * 86400000 FROM usage_events WHERE kind = 'consume';
INSERT INTO stat_counts
    SELECT 'users_status', status, 0, 0, COUNT(*) FROM users GROUP BY status
    UNION ALL SELECT 'users_role', role, 0, 0, COUNT(*) FROM users WHERE status <> 'deleted' GROUP BY role
    UNION ALL SELECT 'users_plan', s.plan_version_id, 0, 0, COUNT(*) FROM subscriptions s
        JOIN users u ON u.id = s.user_id WHERE u.status <> 'deleted' GROUP BY s.plan_version_id
    UNION ALL SELECT 'signups', '', created_at / 86400000 * 86400000, 0, COUNT(*) FROM users
        GROUP BY created_at / 86400000 * 86400000
    UNION ALL SELECT 'refusals', code, at / 86400000 * 86400000, 0, COUNT(*) FROM decisions
        GROUP BY code, at / 86400000 * 86400000
    UNION ALL SELECT 'active_users', '', day, 0, COUNT(*) FROM user_active_days GROUP BY day;
