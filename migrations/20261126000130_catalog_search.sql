-- Catalog search (issue 22): the keys each listing is found by, computed by the catalog's
-- projection (crates/projections/src/views/catalog/search.rs), and a GIN index over them
-- for what buyers search: available listings.
--
-- Rows written before this migration have no keys, so a search finds them only within the
-- newest-first walk it starts with: rebuild the catalog once after rolling out across
-- this migration (`carrot replay catalog`, docs/OPERATIONS.md).
ALTER TABLE catalog.listings ADD COLUMN search_keys text[] NOT NULL DEFAULT '{}';

CREATE INDEX listings_search ON catalog.listings USING gin (search_keys)
    WHERE status = 'available';
