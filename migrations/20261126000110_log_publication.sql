-- The event log as a stream for other services (search, recommendations, fraud,
-- analytics), by logical decoding: the publication Debezium's PostgreSQL connector (with
-- the pgoutput plugin) reads. The log is append-only, so only inserts are published.
-- Decoding needs `wal_level = logical` on the server; without it this publication is
-- simply unused (docs/SCALING.md, "The log as a stream").
CREATE PUBLICATION carrot_events FOR TABLE public.events WITH (publish = 'insert');
