//! What the views do when an account closes: at the `AccountClosed` event, in log order,
//! each view replaces what the person typed with `[erased]`, in exactly the fields a
//! rebuild would show `[erased]` (their key is destroyed before the event is written, so a
//! rebuild opens those fields as the marker: `carrot replay --verify` finds the two equal).
//! Amounts, statuses, dates and ids stay, so the other party's history stays whole.

use carrot_domain::account::{Account, AccountEvent};
use carrot_domain::metadata::ACTOR;
use carrot_domain::schema::personal::{self, ERASED};
use cqrs_es::Aggregate;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::log::subscriber::ApplyError;
use crate::log::StoredEvent;

/// A batch cut where accounts close: the events between closings, and each closing.
pub enum Part<'a> {
    /// Events to fold as usual.
    Events(&'a [StoredEvent]),
    /// The account of this user closed here.
    Closed(Uuid),
}

/// `events` cut at each `AccountClosed`, in log order.
pub fn cut_at_closings(events: &[StoredEvent]) -> Result<Vec<Part<'_>>, ApplyError> {
    let mut parts = Vec::new();
    let mut start = 0;
    for (i, event) in events.iter().enumerate() {
        if event.aggregate_type != Account::TYPE || event.payload.is_null() {
            continue;
        }
        let AccountEvent::AccountClosed { user_id, .. } = event
            .decode::<AccountEvent>()
            .map_err(|e| ApplyError::payload(event, e))?;
        if start < i {
            parts.push(Part::Events(&events[start..i]));
        }
        parts.push(Part::Closed(user_id.as_uuid()));
        start = i + 1;
    }
    if start < events.len() {
        parts.push(Part::Events(&events[start..]));
    }
    Ok(parts)
}

/// Who typed a request's reason, when a person did: the event's actor, for the event types
/// whose reason is sealed.
pub fn reason_author(event: &StoredEvent) -> Option<Uuid> {
    if !personal::event_fields(&event.event_type).contains(&"/reason") {
        return None;
    }
    event.meta(ACTOR).and_then(|a| Uuid::try_parse(a).ok())
}

/// The catalog: the seller's titles, descriptions and categories.
pub async fn catalog(tx: &mut PgConnection, user: Uuid) -> Result<(), ApplyError> {
    sqlx::query(
        "UPDATE listings SET title = $2, description = $2, search_keys = $3,
                category = CASE WHEN category IS NULL THEN NULL ELSE $2 END
          WHERE seller_id = $1",
    )
    .bind(user)
    .bind(ERASED)
    // The keys are grams of the words erased: they go with them.
    .bind(crate::views::catalog::search::keys(ERASED, ERASED))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// MyPage: the seller's listing titles and the reasons the person wrote.
pub async fn mypage(tx: &mut PgConnection, user: Uuid) -> Result<(), ApplyError> {
    sqlx::query("UPDATE listings SET title = $2 WHERE seller_id = $1")
        .bind(user)
        .bind(ERASED)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE requests SET reason = $2 WHERE reason_by = $1")
        .bind(user)
        .bind(ERASED)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// The timelines: every personal field of the entries the person caused.
pub async fn timeline(tx: &mut PgConnection, user: Uuid) -> Result<(), ApplyError> {
    for (event_type, pointers) in personal::EVENT_FIELDS {
        for pointer in *pointers {
            let path: Vec<&str> = pointer.split('/').skip(1).collect();
            sqlx::query(
                "UPDATE entries SET detail = jsonb_set(detail, $3, to_jsonb($4::text))
                  WHERE actor = $1 AND event = $2 AND jsonb_typeof(detail #> $3) = 'string'",
            )
            .bind(user.to_string())
            .bind(event_type)
            .bind(&path)
            .bind(ERASED)
            .execute(&mut *tx)
            .await?;
        }
    }
    Ok(())
}
