-- Idempotency keys keep only final answers (crates/api/src/idempotency/). A transient
-- refusal (429, 409 concurrent_update, any 5xx) leaves its key 'retryable': free for the
-- client's retry, still bound to its first request's fingerprint.
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_state_check;
ALTER TABLE idempotency_keys ADD CONSTRAINT idempotency_keys_state_check
    CHECK (state IN ('in_flight', 'retryable', 'done'));

-- Transient refusals kept as final answers so far become retryable.
UPDATE idempotency_keys
   SET state = 'retryable', response_status = NULL, response_body = NULL,
       response_headers = NULL
 WHERE state = 'done'
   AND (response_status = 429
        OR (response_status = 409
            AND position(convert_to('"code":"concurrent_update"', 'UTF8') IN response_body) > 0));

-- /auth/* answers (they hold tokens) are no longer stored: drop those kept so far, the
-- only keys of the nil user.
DELETE FROM idempotency_keys WHERE user_id = '00000000-0000-0000-0000-000000000000';
