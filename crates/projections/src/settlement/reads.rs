//! What the saga reads of a batch: the events of the three aggregates it follows, each with
//! when it was appended, and the rows of its state those events touch (loaded at once).

use carrot_domain::listing::{Listing, ListingEvent};
use carrot_domain::payment::{Payment, PaymentEvent};
use carrot_domain::purchase_request::{PurchaseRequest, PurchaseRequestEvent};
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;

use super::state::Keys;
use crate::log::subscriber::ApplyError;
use crate::log::StoredEvent;

/// An event the saga reads.
pub(super) enum Event {
    Listing(ListingEvent),
    Request(PurchaseRequestEvent),
    Payment(PaymentEvent),
}

/// The batch's events the saga reads, each with when it was appended.
pub(super) fn decode(events: &[StoredEvent]) -> Result<Vec<(Event, DateTime<Utc>)>, ApplyError> {
    let mut decoded = Vec::with_capacity(events.len());
    for event in events {
        let payload = |e| ApplyError::payload(event, e);
        let read = match event.aggregate_type.as_str() {
            Listing::TYPE => Event::Listing(event.decode().map_err(payload)?),
            PurchaseRequest::TYPE => Event::Request(event.decode().map_err(payload)?),
            Payment::TYPE => Event::Payment(event.decode().map_err(payload)?),
            _ => continue,
        };
        decoded.push((read, event.recorded_at));
    }
    Ok(decoded)
}

/// The rows the batch's events touch. Rows their events create are not looked up: a
/// creating event comes first in its aggregate's stream.
pub(super) fn keys(events: &[(Event, DateTime<Utc>)]) -> Keys {
    let mut listings = Vec::new();
    let mut trades = Vec::new();
    let mut keys = Keys::default();
    for (event, _) in events {
        match event {
            Event::Listing(event) => {
                let creates = matches!(event, ListingEvent::ListingRegistered { .. });
                listings.push((event.listing_id().as_uuid(), creates));
                if let ListingEvent::ListingWithdrawn { listing_id, .. } = event {
                    keys.pending_on.push(listing_id.as_uuid());
                }
            }
            Event::Request(event) => {
                let trade = event.trade();
                let creates = matches!(event, PurchaseRequestEvent::PurchaseRequested { .. });
                trades.push((trade.request_id.as_uuid(), creates));
                listings.push((trade.listing_id.as_uuid(), false));
                if let PurchaseRequestEvent::PurchaseRequestAccepted { .. } = event {
                    keys.pending_on.push(trade.listing_id.as_uuid());
                }
            }
            Event::Payment(event) => {
                trades.push((event.trade().request_id.as_uuid(), false));
                keys.payments.push(event.payment_id().as_uuid());
            }
        }
    }
    keys.listings = crate::views::fold::to_load(listings);
    keys.trades = crate::views::fold::to_load(trades);
    keys
}
