-- Events a subscriber could not apply, for issue 14: a poison event (a payload its code
-- cannot read) is held here with its error, with every later event of its stream (held
-- behind it, `error` NULL, so the stream is applied in order), while the subscriber goes on
-- with every other stream. An operator's word (`retry_requested`), or a runner starting
-- (new code deployed), applies them again; rows leave only once applied.
CREATE TABLE subscription_quarantine
(
    subscriber      text        NOT NULL,
    transaction_id  xid8        NOT NULL,
    global_position bigint      NOT NULL,
    aggregate_type  text        NOT NULL,
    aggregate_id    text        NOT NULL,
    sequence        bigint      NOT NULL,
    event_type      text        NOT NULL,
    error           text,
    attempts        integer     NOT NULL DEFAULT 1,
    retry_requested boolean     NOT NULL DEFAULT false,
    quarantined_at  timestamptz NOT NULL DEFAULT now(),
    last_attempt_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subscriber, transaction_id, global_position)
);

-- The runner's batch asks, per event, whether its stream is held.
CREATE INDEX subscription_quarantine_stream
    ON subscription_quarantine (subscriber, aggregate_type, aggregate_id);
