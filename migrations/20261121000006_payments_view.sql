-- The payments view, kept by the `payments` subscriber: each payment once its capture has
-- an outcome, with the trade it belongs to (so reads can check who may see it).
CREATE SCHEMA payments;

CREATE TABLE payments.payments
(
    payment_id  uuid        PRIMARY KEY,
    request_id  uuid        NOT NULL,
    listing_id  uuid        NOT NULL,
    buyer_id    uuid        NOT NULL,
    seller_id   uuid        NOT NULL,
    amount      bigint      NOT NULL,
    status      text        NOT NULL,
    reason      text,
    captured_at timestamptz,
    settled_at  timestamptz,
    updated_at  timestamptz NOT NULL,
    -- The payment's sequence of the last event applied: a guard against applying twice.
    version     bigint      NOT NULL
);
CREATE INDEX payments_by_request ON payments.payments (request_id);
