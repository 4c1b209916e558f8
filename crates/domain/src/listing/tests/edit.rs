//! Editing a listing: the fields that change, and who may edit it in which status.

use super::*;

#[test]
fn editing_every_field_records_each_change_from_what() {
    given(available())
        .when(edit(SELLER, Some("Floor lamp"), Some("Tall"), Some(20_000)))
        .then_expect_events(vec![edited(Edit {
            title: Some(("Desk lamp", "Floor lamp")),
            description: Some(("Warm light", "Tall")),
            price: Some((15_000, 20_000)),
        })]);
}

#[test]
fn editing_only_the_price_records_only_the_price() {
    given(available())
        .when(edit(SELLER, None, None, Some(12_000)))
        .then_expect_events(vec![edited(Edit {
            price: Some((15_000, 12_000)),
            ..Edit::default()
        })]);
}

#[test]
fn editing_only_the_title_records_only_the_title() {
    given(available())
        .when(edit(SELLER, Some("Reading lamp"), None, None))
        .then_expect_events(vec![edited(Edit {
            title: Some(("Desk lamp", "Reading lamp")),
            ..Edit::default()
        })]);
}

#[test]
fn editing_only_the_description_records_only_the_description() {
    given(available())
        .when(edit(SELLER, None, Some(""), None))
        .then_expect_events(vec![edited(Edit {
            description: Some(("Warm light", "")),
            ..Edit::default()
        })]);
}

#[test]
fn a_second_edit_starts_from_the_values_of_the_first() {
    given(available())
        .and(vec![edited(Edit {
            price: Some((15_000, 20_000)),
            ..Edit::default()
        })])
        .when(edit(SELLER, None, Some("Warm light"), Some(18_000)))
        .then_expect_events(vec![edited(Edit {
            price: Some((20_000, 18_000)),
            ..Edit::default()
        })]);
}

#[test]
fn an_edit_is_applied_to_the_listing_state() {
    let mut history = available();
    history.push(edited(Edit {
        price: Some((15_000, 20_000)),
        ..Edit::default()
    }));
    assert_eq!(current(history).price(), Some(price(20_000)));
}

#[test]
fn an_edit_that_changes_nothing_records_nothing() {
    given(available())
        .when(edit(
            SELLER,
            Some("Desk lamp"),
            Some("Warm light"),
            Some(15_000),
        ))
        .then_expect_events(vec![]);
}

#[test]
fn an_edit_without_any_field_records_nothing() {
    given(available())
        .when(edit(SELLER, None, None, None))
        .then_expect_events(vec![]);
}

#[test]
fn editing_someone_elses_listing_is_refused() {
    given(available())
        .when(edit(STRANGER, None, None, Some(1)))
        .then_expect_error(ListingError::NotYourListing);
}

#[test]
fn a_stranger_is_told_the_listing_is_not_theirs_whatever_its_status() {
    for (history, _) in unavailable() {
        given(history)
            .when(edit(STRANGER, None, None, Some(1)))
            .then_expect_error(ListingError::NotYourListing);
    }
}

#[test]
fn editing_a_listing_that_is_not_available_is_refused() {
    for (history, status) in unavailable() {
        given(history)
            .when(edit(SELLER, None, None, Some(1)))
            .then_expect_error(ListingError::NotAvailable(status));
    }
}

#[test]
fn editing_an_unknown_listing_is_refused() {
    given(vec![])
        .when(edit(SELLER, None, None, Some(1)))
        .then_expect_error(ListingError::NotFound);
}

#[test]
fn editing_a_released_listing_is_allowed_again() {
    given(released_by(REQUEST))
        .when(edit(SELLER, None, None, Some(9_000)))
        .then_expect_events(vec![edited(Edit {
            price: Some((15_000, 9_000)),
            ..Edit::default()
        })]);
}
