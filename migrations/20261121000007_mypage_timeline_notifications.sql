-- The read side of MyPage (MISSION.md 11-12). Each view belongs to one subscriber and
-- lives in its schema; rows are written only by that subscriber's batches, and every
-- column comes from the events, so a rebuild from position zero gives the same rows.

-- `mypage`: each user's purchases and sales, and (by aggregation at read time) money.
CREATE SCHEMA mypage;

CREATE TABLE mypage.requests
(
    request_id      uuid        PRIMARY KEY,
    listing_id      uuid        NOT NULL,
    buyer_id        uuid        NOT NULL,
    seller_id       uuid        NOT NULL,
    price           bigint      NOT NULL,
    status          text        NOT NULL,
    reason          text,
    payment_id      uuid        NOT NULL,
    payment_status  text        NOT NULL,
    -- False for requests that never reached the seller: declined, or abandoned after a
    -- capture whose answer was lost. Sellers never see unpaid or unplaced requests.
    seen_by_seller  boolean     NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    -- Sequences of the last request and payment events applied: guards against repeats.
    version         bigint      NOT NULL,
    payment_version bigint      NOT NULL
);
CREATE INDEX requests_by_buyer ON mypage.requests (buyer_id, created_at DESC, request_id DESC);
CREATE INDEX requests_by_seller ON mypage.requests (seller_id);
CREATE INDEX requests_by_listing ON mypage.requests (listing_id, created_at DESC);

CREATE TABLE mypage.listings
(
    listing_id uuid        PRIMARY KEY,
    seller_id  uuid        NOT NULL,
    title      text        NOT NULL,
    price      bigint      NOT NULL,
    status     text        NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    version    bigint      NOT NULL
);
CREATE INDEX listings_by_seller ON mypage.listings (seller_id, created_at DESC, listing_id DESC);

-- `timeline`: every event of a trade, for the request's detail page.
CREATE SCHEMA timeline;

CREATE TABLE timeline.entries
(
    request_id      uuid        NOT NULL,
    transaction_id  bigint      NOT NULL,
    global_position bigint      NOT NULL,
    event           text        NOT NULL,
    at              timestamptz NOT NULL,
    actor           text,
    detail          jsonb       NOT NULL,
    PRIMARY KEY (request_id, transaction_id, global_position)
);

-- `notifications`: what each user is told, one row per (event, recipient); its id is the
-- event's place in the log, so it is the same after a rebuild.
CREATE SCHEMA notifications;

CREATE TABLE notifications.notifications
(
    user_id         uuid        NOT NULL,
    transaction_id  bigint      NOT NULL,
    global_position bigint      NOT NULL,
    request_id      uuid        NOT NULL,
    kind            text        NOT NULL,
    status          text        NOT NULL,
    message         text        NOT NULL,
    at              timestamptz NOT NULL,
    PRIMARY KEY (user_id, transaction_id, global_position)
);
