//! What a command's run tells the store and what the store leaves for it, through a
//! task-local scope around the cqrs-es call: whether the aggregate is assumed fresh, a
//! follow-up to append with it (`follow_up.rs`), and the receipts of what was appended.

use std::any::Any;
use std::cell::RefCell;

use crate::log::Checkpoint;
use crate::write_side::follow_up::{Follow, Followed};

/// What the last commit of the running task left: its consistency token and the aggregate
/// as the command left it (the write side reads it back after `execute_with_metadata`).
pub struct Receipt {
    /// The place of the aggregate's last event, or `None` when it has none.
    pub token: Option<Checkpoint>,
    /// The aggregate after the command (`A`, boxed).
    pub aggregate: Box<dyn Any + Send>,
    /// Whether the command appended events (false: it was a no-op).
    pub appended: bool,
}

/// What a command's run tells the store, and what the store leaves for it.
struct Scope {
    /// The command creates its aggregate under a fresh id: skip the load, start empty. If
    /// the id was taken after all, the append conflicts on sequence 1 and the caller runs
    /// the command again without this.
    fresh: bool,
    receipt: Option<Receipt>,
    /// Another aggregate the commit starts (`follow_up.rs`), and what its events left.
    follow: Option<Follow>,
    followed: Option<Followed>,
}

tokio::task_local! {
    static SCOPE: RefCell<Scope>;
}

/// Runs `command` (a future calling into a framework over a [`Store`]) and returns what its
/// commit left, if it reached one. `fresh`: the aggregate is assumed not to exist yet.
pub async fn with_receipt<T>(
    fresh: bool,
    command: impl std::future::Future<Output = T>,
) -> (T, Option<Receipt>) {
    let (out, receipt, _) = with_follow_up(fresh, None, command).await;
    (out, receipt)
}

/// As [`with_receipt`], the commit also appending what `follow` decides (`follow_up.rs`);
/// the last is what the follow-up's append left, if its events were appended.
pub async fn with_follow_up<T>(
    fresh: bool,
    follow: Option<Follow>,
    command: impl std::future::Future<Output = T>,
) -> (T, Option<Receipt>, Option<Followed>) {
    let scope = RefCell::new(Scope {
        fresh,
        receipt: None,
        follow,
        followed: None,
    });
    SCOPE
        .scope(scope, async {
            let out = command.await;
            let (receipt, followed) = SCOPE.with(|s| {
                let mut s = s.borrow_mut();
                (s.receipt.take(), s.followed.take())
            });
            (out, receipt, followed)
        })
        .await
}

pub(crate) fn leave(receipt: Receipt, followed: Option<Followed>) {
    let _ = SCOPE.try_with(|s| {
        let mut s = s.borrow_mut();
        s.receipt = Some(receipt);
        s.followed = followed;
    });
}

pub(crate) fn follow() -> Option<Follow> {
    SCOPE.try_with(|s| s.borrow().follow.clone()).ok().flatten()
}

pub(crate) fn assumed_fresh() -> bool {
    SCOPE.try_with(|s| s.borrow().fresh).unwrap_or(false)
}
