-- Keep a default on `aggregate_snapshots.state_version` after all (`..._50` dropped it): a
-- process of the release before it, still running during a rolling deploy, inserts
-- snapshots without naming the column, and the NOT NULL would fail its whole append (events
-- and snapshot are one statement). Such a snapshot is of state version 1, which is what
-- every aggregate's state still is.
ALTER TABLE aggregate_snapshots ALTER COLUMN state_version SET DEFAULT 1;
