-- Accounts, staff roles, device sessions with rotating refresh tokens, API keys.
-- Times are Unix milliseconds (UTC) so that the same queries run on SQLite and PostgreSQL.

CREATE TABLE settings (
    name        TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE users (
    id                 TEXT PRIMARY KEY,
    email              TEXT NOT NULL,
    full_name          TEXT,
    password_hash      TEXT NOT NULL,
    role               TEXT NOT NULL DEFAULT 'user'
                       CHECK (role IN ('user', 'support', 'finance', 'admin')),
    status             TEXT NOT NULL DEFAULT 'active'
                       CHECK (status IN ('active', 'suspended', 'deleted')),
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    deleted_at         INTEGER
);
-- A deleted account frees its email for a new registration; live accounts keep it unique.
CREATE UNIQUE INDEX users_email_live ON users (email) WHERE status <> 'deleted';
CREATE INDEX users_created ON users (created_at, id);
CREATE INDEX users_role ON users (role) WHERE role <> 'user';

CREATE TABLE sessions (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users (id),
    user_agent      TEXT,
    ip              TEXT,
    created_at      INTEGER NOT NULL,
    last_seen_at    INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    revoked_at      INTEGER,
    revoked_reason  TEXT
);
CREATE INDEX sessions_user ON sessions (user_id, created_at);

-- Every refresh token ever issued, hashed. A token is used once; presenting a used one again
-- means it was stolen or replayed, and revokes its whole session.
CREATE TABLE refresh_tokens (
    token_hash  TEXT PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES sessions (id),
    issued_at   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id),
    name          TEXT NOT NULL,
    prefix        TEXT NOT NULL,
    key_hash      TEXT NOT NULL UNIQUE,
    scopes        TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    expires_at    INTEGER,
    revoked_at    INTEGER
);
CREATE INDEX api_keys_user ON api_keys (user_id, created_at);
