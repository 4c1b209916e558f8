-- Reconciliation against the payment gateway's own list of movements
-- (crates/projections/src/settlement/reconcile.rs): how far the periodic pass has checked,
-- and every difference it could not repair, for an operator.
CREATE TABLE settlement.reconciliation
(
    singleton     boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    checked_until timestamptz NOT NULL
);

-- A difference between the gateway and the log, one per idempotency key (a later pass
-- finding it again changes nothing). Open until an operator resolves it, saying how.
CREATE TABLE settlement.mismatches
(
    idempotency_key text        PRIMARY KEY,
    kind            text        NOT NULL,
    payment_id      uuid,
    detail          text        NOT NULL,
    found_at        timestamptz NOT NULL DEFAULT now(),
    resolved_at     timestamptz,
    resolved_by     uuid,
    resolution      text,
    CHECK ((resolved_at IS NULL) = (resolved_by IS NULL))
);
CREATE INDEX mismatches_open ON settlement.mismatches (found_at) WHERE resolved_at IS NULL;
