-- Plan catalogs (versioned, immutable), subscriptions, usage counters, credits, usage events,
-- and the facts behind every refused request.
-- Flags are 0/1 integers on both engines: sqlx's Any driver reads no SQLite booleans.

CREATE TABLE catalog_versions (
    version     INTEGER PRIMARY KEY,
    checksum    TEXT NOT NULL,
    source      TEXT NOT NULL,
    definition  TEXT NOT NULL,
    applied_at  INTEGER NOT NULL,
    applied_by  TEXT
);

-- One row per published version of a plan; subscribers point at the version they bought.
CREATE TABLE plan_versions (
    id          TEXT PRIMARY KEY,
    plan_id     TEXT NOT NULL,
    version     INTEGER NOT NULL,
    definition  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (plan_id, version)
);

CREATE TABLE catalog_plans (
    catalog_version  INTEGER NOT NULL REFERENCES catalog_versions (version),
    plan_version_id  TEXT NOT NULL REFERENCES plan_versions (id),
    position         INTEGER NOT NULL,
    PRIMARY KEY (catalog_version, plan_version_id)
);

CREATE TABLE subscriptions (
    id                         TEXT PRIMARY KEY,
    user_id                    TEXT NOT NULL UNIQUE REFERENCES users (id),
    plan_version_id            TEXT NOT NULL REFERENCES plan_versions (id),
    status                     TEXT NOT NULL
                               CHECK (status IN ('trialing', 'active', 'past_due', 'canceled', 'unpaid')),
    period_anchor              INTEGER NOT NULL,
    current_period_start       INTEGER NOT NULL,
    current_period_end         INTEGER NOT NULL,
    cancel_at_period_end       INTEGER NOT NULL DEFAULT 0,
    scheduled_plan_version_id  TEXT REFERENCES plan_versions (id),
    trial_end                  INTEGER,
    grace_until                INTEGER,
    stripe_customer_id         TEXT,
    stripe_subscription_id     TEXT UNIQUE,
    stripe_updated_at          INTEGER,
    created_at                 INTEGER NOT NULL,
    updated_at                 INTEGER NOT NULL
);
CREATE INDEX subscriptions_plan ON subscriptions (plan_version_id);

-- Derived state: rebuilt from usage_events by `tollgate usage verify --repair`.
CREATE TABLE usage_counters (
    user_id       TEXT NOT NULL REFERENCES users (id),
    metric        TEXT NOT NULL,
    period_start  INTEGER NOT NULL,
    period_end    INTEGER NOT NULL,
    used          INTEGER NOT NULL,
    PRIMARY KEY (user_id, metric, period_start)
);

CREATE TABLE credit_balances (
    user_id      TEXT NOT NULL REFERENCES users (id),
    metric       TEXT NOT NULL,
    balance      INTEGER NOT NULL CHECK (balance >= 0),
    granted_for  INTEGER NOT NULL,
    PRIMARY KEY (user_id, metric)
);

-- The durable record of usage. kind: consume (+amount used), release (-amount used),
-- reset (-used, by staff), grant (+credits), expire (credits dropped at renewal).
CREATE TABLE usage_events (
    id               TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL REFERENCES users (id),
    metric           TEXT NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('consume', 'release', 'reset', 'grant', 'expire')),
    amount           INTEGER NOT NULL,
    at               INTEGER NOT NULL,
    period_start     INTEGER NOT NULL,
    request_id       TEXT,
    idempotency_key  TEXT,
    answer           TEXT,
    released         INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX usage_events_idempotency ON usage_events (user_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL AND kind = 'consume';
CREATE INDEX usage_events_user_at ON usage_events (user_id, at);
CREATE INDEX usage_events_counter ON usage_events (user_id, metric, period_start);

-- Why a request was refused, by request id, so that support can explain it later.
CREATE TABLE decisions (
    request_id  TEXT PRIMARY KEY,
    user_id     TEXT,
    key_prefix  TEXT,
    code        TEXT NOT NULL,
    status      INTEGER NOT NULL,
    route       TEXT,
    facts       TEXT NOT NULL,
    at          INTEGER NOT NULL
);
CREATE INDEX decisions_user ON decisions (user_id, at);

-- Append-only record of every state-changing staff or operator action.
CREATE TABLE audit_events (
    id            TEXT PRIMARY KEY,
    actor         TEXT NOT NULL,
    action        TEXT NOT NULL,
    target        TEXT NOT NULL,
    before_state  TEXT NOT NULL,
    after_state   TEXT NOT NULL,
    reason        TEXT,
    ip            TEXT,
    at            INTEGER NOT NULL
);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_actor ON audit_events (actor, at);
CREATE INDEX audit_events_target ON audit_events (target, at);
