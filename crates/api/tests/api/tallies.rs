//! MyPage's summary is kept as running totals (views/mypage/tallies.rs): after trades ending
//! every way, each user's summary equals what counting their rows says, and the totals
//! equal a rebuild's, whatever the batches were and however often the rebuild wrote its
//! totals aside.

use carrot_projections::replay;
use carrot_projections::views::mypage::MyPageProjection;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp, User};

/// The summary counted from MyPage's rows, in `GET /mypage`'s shape (the query the totals
/// replaced, kept here as the oracle).
async fn counted(app: &TestApp, user: &User) -> Value {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT 'purchases', status, count(*) FROM mypage.requests WHERE buyer_id = $1::uuid GROUP BY status
         UNION ALL
         SELECT 'sales', status, count(*) FROM mypage.requests
          WHERE seller_id = $1::uuid AND seen_by_seller GROUP BY status
         UNION ALL
         SELECT 'listings', status, count(*) FROM mypage.listings WHERE seller_id = $1::uuid GROUP BY status
         UNION ALL
         SELECT 'money', 'held', coalesce(sum(price), 0)::bigint FROM mypage.requests
          WHERE buyer_id = $1::uuid AND payment_status = 'captured'
         UNION ALL
         SELECT 'money', 'refunded', coalesce(sum(price), 0)::bigint FROM mypage.requests
          WHERE buyer_id = $1::uuid AND payment_status = 'refunded'
         UNION ALL
         SELECT 'money', 'paid_out', coalesce(sum(price), 0)::bigint FROM mypage.requests
          WHERE buyer_id = $1::uuid AND payment_status = 'paid_out'
         UNION ALL
         SELECT 'money', 'earned', coalesce(sum(price), 0)::bigint FROM mypage.requests
          WHERE seller_id = $1::uuid AND payment_status = 'paid_out'
         UNION ALL
         SELECT 'money', 'incoming', coalesce(sum(price), 0)::bigint FROM mypage.requests
          WHERE seller_id = $1::uuid AND payment_status = 'captured' AND seen_by_seller",
    )
    .bind(&user.id)
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    let mut summary = json!({});
    for (side, key, n) in rows {
        summary[side][key] = json!(n);
    }
    summary
}

/// Every count of `shown` (the API's summary, zeros included) agrees with `counted`.
fn agrees(shown: &Value, counted: &Value) {
    for side in ["purchases", "sales", "listings", "money"] {
        for (key, n) in shown[side].as_object().unwrap() {
            let want = counted[side][key].as_i64().unwrap_or(0);
            assert_eq!(n.as_i64(), Some(want), "{side}.{key}: {shown} vs {counted}");
        }
    }
}

#[tokio::test]
async fn the_kept_summary_equals_counting_and_a_rebuild() {
    let app = spawn_app().await;
    let seller = app.signup("seller").await;
    let buyer = app.signup("buyer").await;
    let mut requests = Vec::new();
    for (i, title) in ["Desk", "Lamp", "Chair", "Shelf", "Rug", "Clock"]
        .iter()
        .enumerate()
    {
        let (listing, _) = app
            .register_listing(&seller, title, 10_000 * (i as i64 + 1))
            .await;
        requests.push((listing.clone(), app.place_request(&buyer, &listing).await));
    }
    let id = |n: usize| requests[n].1.request_id.clone();
    app.act_ok(&seller, &id(0), "accept", "accepted").await;
    app.act_ok(&buyer, &id(0), "complete", "completed").await;
    app.act_ok(&seller, &id(1), "reject", "rejected").await;
    app.act_ok(&seller, &id(2), "accept", "accepted").await;
    app.act_ok(&buyer, &id(2), "cancel", "cancelled").await;
    app.act_ok(&buyer, &id(3), "cancel", "cancelled").await;
    app.act_ok(&seller, &id(4), "accept", "accepted").await;
    let withdraw = format!("/listings/{}", requests[5].0);
    assert!(app
        .delete(&seller, &withdraw)
        .send()
        .await
        .unwrap()
        .status()
        .is_success());
    app.register_listing(&seller, "Unsold", 5_000).await;
    app.settle().await;

    for user in [&seller, &buyer] {
        let shown = app.read(user, "/mypage").await;
        agrees(&shown, &counted(&app, user).await);
    }
    let seller_view = app.read(&seller, "/mypage").await;
    assert_eq!(seller_view["sales"]["completed"], 1);
    assert_eq!(seller_view["money"]["earned"], 10_000);
    assert_eq!(seller_view["money"]["incoming"], 50_000, "the accepted one");
    assert_eq!(
        seller_view["listings"]["available"], 4,
        "rejected, released, cancelled, unsold"
    );
    crate::common::trades::assert_views_equal_a_rebuild(&app.db.pool).await;
    // A rebuild that writes its totals aside (KeptMoves: here at every batch and at the
    // end) ends the same.
    let aside = MyPageProjection::keeping(1);
    let (_, differences) = replay::verify(&app.db.pool, &aside, &mut |_| {})
        .await
        .unwrap();
    assert!(differences.is_empty(), "{differences:?}");
}
