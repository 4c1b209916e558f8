-- The settlement saga (crates/projections/src/settlement/): its state, keyed by request id,
-- its deadlines, and the outbox of commands it decided on. The state and the outbox are
-- written in the saga's batch transaction, together with its checkpoint.
CREATE SCHEMA settlement;

-- What the saga knows of each recorded purchase request.
CREATE TABLE settlement.trades
(
    request_id uuid        PRIMARY KEY,
    listing_id uuid        NOT NULL,
    buyer_id   uuid        NOT NULL,
    seller_id  uuid        NOT NULL,
    payment_id uuid        NOT NULL,
    amount     bigint      NOT NULL,
    status     text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
-- "Reject every other pending request on the listing."
CREATE INDEX trades_pending ON settlement.trades (listing_id) WHERE status = 'requested';

-- Each listing's availability, as far as the saga has read.
CREATE TABLE settlement.listings
(
    listing_id uuid PRIMARY KEY,
    status     text NOT NULL,
    holder     uuid
);

-- Each payment, including those whose request was never recorded.
CREATE TABLE settlement.payments
(
    payment_id uuid   PRIMARY KEY,
    request_id uuid   NOT NULL,
    listing_id uuid   NOT NULL,
    buyer_id   uuid   NOT NULL,
    seller_id  uuid   NOT NULL,
    amount     bigint NOT NULL,
    status     text   NOT NULL,
    reason     text
);
CREATE INDEX payments_by_request ON settlement.payments (request_id);

-- Timers, in the time of the injectable clock: request expiry, automatic completion, and
-- the repairs of crash windows (a listing held for the wrong state, a capture with no
-- request, a capture with no known outcome).
CREATE TABLE settlement.deadlines
(
    request_id uuid        NOT NULL,
    kind       text        NOT NULL
        CHECK (kind IN ('expire', 'complete', 'check_listing', 'check_placement', 'reconcile')),
    due_at     timestamptz NOT NULL,
    PRIMARY KEY (request_id, kind)
);
CREATE INDEX deadlines_due ON settlement.deadlines (due_at);

-- Commands decided, by deterministic id: deciding the same one twice is a no-op.
-- `pending` ones are leased by a dispatcher (`locked_until`), executed, then `done`
-- (`outcome` says applied or why it was moot) or, after too many attempts, `dead`.
CREATE TABLE settlement.outbox
(
    command_id      text        PRIMARY KEY,
    request_id      uuid        NOT NULL,
    command         jsonb       NOT NULL,
    status          text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'dead')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    locked_until    timestamptz,
    outcome         text,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_due ON settlement.outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX outbox_dead ON settlement.outbox (updated_at) WHERE status = 'dead';

-- Wake dispatchers as soon as the saga's batch commits commands.
CREATE FUNCTION settlement.notify_outbox() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    PERFORM pg_notify('carrot_outbox', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER outbox_written
    AFTER INSERT ON settlement.outbox
    FOR EACH STATEMENT EXECUTE FUNCTION settlement.notify_outbox();
