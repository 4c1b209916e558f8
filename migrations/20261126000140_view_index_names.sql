-- A rebuild (`carrot replay`) used to copy a view's tables with CREATE TABLE ... (LIKE ...
-- INCLUDING ALL), which names each copied index after its columns; after the swap the
-- live view's indexes no longer had the names these migrations gave them, and a later
-- migration naming one would fail. Rebuilds now keep the live names
-- (crates/projections/src/replay/shadow.rs). This gives back their names to the indexes
-- of views rebuilt before; where nothing was rebuilt, each statement does nothing.
ALTER INDEX IF EXISTS catalog.listings_status_created_at_listing_id_idx RENAME TO listings_newest;
ALTER INDEX IF EXISTS catalog.listings_search_keys_idx RENAME TO listings_search;
ALTER INDEX IF EXISTS mypage.listings_seller_id_created_at_listing_id_idx RENAME TO listings_by_seller;
ALTER INDEX IF EXISTS mypage.requests_buyer_id_created_at_request_id_idx RENAME TO requests_by_buyer;
ALTER INDEX IF EXISTS mypage.requests_listing_id_created_at_idx RENAME TO requests_by_listing;
ALTER INDEX IF EXISTS mypage.requests_seller_id_idx RENAME TO requests_by_seller;
ALTER INDEX IF EXISTS notifications.notifications_request_id_idx RENAME TO notifications_by_request;
ALTER INDEX IF EXISTS payments.payments_request_id_idx RENAME TO payments_by_request;
