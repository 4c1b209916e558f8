-- The log's order survives a move to another cluster (issue 15; docs/OPERATIONS.md).
--
-- An event's place in the order is its writing transaction's id plus an offset that belongs
-- to the database: `log_transaction_id()` for writers, `log_horizon()` for readers (the
-- commit-safe bound: nothing can appear below it later), both with the offset written into
-- their bodies so that every dump carries it and it costs nothing when it is 0. A cluster's
-- transaction counter is its own: restored into a new cluster (pg_dump, logical
-- replication) the counter may stand behind the log, and new events would sort before old
-- ones. Carrot checks this at every start (`postgres/log_order.rs`) and, if so, replaces the
-- three functions with an offset that puts the next transaction after the log's head,
-- recording the move in `log_moves`.
CREATE FUNCTION log_offset() RETURNS numeric
    LANGUAGE sql STABLE AS 'SELECT 0::numeric';

CREATE FUNCTION log_transaction_id() RETURNS xid8
    LANGUAGE sql VOLATILE AS 'SELECT pg_current_xact_id()';

CREATE FUNCTION log_horizon() RETURNS xid8
    LANGUAGE sql STABLE AS 'SELECT pg_snapshot_xmin(pg_current_snapshot())';

ALTER TABLE events ALTER COLUMN transaction_id SET DEFAULT log_transaction_id();

-- Every re-basing, for operators: when, from which cluster, where the log's head stood and
-- what the offset became.
CREATE TABLE log_moves
(
    moved_at          timestamptz NOT NULL DEFAULT now(),
    system_identifier text,
    cluster_next_xid  numeric     NOT NULL,
    log_head          numeric     NOT NULL,
    head_position     bigint,
    offset_before     numeric     NOT NULL,
    offset_after      numeric     NOT NULL
);
