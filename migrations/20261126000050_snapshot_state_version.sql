-- A snapshot records the version of the aggregate state it holds (`StateVersion` in the
-- domain's schema module). The store reads only snapshots of the version the code holds:
-- a snapshot of an older state whose JSON still parses would otherwise load wrong state.
-- Every snapshot taken so far holds version 1 of its aggregate's state.
ALTER TABLE aggregate_snapshots ADD COLUMN state_version integer NOT NULL DEFAULT 1;
ALTER TABLE aggregate_snapshots ALTER COLUMN state_version DROP DEFAULT;
