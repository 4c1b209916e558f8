//! A rebuild's fill that writes each batch's rows aside ([`Aside`]), the catalog's and the
//! timeline's: what a batch's events make is written on a connection of its own while the
//! next batch is read and folded. Erasing a closed account's fields is written aside too,
//! in log order with the rest, so the batch's own transaction only reads, and holds no row
//! a write aside could wait for while the batch waits for that write. A batch that reads
//! back what was written waits for the writes first.

use async_trait::async_trait;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::log::subscriber::{ApplyError, Filling};
use crate::log::StoredEvent;
use crate::replay::{Aside, Shadow};
use crate::views::erasure::{self, Part};

/// A view whose rebuild writes its rows aside.
#[async_trait]
pub(crate) trait WritesAside: Send {
    /// Applies events with no account closing among them, writing on `aside` (and waiting
    /// for it before reading back what an earlier batch wrote).
    async fn events(
        &mut self,
        aside: &mut Aside,
        tx: &mut PgConnection,
        events: &[StoredEvent],
    ) -> Result<(), ApplyError>;

    /// Erases what the closed account of `user` typed.
    async fn erase(tx: &mut PgConnection, user: Uuid) -> Result<(), ApplyError>;
}

/// The fill of a view that [`WritesAside`].
pub(crate) struct RowsAside<V> {
    aside: Aside,
    view: V,
}

impl<V: WritesAside + 'static> RowsAside<V> {
    /// `view`'s fill of `shadow`.
    pub(crate) fn filling(shadow: &Shadow, view: V) -> Option<Box<dyn Filling>> {
        Some(Box::new(RowsAside {
            aside: Aside::new(shadow),
            view,
        }))
    }
}

#[async_trait]
impl<V: WritesAside + 'static> Filling for RowsAside<V> {
    async fn apply(
        &mut self,
        tx: &mut PgConnection,
        events: &[StoredEvent],
    ) -> Result<(), ApplyError> {
        for part in erasure::cut_at_closings(events)? {
            match part {
                Part::Events(events) => self.view.events(&mut self.aside, tx, events).await?,
                Part::Closed(user) => {
                    self.aside
                        .start(move |mut tx| async move {
                            V::erase(&mut tx, user).await?;
                            Ok(tx)
                        })
                        .await?
                }
            }
        }
        Ok(())
    }

    async fn written(&mut self) -> Result<(), ApplyError> {
        self.aside.written().await
    }
}
