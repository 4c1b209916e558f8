-- Revocations are read in commit order, as the event log is: `revoked_at` is when the
-- revoking transaction began, so a process polling by time could pass one that committed
-- late and never see it. `revoked_xid` is the revoking transaction's id in the log's order
-- (`log_transaction_id()`, offset for moves between clusters); each process reads those at
-- or above the horizon it last saw (`log_horizon()`: every transaction below it has ended).
ALTER TABLE sessions ADD COLUMN revoked_xid xid8;
CREATE INDEX sessions_revoked_order ON sessions (revoked_xid) WHERE revoked_xid IS NOT NULL;
