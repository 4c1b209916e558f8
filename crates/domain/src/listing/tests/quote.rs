//! Quoting a listing to a buyer: the price they would pay, and who is refused.

use super::*;
use crate::listing::QuoteRefusal;

fn listing(events: Vec<ListingEvent>) -> Listing {
    let mut listing = Listing::default();
    for event in events {
        cqrs_es::Aggregate::apply(&mut listing, event);
    }
    listing
}

#[test]
fn a_buyer_pays_the_asking_price_or_a_lower_offer_never_a_higher_one() {
    let available = listing(vec![registered()]);
    let buyer = UserId::from_uuid(Uuid::from_u128(7));
    let asking = available.price().unwrap();
    assert_eq!(available.quote(buyer, None), Ok(asking));
    let lower = price(asking.as_krw() - 1);
    assert_eq!(available.quote(buyer, Some(lower)), Ok(lower));
    let higher = price(asking.as_krw() + 1);
    assert_eq!(
        available.quote(buyer, Some(higher)),
        Err(QuoteRefusal::AboveAsking(asking))
    );
}

#[test]
fn the_seller_an_unknown_listing_and_a_taken_one_are_refused_in_that_order() {
    let available = listing(vec![registered()]);
    assert_eq!(
        available.quote(available.seller_id(), None),
        Err(QuoteRefusal::OwnListing)
    );
    assert_eq!(
        Listing::default().quote(UserId::from_uuid(Uuid::from_u128(7)), None),
        Err(QuoteRefusal::NotFound)
    );
    let reserved = listing(vec![
        registered(),
        reserved(RequestId::from_uuid(Uuid::from_u128(8))),
    ]);
    assert_eq!(
        reserved.quote(UserId::from_uuid(Uuid::from_u128(7)), None),
        Err(QuoteRefusal::NotAvailable("reserved"))
    );
    // Its own seller hears "your own listing" whatever its status.
    assert_eq!(
        reserved.quote(reserved.seller_id(), None),
        Err(QuoteRefusal::OwnListing)
    );
}
