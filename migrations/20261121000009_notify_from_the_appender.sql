-- Subscribers are woken by the appending process, which coalesces its notifications
-- (crates/projections/src/notify.rs): a NOTIFY per append statement cost PostgreSQL and
-- every listener more than the append itself under load.
DROP TRIGGER events_appended ON events;
DROP FUNCTION notify_events_appended();
