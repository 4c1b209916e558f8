-- A dead letter an operator discarded: it never runs. Who and why are the `dead_letter`
-- aggregate's `DeadLetterDiscarded` event, in the log; the row only stops being dead.
-- Older code reads the status nowhere but in its own filters ('pending', 'dead'), so a
-- discarded row is simply neither to it.
ALTER TABLE settlement.outbox DROP CONSTRAINT IF EXISTS outbox_status_check;
ALTER TABLE settlement.outbox ADD CONSTRAINT outbox_status_check
    CHECK (status IN ('pending', 'done', 'dead', 'discarded'));
