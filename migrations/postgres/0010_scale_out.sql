-- Several `tollgate serve` instances on one database.
--
-- Every change that a cached verified key, subscription or catalog depends on sends a
-- notification on channel `tollgate_cache` (payload `kind:subject`), by trigger, in the
-- changing transaction, whoever makes it (a server, the CLI, the console). PostgreSQL
-- delivers it at commit, in commit order, to every instance that listens; an instance whose
-- listening connection drops forgets all it cached. (SQLite, which has no notifications,
-- keeps the same facts in a `cache_invalidations` table that its processes poll.)

CREATE FUNCTION cache_invalidate() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    subject TEXT;
BEGIN
    IF TG_OP = 'DELETE' THEN
        subject := to_jsonb(OLD) ->> TG_ARGV[1];
    ELSE
        subject := to_jsonb(NEW) ->> TG_ARGV[1];
    END IF;
    PERFORM pg_notify('tollgate_cache', TG_ARGV[0] || ':' || subject);
    RETURN NULL;
END
$$;

CREATE TRIGGER cache_api_keys_update AFTER UPDATE ON api_keys FOR EACH ROW
    WHEN (OLD.revoked_at IS DISTINCT FROM NEW.revoked_at OR OLD.expires_at IS DISTINCT FROM NEW.expires_at
       OR OLD.scopes IS DISTINCT FROM NEW.scopes OR OLD.user_id IS DISTINCT FROM NEW.user_id)
    EXECUTE FUNCTION cache_invalidate('key', 'id');
CREATE TRIGGER cache_api_keys_delete AFTER DELETE ON api_keys FOR EACH ROW
    EXECUTE FUNCTION cache_invalidate('key', 'id');

CREATE TRIGGER cache_users_update AFTER UPDATE ON users FOR EACH ROW
    WHEN (OLD.email IS DISTINCT FROM NEW.email OR OLD.full_name IS DISTINCT FROM NEW.full_name
       OR OLD.role IS DISTINCT FROM NEW.role OR OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION cache_invalidate('user', 'id');
CREATE TRIGGER cache_users_delete AFTER DELETE ON users FOR EACH ROW
    EXECUTE FUNCTION cache_invalidate('user', 'id');

CREATE TRIGGER cache_subscriptions_changed AFTER UPDATE OR DELETE ON subscriptions FOR EACH ROW
    EXECUTE FUNCTION cache_invalidate('subscription', 'user_id');

CREATE TRIGGER cache_catalog_insert AFTER INSERT ON catalog_versions FOR EACH ROW
    EXECUTE FUNCTION cache_invalidate('catalog', 'version');

-- Background work that must run in one instance at a time (applying pending Stripe events,
-- pruning): the holder renews its row; another instance takes it once it has expired.
CREATE TABLE background_leases (
    name         TEXT PRIMARY KEY,
    holder       TEXT NOT NULL,
    expires_at   BIGINT NOT NULL,
    acquired_at  BIGINT NOT NULL
);
