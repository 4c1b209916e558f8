-- MyPage's summary kept as running totals by its projection (views/mypage/tallies.rs),
-- instead of counted at every read: `GET /mypage` reads a handful of rows whatever the
-- user's history. `name` is `purchases:<status>`, `sales:<status>`, `listings:<status>` or
-- `money:<held|incoming|refunded|paid_out|earned>`; a total back at zero has no row.
CREATE TABLE mypage.tallies
(
    user_id uuid   NOT NULL,
    name    text   NOT NULL,
    value   bigint NOT NULL,
    PRIMARY KEY (user_id, name)
);

-- The totals of the rows already there, by the same rules the projection adds them with.
INSERT INTO mypage.tallies (user_id, name, value)
SELECT user_id, name, sum(value)::bigint FROM (
    SELECT buyer_id AS user_id, 'purchases:' || status AS name, 1::bigint AS value
      FROM mypage.requests
    UNION ALL
    SELECT seller_id, 'sales:' || status, 1 FROM mypage.requests WHERE seen_by_seller
    UNION ALL
    SELECT seller_id, 'listings:' || status, 1 FROM mypage.listings
    UNION ALL
    SELECT buyer_id, 'money:held', price FROM mypage.requests WHERE payment_status = 'captured'
    UNION ALL
    SELECT seller_id, 'money:incoming', price FROM mypage.requests
     WHERE payment_status = 'captured' AND seen_by_seller
    UNION ALL
    SELECT buyer_id, 'money:refunded', price FROM mypage.requests WHERE payment_status = 'refunded'
    UNION ALL
    SELECT buyer_id, 'money:paid_out', price FROM mypage.requests WHERE payment_status = 'paid_out'
    UNION ALL
    SELECT seller_id, 'money:earned', price FROM mypage.requests WHERE payment_status = 'paid_out'
) contributions
GROUP BY user_id, name
HAVING sum(value) <> 0;
