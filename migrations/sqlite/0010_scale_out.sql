-- Several `tollgate serve` processes on one database file.
--
-- cache_invalidations: every change that a cached verified key, subscription or catalog
-- depends on writes a row here, by trigger, in the changing transaction, whoever makes it (a
-- server, the CLI, the console). Every process polls for ids above the last it saw; SQLite
-- commits one writer at a time, so ids become visible in order. Old rows are pruned.
CREATE TABLE cache_invalidations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX cache_invalidations_created ON cache_invalidations (created_at);

CREATE TRIGGER cache_api_keys_update AFTER UPDATE OF revoked_at, expires_at, scopes, user_id ON api_keys
WHEN OLD.revoked_at IS NOT NEW.revoked_at OR OLD.expires_at IS NOT NEW.expires_at
  OR OLD.scopes IS NOT NEW.scopes OR OLD.user_id IS NOT NEW.user_id
BEGIN
    INSERT INTO cache_invalidations (kind, subject, created_at)
    VALUES ('key', NEW.id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
CREATE TRIGGER cache_api_keys_delete AFTER DELETE ON api_keys
BEGIN
    INSERT INTO cache_invalidations (kind, subject, created_at)
    VALUES ('key', OLD.id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

CREATE TRIGGER cache_users_update AFTER UPDATE OF email, full_name, role, status ON users
WHEN OLD.email IS NOT NEW.email OR OLD.full_name IS NOT NEW.full_name
  OR OLD.role IS NOT NEW.role OR OLD.status IS NOT NEW.status
BEGIN
    INSERT INTO cache_invalidations (kind, subject, created_at)
    VALUES ('user', NEW.id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
CREATE TRIGGER cache_users_delete AFTER DELETE ON users
BEGIN
    INSERT INTO cache_invalidations (kind, subject, created_at)
    VALUES ('user', OLD.id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

CREATE TRIGGER cache_subscriptions_update AFTER UPDATE ON subscriptions
BEGIN
    INSERT INTO cache_invalidations (kind, subject, created_at)
    VALUES ('subscription', NEW.user_id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
CREATE TRIGGER cache_subscriptions_delete AFTER DELETE ON subscriptions
BEGIN
    INSERT INTO cache_invalidations (kind, subject, created_at)
    VALUES ('subscription', OLD.user_id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

CREATE TRIGGER cache_catalog_insert AFTER INSERT ON catalog_versions
BEGIN
    INSERT INTO cache_invalidations (kind, subject, created_at)
    VALUES ('catalog', CAST(NEW.version AS TEXT), CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

-- Background work that must run in one process at a time (applying pending Stripe events,
-- pruning): the holder renews its row; another process takes it once it has expired.
CREATE TABLE background_leases (
    name         TEXT PRIMARY KEY,
    holder       TEXT NOT NULL,
    expires_at   INTEGER NOT NULL,
    acquired_at  INTEGER NOT NULL
);
