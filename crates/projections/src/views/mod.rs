//! The read models: one module per view, each with its subscriber (folding the log into
//! its schema's tables, `fold.rs`) and its queries; pages of lists, the statuses views
//! show, the wait for a client's consistency token, and one user's holdings (`export.rs`).

mod aside;
pub mod catalog;
pub mod consistency;
pub mod erasure;
pub mod export;
pub mod fold;
pub mod mypage;
pub mod notifications;
pub mod page;
pub mod payments;
pub mod statuses;
pub mod timeline;

use std::sync::Arc;

use crate::log::subscriber::Subscriber;

/// Every view's projection, in one place so `serve`, replay and the tests agree. The
/// settlement saga is a subscriber too, but not a view: its effects are commands, so it is
/// never rebuilt.
pub fn all() -> Vec<Arc<dyn Subscriber>> {
    vec![
        Arc::new(catalog::CatalogProjection),
        Arc::new(payments::PaymentsProjection),
        Arc::new(mypage::MyPageProjection::default()),
        Arc::new(timeline::TimelineProjection),
        Arc::new(notifications::NotificationsProjection),
    ]
}
