-- Email verification and two-factor state are cached per process beside verified keys:
-- their changes are announced like the others (see 0010_scale_out).

CREATE TRIGGER cache_users_verified AFTER UPDATE ON users FOR EACH ROW
    WHEN (OLD.email_verified_at IS DISTINCT FROM NEW.email_verified_at)
    EXECUTE FUNCTION cache_invalidate('account', 'id');

CREATE TRIGGER cache_mfa_insert AFTER INSERT ON mfa_totp FOR EACH ROW
    WHEN (NEW.confirmed_at IS NOT NULL)
    EXECUTE FUNCTION cache_invalidate('account', 'user_id');
CREATE TRIGGER cache_mfa_update AFTER UPDATE ON mfa_totp FOR EACH ROW
    WHEN (OLD.confirmed_at IS DISTINCT FROM NEW.confirmed_at)
    EXECUTE FUNCTION cache_invalidate('account', 'user_id');
CREATE TRIGGER cache_mfa_delete AFTER DELETE ON mfa_totp FOR EACH ROW
    EXECUTE FUNCTION cache_invalidate('account', 'user_id');
