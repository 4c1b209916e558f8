-- Write-side guards that are not events.

-- "A buyer has at most one open request per listing": the slot for (listing, buyer) is
-- claimed before the payment is captured. A later request may take the slot over once the
-- request holding it is closed (or never got recorded); see crates/api/src/trade/slots.rs.
CREATE TABLE purchase_request_slots
(
    listing_id uuid        NOT NULL,
    buyer_id   uuid        NOT NULL,
    request_id uuid        NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (listing_id, buyer_id)
);

-- Idempotency keys of POST requests, per user: the first response is replayed for a
-- repeated key with the same body (crates/api/src/idempotency.rs).
CREATE TABLE idempotency_keys
(
    user_id         uuid        NOT NULL,
    key             text        NOT NULL,
    request_hash    text        NOT NULL,
    state           text        NOT NULL CHECK (state IN ('in_flight', 'done')),
    response_status smallint,
    response_body   bytea,
    response_headers jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);
