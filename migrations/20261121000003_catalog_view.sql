-- The catalog view. Every projection owns one schema named after its subscriber, and its
-- handlers write unqualified table names under `SET LOCAL search_path`, so a rebuild can
-- fill a shadow schema with the same code and swap it in.
CREATE SCHEMA catalog;

CREATE TABLE catalog.listings
(
    listing_id  uuid        PRIMARY KEY,
    seller_id   uuid        NOT NULL,
    title       text        NOT NULL,
    description text        NOT NULL,
    price       bigint      NOT NULL,
    category    text,
    status      text        NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    -- The aggregate sequence of the last event applied: a guard against applying twice.
    version     bigint      NOT NULL
);

-- Newest first within a status, with a unique tie-break for cursor pagination.
CREATE INDEX listings_newest ON catalog.listings (status, created_at DESC, listing_id DESC);
