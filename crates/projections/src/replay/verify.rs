//! Verifying a view: rebuilt aside, never past the live checkpoint, and compared with the
//! live view table by table in a read-only snapshot taken while both stand at one
//! checkpoint, so the live view is paused only to bring the copy level with it.

use std::time::Instant;

use serde_json::Value;
use sqlx::PgConnection;

use super::shadow::{fill, live_checkpoint, live_checkpoint_in, prepare, total_events, Filled};
use super::{Difference, Exclusive, Progress, Rebuilt, ReplayError, Side};
use crate::log::checkpoint::Paused;
use crate::log::subscriber::Subscriber;
use crate::postgres::{quote_ident, Db};

/// Rebuilds `view` aside and reports every row it disagrees with the live view on.
/// Refused while another rebuild or verification of it runs.
pub async fn verify(
    pool: &Db,
    view: &dyn Subscriber,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<(Rebuilt, Vec<Difference>), ReplayError> {
    let exclusive = Exclusive::take(pool, view).await?;
    let verified = verify_alone(pool, view, progress).await;
    exclusive.release().await;
    verified
}

async fn verify_alone(
    pool: &Db,
    view: &dyn Subscriber,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<(Rebuilt, Vec<Difference>), ReplayError> {
    let started = Instant::now();
    let live = view.name();
    let shadow = format!("{live}__verify");
    // Its shadow is compared and dropped: the indexes no write needs are never built.
    let tables = prepare(pool, live, &shadow, view.unique_after_fill())
        .await?
        .tables;
    let total = total_events(pool).await?;
    let mut state = Filled::default();
    // Never past the live checkpoint (which may not move at all if no runner runs).
    loop {
        let target = live_checkpoint(pool, live).await?;
        let before = state.applied;
        fill(
            pool,
            view,
            &shadow,
            &mut state,
            Some(target),
            &mut |applied| {
                progress(Progress {
                    view: live,
                    applied,
                    total,
                    elapsed: started.elapsed(),
                })
            },
        )
        .await?;
        if state.applied == before {
            break;
        }
    }
    // Pause the live view only to bring the copy level with it, and take a snapshot in
    // which both stand at one checkpoint; then let it go on. The pause holds no transaction
    // id (`Paused`), and the comparison runs in that read-only snapshot, which holds no lock
    // either, so no other subscriber (the saga included) waits at any point.
    let pause = Paused::take(pool, live).await?;
    let target = live_checkpoint(pool, live).await?;
    let levelled = fill(pool, view, &shadow, &mut state, Some(target), &mut |_| {}).await;
    let snapshot = async {
        let mut snapshot = pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *snapshot)
            .await?;
        let seen = live_checkpoint_in(&mut snapshot, live).await?;
        Ok::<_, sqlx::Error>((snapshot, seen))
    }
    .await;
    pause.release().await;
    levelled?;
    let (mut snapshot, seen) = snapshot?;
    if seen != target {
        // Cannot happen while paused; if it did, the comparison would report differences
        // that are not there.
        return Err(ReplayError::Moved { target, seen });
    }
    let mut differences = Vec::new();
    for table in &tables {
        differences.extend(compare(&mut snapshot, live, &shadow, table).await?);
    }
    snapshot.rollback().await?;
    sqlx::query(&format!(
        "DROP SCHEMA IF EXISTS {} CASCADE",
        quote_ident(&shadow)
    ))
    .execute(pool)
    .await?;
    Ok((
        Rebuilt {
            view: live,
            events: state.applied,
            checkpoint: state.checkpoint,
            elapsed: started.elapsed(),
        },
        differences,
    ))
}

/// The rows of `table` on one side only, both ways.
pub(crate) async fn compare(
    tx: &mut PgConnection,
    live: &str,
    shadow: &str,
    table: &str,
) -> Result<Vec<Difference>, sqlx::Error> {
    let (l, s, t) = (quote_ident(live), quote_ident(shadow), quote_ident(table));
    let mut out = Vec::new();
    for (side, from, minus) in [(Side::LiveOnly, &l, &s), (Side::RebuiltOnly, &s, &l)] {
        let rows: Vec<Value> = sqlx::query_scalar(&format!(
            "SELECT to_jsonb(d) FROM (SELECT * FROM {from}.{t} EXCEPT ALL SELECT * FROM {minus}.{t}) d"
        ))
        .fetch_all(&mut *tx)
        .await?;
        out.extend(rows.into_iter().map(|row| Difference {
            table: format!("{live}.{table}"),
            side,
            row,
        }));
    }
    Ok(out)
}
