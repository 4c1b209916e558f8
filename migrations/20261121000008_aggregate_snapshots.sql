-- Snapshots of aggregates (crates/projections/src/store.rs), one per aggregate, replacing
-- postgres-es's table, which nothing writes: cqrs-es 0.5's snapshot writer applies new
-- events twice (perf/REFERENCE.md). A snapshot holds the aggregate as its last event left
-- it, and where that event is in the log; a command loads it and the events after it.
DROP TABLE snapshots;

CREATE TABLE aggregate_snapshots
(
    aggregate_type  text   NOT NULL,
    aggregate_id    text   NOT NULL,
    sequence        bigint NOT NULL CHECK (sequence > 0),
    payload         jsonb  NOT NULL,
    transaction_id  xid8   NOT NULL,
    global_position bigint NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id)
);
