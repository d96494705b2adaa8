-- A number that changes, in the same transaction, whenever a fact the revenue reports read
-- changes (paid invoices, how subscriptions ended, refunds): a ledger built for one version
-- is reused until the next.

CREATE TABLE revenue_version (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    version  INTEGER NOT NULL
);
INSERT INTO revenue_version (id, version) VALUES (1, 0);

CREATE TRIGGER revenue_invoices_insert AFTER INSERT ON stripe_invoices
BEGIN UPDATE revenue_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER revenue_invoices_update AFTER UPDATE ON stripe_invoices
BEGIN UPDATE revenue_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER revenue_invoices_delete AFTER DELETE ON stripe_invoices
BEGIN UPDATE revenue_version SET version = version + 1 WHERE id = 1; END;

CREATE TRIGGER revenue_subscriptions_insert AFTER INSERT ON stripe_subscriptions
BEGIN UPDATE revenue_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER revenue_subscriptions_update AFTER UPDATE ON stripe_subscriptions
BEGIN UPDATE revenue_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER revenue_subscriptions_delete AFTER DELETE ON stripe_subscriptions
BEGIN UPDATE revenue_version SET version = version + 1 WHERE id = 1; END;

CREATE TRIGGER revenue_refunds_insert AFTER INSERT ON stripe_refunds
BEGIN UPDATE revenue_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER revenue_refunds_update AFTER UPDATE ON stripe_refunds
BEGIN UPDATE revenue_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER revenue_refunds_delete AFTER DELETE ON stripe_refunds
BEGIN UPDATE revenue_version SET version = version + 1 WHERE id = 1; END;
