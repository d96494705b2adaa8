-- Email verification and two-factor state are cached per process beside verified keys:
-- their changes are announced like the others (see 0010_scale_out).

CREATE TRIGGER cache_users_verified AFTER UPDATE OF email_verified_at ON users
WHEN OLD.email_verified_at IS NOT NEW.email_verified_at
BEGIN
    INSERT INTO cache_invalidations (kind, subject, created_at)
    VALUES ('account', NEW.id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

CREATE TRIGGER cache_mfa_insert AFTER INSERT ON mfa_totp
WHEN NEW.confirmed_at IS NOT NULL
BEGIN
    INSERT INTO cache_invalidations (kind, subject, created_at)
    VALUES ('account', NEW.user_id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
CREATE TRIGGER cache_mfa_update AFTER UPDATE OF confirmed_at ON mfa_totp
WHEN OLD.confirmed_at IS NOT NEW.confirmed_at
BEGIN
    INSERT INTO cache_invalidations (kind, subject, created_at)
    VALUES ('account', NEW.user_id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
CREATE TRIGGER cache_mfa_delete AFTER DELETE ON mfa_totp
BEGIN
    INSERT INTO cache_invalidations (kind, subject, created_at)
    VALUES ('account', OLD.user_id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
