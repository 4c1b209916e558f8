//! Notifications: the caller's list, newest first, and a live stream (server-sent events).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::{Json, Router};
use carrot_domain::UserId;
use carrot_projections::postgres::Db;
use carrot_projections::views::notifications::{self, NotificationView, NOTIFICATIONS};
use carrot_projections::views::page::Page;
use carrot_projections::Checkpoint;
use futures_util::stream::{self, Stream};
use tokio::sync::broadcast;

use crate::error::{ApiError, Problem};
use crate::extract::{
    await_views, AuthUser, ConsistencyToken, Cursor, Freshness, PageParams, Paging, StreamUser,
};
use crate::live::Wake;
use crate::openapi::vocabulary::Unauthenticated;
use crate::state::AppState;

/// The notification routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/notifications", get(list))
        .route("/notifications/stream", get(stream_route))
}

/// A notification's id sent back as a cursor. Ids are stored as `bigint`, so a transaction
/// id beyond it is no id of ours (it used to be dropped silently, answering the first page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NotificationCursor(Checkpoint);

impl Cursor for NotificationCursor {
    fn parse(raw: &str) -> Option<Self> {
        raw.parse::<Checkpoint>()
            .ok()
            .filter(|id| i64::try_from(id.transaction_id).is_ok())
            .map(NotificationCursor)
    }

    const REFUSAL: &'static str = "is not a notification id this API returned";
}

/// The caller's notifications, newest first.
///
/// `cursor` is the last id of the previous page.
#[utoipa::path(
    get,
    path = "/notifications",
    tag = "notifications",
    operation_id = "list_notifications",
    params(PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of the caller's notifications.",
         body = Page<NotificationView>),
        (status = 401, response = Unauthenticated),
        (status = 422, description = "`validation_failed` (with `errors`: cursor, limit, query, \
         or a malformed `X-Consistency-Token`).",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip_all, fields(user = %user.user_id))]
async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    token: ConsistencyToken,
    page: Paging<NotificationCursor>,
) -> Result<(Freshness, Json<Page<NotificationView>>), ApiError> {
    let before = page.cursor.map(|c| c.0);
    let (freshness, views) = await_views(&state, &[NOTIFICATIONS], token).await?;
    let items = notifications::newest(views, user.user_id, before, page.limit + 1).await?;
    let page = Page::cut(items, page.limit, |n| n.id.clone());
    Ok((freshness, Json(page)))
}

/// Server-sent events: `event: notification`, `id: <notification id>`, the notification as
/// JSON. With `Last-Event-ID` (a reconnecting client) it resumes after that id; without,
/// it starts with what happens next.
#[utoipa::path(
    get,
    path = "/notifications/stream",
    tag = "notifications",
    operation_id = "stream_notifications",
    summary = "The caller's notifications as they happen (server-sent events).",
    params(
        ("Last-Event-ID" = Option<String>, Header, description = "The id of the last \
        notification received: the stream resumes after it (browsers send it when they \
        reconnect; `0.0` replays every notification kept). Without it, the stream starts \
        with what happens next."),
        ("access_token" = Option<String>, Query, description = "The access token, for a \
        browser's `EventSource`, which cannot send an Authorization header. This route \
        only; prefer the header wherever it can be sent (a URL may be logged by proxies)."),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Server-sent events, one per notification: \
         `event: notification`, `id: <notification id>`, `data: <the notification as JSON, a \
         NotificationView>`; comments keep the connection alive.",
         body = String, content_type = "text/event-stream",
         example = "event: notification\nid: 812.3\ndata: {\"id\":\"812.3\",\"request_id\":\"0190f5c2-7b1e-7c3a-9d4e-5f6a7b8c9d0e\",\"kind\":\"request_accepted\",\"status\":\"accepted\",\"message\":\"The seller accepted your request.\",\"at\":\"2026-05-01T09:30:00.123456Z\"}\n\n"),
        (status = 401, response = Unauthenticated),
        (status = 422, description = "`validation_failed`: a malformed `Last-Event-ID`.",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip_all, fields(user = %user.user_id))]
async fn stream_route(
    State(state): State<AppState>,
    StreamUser(user): StreamUser,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty());
    let after = match resume {
        Some(raw) => match NotificationCursor::parse(raw) {
            Some(NotificationCursor(id)) => Some(id),
            None => {
                let refusal = NotificationCursor::REFUSAL;
                return Err(ApiError::invalid("Last-Event-ID", refusal));
            }
        },
        None => notifications::latest_id(&state.pool, user.user_id).await?,
    };
    let live = Live {
        pool: state.pool.clone(),
        user: user.user_id,
        after,
        wakes: state.hub.subscribe(),
        pending: Vec::new(),
    };
    Ok(Sse::new(stream::unfold(live, Live::next)).keep_alive(KeepAlive::default()))
}

/// One client's stream: what it has been sent, and what is due next.
struct Live {
    pool: Db,
    user: UserId,
    after: Option<Checkpoint>,
    wakes: broadcast::Receiver<Wake>,
    pending: Vec<NotificationView>,
}

/// How often a stream looks without being woken.
const LOOK_EVERY: Duration = Duration::from_secs(5);

impl Live {
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Live)> {
        loop {
            if !self.pending.is_empty() {
                let notification = self.pending.remove(0);
                self.after = notification.id.parse().ok().or(self.after);
                let event = Event::default()
                    .event("notification")
                    .id(notification.id.clone())
                    .json_data(&notification)
                    .unwrap_or_else(|_| Event::default().comment("unserializable"));
                return Some((Ok(event), self));
            }
            match notifications::since(&self.pool, self.user, self.after, 100).await {
                Ok(found) if !found.is_empty() => {
                    self.pending = found;
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "a notification stream could not read"),
            }
            self.wait().await?;
        }
    }

    /// Until this user may have something new; `None` when the process shuts down.
    async fn wait(&mut self) -> Option<()> {
        let deadline = tokio::time::sleep(LOOK_EVERY);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                wake = self.wakes.recv() => match wake {
                    Ok(Wake::User(user)) if user == self.user.as_uuid() => return Some(()),
                    Ok(Wake::Everyone) | Err(broadcast::error::RecvError::Lagged(_)) => return Some(()),
                    Ok(Wake::User(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                () = &mut deadline => return Some(()),
            }
        }
    }
}
