-- A number that changes, in the same transaction, whenever a fact the revenue reports read
-- changes (paid invoices, how subscriptions ended, refunds): a ledger built for one version
-- is reused until the next. Bumped once per statement.

CREATE TABLE revenue_version (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    version  BIGINT NOT NULL
);
INSERT INTO revenue_version (id, version) VALUES (1, 0);

CREATE FUNCTION revenue_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE revenue_version SET version = version + 1 WHERE id = 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER revenue_invoices_changed AFTER INSERT OR UPDATE OR DELETE ON stripe_invoices
    FOR EACH STATEMENT EXECUTE FUNCTION revenue_version_bump();
CREATE TRIGGER revenue_subscriptions_changed AFTER INSERT OR UPDATE OR DELETE ON stripe_subscriptions
    FOR EACH STATEMENT EXECUTE FUNCTION revenue_version_bump();
CREATE TRIGGER revenue_refunds_changed AFTER INSERT OR UPDATE OR DELETE ON stripe_refunds
    FOR EACH STATEMENT EXECUTE FUNCTION revenue_version_bump();
