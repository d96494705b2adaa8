-- Stripe billing: every received webhook event (raw), customers linked to users, and the facts
-- the events carry (subscription state, invoices, refunds). The `subscriptions` row of a user
-- is projected from these facts, so the same events in any order give the same state.

CREATE TABLE stripe_events (
    id           TEXT PRIMARY KEY,
    type         TEXT NOT NULL,
    created      BIGINT NOT NULL,
    livemode     BIGINT NOT NULL,
    payload      TEXT NOT NULL,
    received_at  BIGINT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'applied', 'failed', 'ignored')),
    error        TEXT,
    customer_id  TEXT,
    user_id      TEXT,
    applied_at   BIGINT,
    attempts     BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX stripe_events_status ON stripe_events (status, created);
CREATE INDEX stripe_events_customer ON stripe_events (customer_id);
CREATE INDEX stripe_events_type ON stripe_events (type, created);

-- A user may have several customers over time (a deleted customer is replaced on next checkout).
CREATE TABLE stripe_customers (
    customer_id  TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id),
    created_at   BIGINT NOT NULL,
    deleted_at   BIGINT
);
CREATE INDEX stripe_customers_user ON stripe_customers (user_id);

-- The newest known state of each Stripe subscription. `state_at`/`state_event` order the events
-- that wrote it (event `created` in ms, then event id); a deleted subscription stays deleted.
CREATE TABLE stripe_subscriptions (
    subscription_id       TEXT PRIMARY KEY,
    customer_id           TEXT NOT NULL,
    user_id               TEXT NOT NULL,
    price_id              TEXT,
    status                TEXT NOT NULL,
    current_period_start  BIGINT NOT NULL,
    current_period_end    BIGINT NOT NULL,
    cancel_at_period_end  BIGINT NOT NULL DEFAULT 0,
    trial_end             BIGINT,
    ended_at              BIGINT,
    started_at            BIGINT NOT NULL,
    deleted               BIGINT NOT NULL DEFAULT 0,
    state_at              BIGINT NOT NULL,
    state_event           TEXT NOT NULL,
    updated_at            BIGINT NOT NULL
);
CREATE INDEX stripe_subscriptions_user ON stripe_subscriptions (user_id);

-- One row per invoice, so that invoice.paid and invoice.payment_succeeded count money once.
-- Amounts in the currency's minor unit (cents).
CREATE TABLE stripe_invoices (
    invoice_id       TEXT PRIMARY KEY,
    customer_id      TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    subscription_id  TEXT,
    status           TEXT NOT NULL,
    amount_due       BIGINT NOT NULL,
    amount_paid      BIGINT NOT NULL,
    currency         TEXT NOT NULL,
    billing_reason   TEXT,
    price_id         TEXT,
    plan_id          TEXT,
    period_start     BIGINT,
    period_end       BIGINT,
    created          BIGINT NOT NULL,
    paid_at          BIGINT,
    failed_at        BIGINT,
    attempt_count    BIGINT NOT NULL DEFAULT 0,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX stripe_invoices_user ON stripe_invoices (user_id, created);
CREATE INDEX stripe_invoices_paid ON stripe_invoices (paid_at);

-- Refunds per charge; `amount_refunded` is cumulative on Stripe's side, so the largest wins.
CREATE TABLE stripe_refunds (
    charge_id        TEXT PRIMARY KEY,
    customer_id      TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    payment_intent   TEXT,
    amount           BIGINT NOT NULL,
    amount_refunded  BIGINT NOT NULL,
    currency         TEXT NOT NULL,
    refunded         BIGINT NOT NULL DEFAULT 0,
    refunded_at      BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX stripe_refunds_user ON stripe_refunds (user_id);
