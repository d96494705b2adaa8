-- Account security and email: verified emails, one-time tokens sent by mail (verification,
-- password reset), TOTP two-factor with recovery codes, and the outbox of mail to send.

ALTER TABLE users ADD COLUMN email_verified_at INTEGER;

-- Mail is written here in the same transaction as the action that causes it; a sender task
-- delivers it over SMTP when one is configured, with retries and backoff.
CREATE TABLE mail_outbox (
    id               TEXT PRIMARY KEY,
    user_id          TEXT REFERENCES users (id),
    to_email         TEXT NOT NULL,
    template         TEXT NOT NULL,
    subject          TEXT NOT NULL,
    body_text        TEXT NOT NULL,
    body_html        TEXT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'sent', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    sent_at          INTEGER
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX mail_outbox_user ON mail_outbox (user_id, created_at);

-- One-time tokens sent by mail, stored as keyed hashes. Used once; a reset also spends every
-- other outstanding reset token of the account.
CREATE TABLE account_tokens (
    token_hash  TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id),
    purpose     TEXT NOT NULL CHECK (purpose IN ('verify_email', 'password_reset')),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
);
CREATE INDEX account_tokens_user ON account_tokens (user_id, purpose);

-- A TOTP secret, encrypted with a key derived from the server secret. Enrolment writes it
-- unconfirmed; a first good code confirms it. last_step refuses a code used twice.
CREATE TABLE mfa_totp (
    user_id       TEXT PRIMARY KEY REFERENCES users (id),
    secret_enc    TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    confirmed_at  INTEGER,
    last_step     INTEGER
);

CREATE TABLE mfa_recovery_codes (
    user_id    TEXT NOT NULL REFERENCES users (id),
    code_hash  TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    used_at    INTEGER,
    PRIMARY KEY (user_id, code_hash)
);
