//! The listing's commands as strategies, and the invariants it keeps after every step.

use carrot_domain::listing::fields::{Description, ListingTitle};
use carrot_domain::listing::{Listing, ListingCommand, ListingStatus};

use super::*;

pub(crate) fn register_listing() -> impl Strategy<Value = ListingCommand> {
    let title = select(vec!["Desk lamp", "Bike"]).prop_map(|t| ListingTitle::parse(t).unwrap());
    let description = select(vec!["", "Warm light"]).prop_map(|d| Description::parse(d).unwrap());
    (
        select(vec![LISTING, LISTING, OTHER_LISTING]),
        select(vec![SELLER, SELLER, STRANGER]),
        title,
        description,
        price(),
    )
        .prop_map(|(listing_id, seller_id, title, description, price)| {
            ListingCommand::RegisterListing {
                listing_id,
                seller_id,
                title,
                description,
                price,
                category: None,
            }
        })
}

pub(crate) fn listing_command() -> impl Strategy<Value = ListingCommand> {
    let request = || select(vec![REQUEST, RequestId::from_uuid(Uuid::from_u128(2))]);
    let edit = (
        user(),
        option::of(select(vec!["Desk lamp", "Lamp"])),
        option::of(select(vec!["", "Warm light"])),
        option::of(price()),
    )
        .prop_map(
            |(actor, title, description, price)| ListingCommand::EditListing {
                actor,
                title: title.map(|t| ListingTitle::parse(t).unwrap()),
                description: description.map(|d| Description::parse(d).unwrap()),
                price,
            },
        );
    prop_oneof![
        1 => register_listing(),
        3 => edit,
        1 => user().prop_map(|actor| ListingCommand::WithdrawListing { actor }),
        3 => request().prop_map(|request_id| ListingCommand::ReserveListing { request_id }),
        2 => request().prop_map(|request_id| ListingCommand::ReleaseListing { request_id }),
        2 => request().prop_map(|request_id| ListingCommand::MarkListingSold { request_id }),
    ]
}

pub(crate) fn listing_invariants(step: Step<'_, Listing>) -> Result<(), TestCaseError> {
    use ListingStatus::*;
    let (before, after) = (step.before.status(), step.after.status());
    if matches!(before, Sold(_) | Withdrawn) {
        prop_assert_eq!(after, before, "a sold or withdrawn listing changed");
    }
    if before != Unregistered {
        prop_assert_eq!(step.after.seller_id(), step.before.seller_id());
    }
    if after != before {
        match after {
            Reserved(request) => {
                prop_assert_eq!(before, Available, "reserved from {:?}", before);
                let reserve = ListingCommand::ReserveListing {
                    request_id: request,
                };
                prop_assert_eq!(step.command, &reserve);
            }
            Sold(request) => prop_assert_eq!(before, Reserved(request), "sold to another"),
            Available => prop_assert!(matches!(before, Unregistered | Reserved(_))),
            Withdrawn => prop_assert_eq!(before, Available),
            Unregistered => prop_assert!(false, "a listing was unregistered"),
        }
    }
    if let ListingCommand::EditListing { actor, .. } | ListingCommand::WithdrawListing { actor } =
        step.command
    {
        if !step.events.is_empty() {
            prop_assert_eq!(*actor, step.before.seller_id(), "not the seller");
            prop_assert_eq!(before, Available);
        }
    }
    Ok(())
}
