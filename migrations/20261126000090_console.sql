-- The operator console (crates/api/src/console/). What operators reveal of people's
-- personal data is audited here: who, when, which trade.
CREATE TABLE operator_audit
(
    audit_id    bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    operator_id uuid        NOT NULL,
    action      text        NOT NULL,
    subject     text        NOT NULL,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX operator_audit_by_subject ON operator_audit (subject, at);

-- Finding a trade's saga steps and notifications by its request.
CREATE INDEX outbox_by_request ON settlement.outbox (request_id);
CREATE INDEX notifications_by_request ON notifications.notifications (request_id);
