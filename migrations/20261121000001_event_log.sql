-- The event log: postgres-es's `events` table plus the columns that give one commit-safe
-- global order (ARCHITECTURE.md, "The event log"). postgres-es's own INSERT names only the
-- first seven columns; the rest fill themselves.
CREATE TABLE events
(
    aggregate_type  text        NOT NULL,
    aggregate_id    text        NOT NULL,
    sequence        bigint      NOT NULL CHECK (sequence >= 0),
    event_type      text        NOT NULL,
    event_version   text        NOT NULL,
    payload         jsonb       NOT NULL,
    metadata        jsonb       NOT NULL,
    global_position bigint      GENERATED ALWAYS AS IDENTITY,
    transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);

-- Readers walk the log in (transaction_id, global_position) order from a checkpoint.
CREATE UNIQUE INDEX events_log_order ON events (transaction_id, global_position);
-- `carrot events` and timelines look events up by the trade they belong to.
CREATE INDEX events_correlation ON events ((metadata ->> 'correlation_id'));

-- postgres-es's snapshot table (cqrs-es 0.5's own snapshot writer is not used: see
-- REFERENCE.md; the table is kept so the schema matches what postgres-es expects).
CREATE TABLE snapshots
(
    aggregate_type   text   NOT NULL,
    aggregate_id     text   NOT NULL,
    last_sequence    bigint NOT NULL CHECK (last_sequence >= 0),
    current_snapshot bigint NOT NULL CHECK (current_snapshot >= 0),
    payload          jsonb  NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
);

-- Wake subscription runners as soon as an append commits (they also poll as a fallback).
-- One notification per statement; Postgres folds identical ones within a transaction.
CREATE FUNCTION notify_events_appended() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    PERFORM pg_notify('carrot_events', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER events_appended
    AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION notify_events_appended();

-- One row per subscriber (projection or saga): how far it has applied the log.
-- A batch locks its row FOR UPDATE SKIP LOCKED, so any number of workers is safe.
CREATE TABLE subscription_checkpoints
(
    subscriber      text        PRIMARY KEY,
    transaction_id  xid8        NOT NULL DEFAULT '0',
    global_position bigint      NOT NULL DEFAULT 0,
    events_applied  bigint      NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    last_error_at   timestamptz
);
