-- Crypto-shredding (docs/DESIGN.md, "Erasure"). One key per person, never in the log: the
-- event store seals what a person typed with it, every reader opens it, and closing the
-- account destroys it (the row stays, key NULL, so no new key is ever made for them).
CREATE TABLE personal_keys
(
    user_id      uuid        PRIMARY KEY,
    key          bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    destroyed_at timestamptz,
    CHECK ((key IS NULL) = (destroyed_at IS NOT NULL)),
    CHECK (key IS NULL OR length(key) = 32)
);

-- A closed account is a tombstone: its username replaced by `#` and the hex SHA-256 of
-- the name (no valid username starts with `#`, and signing up under the old name is
-- refused), no password, no display name. `closed_by` is who closed it (the person or an
-- operator); `close_recorded_at` is set once the listings are withdrawn and the
-- AccountClosed event is in the log, which the workers finish when that failed or a
-- process died between (they look at the closings of the last day).
ALTER TABLE users
    ADD COLUMN closed_at         timestamptz,
    ADD COLUMN closed_by         uuid,
    ADD COLUMN close_recorded_at timestamptz;
CREATE INDEX users_closed ON users (closed_at) WHERE closed_at IS NOT NULL;

-- Who wrote a request's reason, when a person did (a seller's rejection): closing their
-- account erases it in the view, as a rebuild would.
ALTER TABLE mypage.requests ADD COLUMN reason_by uuid;
-- As a rebuild sets it: the actor of the rejection that wrote the reason, when a person.
UPDATE mypage.requests r
   SET reason_by = (e.metadata ->> 'actor')::uuid
  FROM events e
 WHERE r.reason IS NOT NULL
   AND e.aggregate_type = 'purchase_request' AND e.aggregate_id = r.request_id::text
   AND e.event_type = 'PurchaseRequestRejected'
   AND e.metadata ->> 'actor' ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';
