//! The views, fed real domain events through the runner: what each event does to their
//! rows and queries, that applying events twice or in bigger batches changes nothing, and
//! that a projection added later catches up on its own.

mod market;
mod support;

mod catalog;
mod every_view;
mod mypage;
mod notifications;
mod payments;
mod rebuilds;
mod search;
mod timeline;
