//! A small market several tests share: one seller, four listings, two buyers, a trade in
//! every outcome.

use carrot_domain::trade::Party;
use carrot_domain::{Actor, ListingId, UserId};

use super::support::*;

// ---------------------------------------------------------------------------------------
// A small market used by several tests.
// ---------------------------------------------------------------------------------------

/// One seller with four listings and two buyers, with trades in every outcome.
pub struct Market {
    pub seller: UserId,
    pub buyer: UserId,
    pub other: UserId,
    pub listings: [ListingId; 4],
    /// r1 accepted, r2 completed and paid out, r3 rejected and refunded, r4 cancelled by the
    /// buyer and refunded, r5 payment failed, r6 cancelled by the seller after acceptance
    /// and refunded, r7 expired and refunded.
    pub r: [Deal; 7],
}

/// Appends the market's history: listings registered at minutes 0-3 (newest last).
pub async fn market(log: &mut EventLog) -> Market {
    let (seller, buyer, other) = (UserId::new(), UserId::new(), UserId::new());
    let [l1, l2, l3, l4] = [(); 4].map(|()| ListingId::new());
    let r = [
        Deal::new(l1, seller, buyer, 10_000),
        Deal::new(l2, seller, buyer, 20_000),
        Deal::new(l1, seller, other, 10_000),
        Deal::new(l3, seller, buyer, 5_000),
        Deal::new(l3, seller, buyer, 5_000),
        Deal::new(l4, seller, other, 7_000),
        Deal::new(l4, seller, other, 8_000),
    ];
    let [r1, r2, r3, r4, r5, r6, r7] = r;
    let (s, b, o, system) = (user(seller), user(buyer), user(other), Actor::System);
    log.append_all(vec![
        (registered(l1, seller, "Desk lamp", 10_000, 0), s),
        (registered(l2, seller, "Bicycle", 20_000, 1), s),
        (registered(l3, seller, "Kettle", 5_000, 2), s),
        (registered(l4, seller, "Chair", 7_000, 3), s),
        (edited(l4, "Oak chair", "Solid oak", 7_000, 4), s),
        (r1.captured(10), b),
        (r1.requested(10), b),
        (r3.captured(11), o),
        (r3.requested(11), o),
        // The same instant as r1: purchases order ties by request id.
        (r2.captured(10), b),
        (r2.requested(10), b),
        (r2.reserved(13), s),
        (r2.accepted(13), s),
        (r2.completed(false, 14), b),
        (r2.sold(14), b),
        (r2.paid_out(15), system),
        (r1.reserved(16), s),
        (r1.accepted(16), s),
        (r3.rejected(system, Some("listing_reserved"), 17), system),
        (r3.refunded(18), system),
        (r4.captured(19), b),
        (r4.requested(19), b),
        (r4.cancelled(Party::Buyer, false, 20), b),
        (r4.refunded(21), system),
        (r5.declined("card_declined", 22), b),
        (r5.payment_failed("card_declined", 22), b),
        (withdrawn(l3, 23), s),
        (r6.captured(24), o),
        (r6.requested(24), o),
        (r6.reserved(25), s),
        (r6.accepted(25), s),
        (r6.cancelled(Party::Seller, true, 26), s),
        (r6.released(26), s),
        (r6.refunded(27), system),
        (
            edited(l4, "Oak chair", "Solid oak, one scratch", 8_000, 28),
            s,
        ),
        (r7.captured(29), o),
        (r7.requested(29), o),
        (r7.expired(30), system),
        (r7.refunded(31), system),
    ])
    .await;
    Market {
        seller,
        buyer,
        other,
        listings: [l1, l2, l3, l4],
        r,
    }
}

/// The market plus a capture that timed out, was reconciled, and whose request was
/// abandoned and refunded: every kind of event the views read.
pub async fn busy_log(log: &mut EventLog) -> Market {
    let market = market(log).await;
    let late = Deal::new(market.listings[3], market.seller, market.buyer, 8_000);
    log.append_all(vec![
        (late.timed_out(40), user(market.buyer)),
        (late.captured(41), Actor::System),
        (late.abandoned(42), Actor::System),
        (late.refunded(43), Actor::System),
    ])
    .await;
    market
}
