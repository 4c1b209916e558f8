//! MyPage's summary kept, not counted: each user's running totals in `mypage.tallies`
//! (`user_id`, `name`, `value`), moved by exactly what each batch changes in the rows. So
//! `GET /mypage` reads a handful of rows whatever the user's history, and a rebuild fills
//! the table like any other of the view's (and `replay --verify` compares it).
//!
//! A row's contribution is what the summary counts of it (`contributions`); a batch adds
//! the contributions of each row as written and takes away those of the row as it was
//! stored. Totals that come back to zero are deleted, so the table holds the same rows
//! however the log was cut into batches.
//!
//! A rebuild sums the moves in memory across batches (`KeptMoves`) and writes them aside,
//! on a connection of its own, whenever they name many totals, and once more at the end:
//! as rows added to a table with no key yet, which the end sums into one row per total.

use std::collections::BTreeMap;

use async_trait::async_trait;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{apply_rows, ListingRow, Loading, RequestRow};
use crate::log::subscriber::{ApplyError, Filling};
use crate::log::StoredEvent;
use crate::replay::{Aside, Shadow};
use crate::views::fold::{Fold, KeyedRow};

/// A name of a total: `purchases:<status>`, `sales:<status>`, `listings:<status>`, or
/// `money:<held|incoming|refunded|paid_out|earned>`.
pub(super) type Name = String;

/// What the summary counts of a row: (user, total's name, amount).
pub(super) trait Tallied: KeyedRow {
    fn contributions(&self) -> Vec<(Uuid, Name, i64)>;
}

impl Tallied for RequestRow {
    fn contributions(&self) -> Vec<(Uuid, Name, i64)> {
        let mut out = vec![(self.buyer_id, format!("purchases:{}", self.status), 1)];
        if self.seen_by_seller {
            out.push((self.seller_id, format!("sales:{}", self.status), 1));
        }
        let price = self.price;
        match self.payment_status.as_str() {
            "captured" => {
                out.push((self.buyer_id, "money:held".into(), price));
                if self.seen_by_seller {
                    out.push((self.seller_id, "money:incoming".into(), price));
                }
            }
            "refunded" => out.push((self.buyer_id, "money:refunded".into(), price)),
            "paid_out" => {
                out.push((self.buyer_id, "money:paid_out".into(), price));
                out.push((self.seller_id, "money:earned".into(), price));
            }
            _ => {}
        }
        out
    }
}

impl Tallied for ListingRow {
    fn contributions(&self) -> Vec<(Uuid, Name, i64)> {
        vec![(self.seller_id, format!("listings:{}", self.status), 1)]
    }
}

/// The totals' changes a batch makes.
#[derive(Default)]
pub(super) struct Deltas(BTreeMap<(Uuid, Name), i64>);

impl Deltas {
    /// Adds what `fold`'s writes change: each written row's contributions, less those of
    /// the row it replaces.
    pub(super) fn add<R: Tallied>(&mut self, fold: &Fold<R>) {
        for (before, after) in fold.changes() {
            for (user, name, n) in after.contributions() {
                *self.0.entry((user, name)).or_default() += n;
            }
            for (user, name, n) in before.map(Tallied::contributions).unwrap_or_default() {
                *self.0.entry((user, name)).or_default() -= n;
            }
        }
    }

    /// The moves that move something, as columns.
    fn columns(self) -> (Vec<Uuid>, Vec<Name>, Vec<i64>) {
        let (mut users, mut names, mut values) = (Vec::new(), Vec::new(), Vec::new());
        for ((user, name), value) in self.0.into_iter().filter(|(_, v)| *v != 0) {
            users.push(user);
            names.push(name);
            values.push(value);
        }
        (users, names, values)
    }

    /// Applies the changes (the tables named unqualified: the view's schema, or a
    /// rebuild's shadow, is on `search_path`), dropping totals back at zero.
    pub(super) async fn store(self, tx: &mut PgConnection) -> Result<(), ApplyError> {
        let (users, names, values) = self.columns();
        if users.is_empty() {
            return Ok(());
        }
        // Only the totals this batch brought back to zero are deleted: most batches have
        // none, and a delete keyed by every total touched cost more than the upsert.
        let zeroed: Vec<(Uuid, String)> = sqlx::query_as(
            "WITH moved AS (
                 INSERT INTO tallies AS t (user_id, name, value)
                 SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[])
                 ON CONFLICT (user_id, name) DO UPDATE SET value = t.value + EXCLUDED.value
                 RETURNING user_id, name, value)
             SELECT user_id, name FROM moved WHERE value = 0",
        )
        .bind(&users)
        .bind(&names)
        .bind(&values)
        .fetch_all(&mut *tx)
        .await?;
        if zeroed.is_empty() {
            return Ok(());
        }
        let (users, names): (Vec<Uuid>, Vec<String>) = zeroed.into_iter().unzip();
        sqlx::query(
            "DELETE FROM tallies WHERE (user_id, name) IN
               (SELECT * FROM unnest($1::uuid[], $2::text[])) AND value = 0",
        )
        .bind(&users)
        .bind(&names)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    /// Adds the changes as rows of their own, to a rebuild's table of totals that has no
    /// key yet ([`KeptMoves`]).
    async fn append(self, tx: &mut PgConnection) -> Result<(), ApplyError> {
        let (users, names, values) = self.columns();
        if users.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO tallies (user_id, name, value)
             SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[])",
        )
        .bind(&users)
        .bind(&names)
        .bind(&values)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

/// Makes a rebuild's table of totals one row per total, the sum of the rows
/// [`Deltas::append`] added, those back at zero left out. One pass that hashes and writes
/// each total once, where upserts into the keyed table probed its index at random for
/// each (at ten million events, two thirds of a core for the whole fill).
async fn sum_totals(tx: &mut PgConnection) -> Result<(), ApplyError> {
    // The server's own work_mem: at 7.5 million totals, 64 or 256 MB was no faster than
    // the default 4 MB (14.8 and 15.5 s against 11.1-12.5 s).
    for statement in [
        "CREATE TABLE tallies_summed (LIKE tallies INCLUDING ALL)",
        "INSERT INTO tallies_summed (user_id, name, value)
         SELECT user_id, name, sum(value) FROM tallies GROUP BY user_id, name
         HAVING sum(value) <> 0",
        "DROP TABLE tallies",
        "ALTER TABLE tallies_summed RENAME TO tallies",
    ] {
        sqlx::query(statement).execute(&mut *tx).await?;
    }
    Ok(())
}

/// How many totals a rebuild keeps moving in memory before it writes them (a few
/// megabytes).
pub(super) const KEPT_TOTALS: usize = 50_000;

/// A rebuild's moves of the totals, summed across batches and written aside: no batch
/// reads the totals back, so their writes run on a connection of their own while the next
/// batches' rows are applied. The table has no key during the fill
/// (`unique_after_fill`): each write adds rows, and the end sums them ([`sum_totals`]).
pub(super) struct KeptMoves {
    moves: Deltas,
    aside: Aside,
    most: usize,
}

impl KeptMoves {
    /// Writes aside to `shadow` whenever `most` totals are moving.
    pub(super) fn new(shadow: &Shadow, most: usize) -> Self {
        KeptMoves {
            moves: Deltas::default(),
            aside: Aside::new(shadow),
            most,
        }
    }

    /// Starts writing the moves kept so far aside, if there are any.
    async fn write_aside(&mut self) -> Result<(), ApplyError> {
        if self.moves.0.is_empty() {
            return Ok(());
        }
        let moves = std::mem::take(&mut self.moves);
        self.aside
            .start(|mut tx| async move {
                moves.append(&mut tx).await?;
                Ok(tx)
            })
            .await
    }
}

#[async_trait]
impl Filling for KeptMoves {
    async fn apply(
        &mut self,
        tx: &mut PgConnection,
        events: &[StoredEvent],
    ) -> Result<(), ApplyError> {
        // Before this batch writes anything: waiting for the write before it then holds
        // no transaction id back (the log's horizon).
        if self.moves.0.len() >= self.most {
            self.write_aside().await?;
        }
        apply_rows(tx, events, &mut self.moves, Loading::CreatedBefore).await
    }

    async fn written(&mut self) -> Result<(), ApplyError> {
        self.aside.written().await
    }

    async fn finish(&mut self) -> Result<(), ApplyError> {
        self.write_aside().await?;
        self.aside
            .start(|mut tx| async move {
                sum_totals(&mut tx).await?;
                Ok(tx)
            })
            .await?;
        self.aside.written().await
    }
}
