-- The saga's outbox, for issue 14.
-- `lease`: the token of the dispatcher that holds a row; only its holder settles it, so a
--   dispatcher whose lease ran out mid-call cannot bury or clear another's work.
-- `version`: the oldest dispatcher version that can read the command; a dispatcher leaves
--   newer ones for a newer dispatcher (a rolling deploy) instead of burying them.
-- `failing_since`: when its current run of failures began: a transfer the gateway cannot
--   answer waits out the outage (no attempt limit) and is reported once it has waited long.
ALTER TABLE settlement.outbox
    ADD COLUMN lease         uuid,
    ADD COLUMN version       integer NOT NULL DEFAULT 1,
    ADD COLUMN failing_since timestamptz;

-- Dispatchers are woken by the statement that enqueues (outbox.rs), not by a trigger: a
-- trigger is not copied with the table when the saga is rebuilt aside and swapped in.
DROP TRIGGER outbox_written ON settlement.outbox;
DROP FUNCTION settlement.notify_outbox();

-- Backoff and leases are reckoned in the clock the processes are given (the database's
-- time in production, a test's clock in tests), bound as a parameter. A command decided
-- is due at once whatever that clock says.
ALTER TABLE settlement.outbox ALTER COLUMN next_attempt_at SET DEFAULT '-infinity';
