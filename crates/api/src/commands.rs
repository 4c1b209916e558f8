//! Running a command: execute through cqrs-es, retry lost optimistic-concurrency races
//! inside the server, and answer with the consistency token of the command's last event.

use std::collections::HashMap;
use std::time::Duration;

use carrot_domain::DomainError;
use carrot_projections::log::last_event_of;
use carrot_projections::Checkpoint;
use cqrs_es::{Aggregate, AggregateError};
use postgres_es::PostgresCqrs;
use rand::Rng;
use sqlx::PgPool;

use crate::error::ApiError;

/// How many times a command is tried when another writer got to the aggregate first.
const ATTEMPTS: u32 = 8;

/// Executes `command` on aggregate `aggregate_id`; returns the consistency token.
pub async fn execute<A>(
    cqrs: &PostgresCqrs<A>,
    pool: &PgPool,
    aggregate_id: &str,
    command: A::Command,
    metadata: HashMap<String, String>,
) -> Result<Checkpoint, ApiError>
where
    A: Aggregate,
    A::Command: Clone,
    A::Error: DomainError + Send + Sync + 'static,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match cqrs
            .execute_with_metadata(aggregate_id, command.clone(), metadata.clone())
            .await
        {
            Ok(()) => break,
            Err(AggregateError::AggregateConflict) if attempt < ATTEMPTS => {
                // Another command appended first: reload and decide again, after a jittered
                // pause so the racers spread out.
                let ceiling = 1u64 << attempt.min(6);
                let pause = rand::thread_rng().gen_range(0..=ceiling);
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            Err(e) => return Err(command_error(e)),
        }
    }
    let mut conn = pool.acquire().await?;
    last_event_of(&mut conn, A::TYPE, aggregate_id)
        .await?
        .ok_or_else(|| ApiError::Internal("a command left no event behind".into()))
}

/// A domain refusal as an API error.
pub fn refusal<E: DomainError>(e: &E) -> ApiError {
    ApiError::Domain {
        kind: e.kind(),
        code: e.code(),
        detail: e.to_string(),
    }
}

fn command_error<E>(error: AggregateError<E>) -> ApiError
where
    E: DomainError + Send + Sync + 'static,
{
    match error {
        AggregateError::UserError(e) => refusal(&e),
        AggregateError::AggregateConflict => ApiError::Conflict {
            code: "concurrent_update",
            detail: "too many concurrent changes to the same item; try again".into(),
        },
        AggregateError::DatabaseConnectionError(e)
        | AggregateError::DeserializationError(e)
        | AggregateError::UnexpectedError(e) => ApiError::Internal(e),
    }
}
