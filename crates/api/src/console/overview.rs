//! The console's overview: every subscription's lag, the log horizon's age, events
//! appended and trades settled per minute, the breaker, the saga's outbox and dead letters,
//! and reconciliation; live, by server-sent events once a second (a small inline script
//! updates the numbers and draws the two charts; nothing is fetched from elsewhere).

use std::convert::Infallible;
use std::fmt::Write;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::Response;
use futures_util::stream::{self, Stream};
use serde::Serialize;

use super::html;
use super::session::ConsoleAdmin;
use crate::error::ApiError;
use crate::state::AppState;

/// How far back the per-minute figures look (events in log order, newest first): past
/// this many events a minute, they undercount.
const RECENT_EVENTS: i64 = 10_000;

/// One subscriber's progress, as the overview shows it.
#[derive(Serialize)]
struct Lag {
    name: String,
    lag_events: i64,
    lag_ms: i64,
    failing: bool,
}

/// What the overview shows, read at once.
#[derive(Serialize)]
struct Snapshot {
    breaker: &'static str,
    outbox_pending: i64,
    dead_letters: i64,
    stuck: i64,
    mismatches: i64,
    horizon_age_s: f64,
    events_last_minute: i64,
    settled_last_minute: i64,
    subscribers: Vec<Lag>,
}

async fn snapshot(state: &AppState) -> Result<Snapshot, ApiError> {
    let progress = state.progress.get(&state.pool).await?;
    let mismatches = carrot_projections::settlement::mismatches::open_count(&state.pool).await?;
    let horizon_age_s = crate::metrics::horizon_age_seconds(&state.pool).await?;
    let (events_last_minute, settled_last_minute): (i64, i64) = sqlx::query_as(
        "SELECT count(*),
                count(*) FILTER (WHERE event_type IN
                    ('PaymentPaidOut', 'PaymentRefunded', 'PaymentSettledOutside'))
           FROM (SELECT event_type, recorded_at FROM events
                  ORDER BY transaction_id DESC, global_position DESC LIMIT $1) recent
          WHERE recorded_at > now() - interval '1 minute'",
    )
    .bind(RECENT_EVENTS)
    .fetch_one(&state.pool)
    .await?;
    Ok(Snapshot {
        breaker: state.breaker.state().name(),
        outbox_pending: progress.outbox_pending,
        dead_letters: progress.dead_letters,
        stuck: progress.stuck,
        mismatches,
        horizon_age_s,
        events_last_minute,
        settled_last_minute,
        subscribers: progress
            .subscribers
            .iter()
            .map(|s| Lag {
                name: s.name.clone(),
                lag_events: s.lag_events,
                lag_ms: s.lag_ms,
                failing: s.last_error.is_some(),
            })
            .collect(),
    })
}

/// The script that keeps the page live: it reads the stream, writes each number into the
/// element named after it, and draws the last ten minutes of the two per-minute figures.
const LIVE: &str = r#"
(function(){
  var series={events_last_minute:[],settled_last_minute:[]};
  function draw(name){
    var s=series[name],svg=document.getElementById('chart-'+name);if(!svg)return;
    var max=Math.max.apply(null,s.concat([1])),pts=s.map(function(v,i){return (i*5)+','+(40-38*v/max)}).join(' ');
    svg.querySelector('polyline').setAttribute('points',pts);
  }
  var es=new EventSource('/console/overview/stream');
  es.addEventListener('overview',function(e){
    var d=JSON.parse(e.data);
    Object.keys(d).forEach(function(k){var el=document.getElementById('v-'+k);if(el&&typeof d[k]!=='object')el.textContent=d[k];});
    d.subscribers.forEach(function(s){
      var a=document.getElementById('lag-events-'+s.name),b=document.getElementById('lag-ms-'+s.name);
      if(a)a.textContent=s.lag_events;if(b)b.textContent=s.lag_ms;
    });
    Object.keys(series).forEach(function(k){series[k].push(d[k]);if(series[k].length>120)series[k].shift();draw(k);});
    document.getElementById('live').textContent='live';
  });
  es.onerror=function(){document.getElementById('live').textContent='reconnecting';};
})();
"#;

fn card(name: &str, label: &str, value: impl std::fmt::Display) -> String {
    format!(
        "<div class=\"card\">{}<b id=\"v-{name}\">{}</b></div>",
        html::escape(label),
        html::escape(&value.to_string())
    )
}

fn chart(name: &str, label: &str) -> String {
    format!(
        "<div class=\"card\">{}<svg id=\"chart-{name}\" viewBox=\"0 0 600 40\" \
         preserveAspectRatio=\"none\" width=\"100%\" height=\"40\" role=\"img\">\
         <polyline fill=\"none\" stroke=\"#ff6f0f\" stroke-width=\"2\" points=\"\"/></svg></div>",
        html::escape(label)
    )
}

/// `GET /console`.
pub async fn show(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
) -> Result<Response, ApiError> {
    let s = snapshot(&state).await?;
    let mut body = String::from("<p class=\"muted\">Updates every second: <span id=\"live\">connecting</span></p><div class=\"cards\">");
    body.push_str(&card("breaker", "Payment gateway breaker", s.breaker));
    body.push_str(&card(
        "outbox_pending",
        "Saga commands waiting",
        s.outbox_pending,
    ));
    body.push_str(&card("stuck", "Failing past the alert", s.stuck));
    body.push_str(&card("dead_letters", "Dead letters", s.dead_letters));
    body.push_str(&card(
        "mismatches",
        "Reconciliation mismatches open",
        s.mismatches,
    ));
    body.push_str(&card(
        "horizon_age_s",
        "Log horizon age (s)",
        format!("{:.1}", s.horizon_age_s),
    ));
    body.push_str(&card(
        "events_last_minute",
        "Events appended, last minute",
        s.events_last_minute,
    ));
    body.push_str(&card(
        "settled_last_minute",
        "Trades settled, last minute",
        s.settled_last_minute,
    ));
    body.push_str("</div><div class=\"cards\">");
    body.push_str(&chart("events_last_minute", "Events per minute"));
    body.push_str(&chart("settled_last_minute", "Trades settled per minute"));
    body.push_str("</div><h2>Subscriptions</h2>");
    let rows = s.subscribers.iter().map(|l| {
        let name = html::escape(&l.name);
        vec![
            name.clone(),
            format!("<span id=\"lag-events-{name}\">{}</span>", l.lag_events),
            format!("<span id=\"lag-ms-{name}\">{}</span>", l.lag_ms),
            if l.failing {
                "<span class=\"bad\">failing</span>".to_owned()
            } else {
                "<span class=\"ok\">ok</span>".to_owned()
            },
        ]
    });
    body.push_str(&html::table(
        &["subscriber", "lag (events)", "lag (ms)", "state"],
        rows,
    ));
    let _ = write!(body, "<script>{LIVE}</script>");
    Ok(admin.page("Overview", &body))
}

/// `GET /console/overview/stream`: the overview's figures once a second, while the
/// session lasts.
pub async fn stream(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let session = admin.user.session_id;
    let ticks = stream::unfold(state, move |state| async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        // Signed out (or the account closed) meanwhile: the stream ends.
        if !state.sessions.is_live(session).await.unwrap_or(false) {
            return None;
        }
        let event = match snapshot(&state).await {
            Ok(s) => Event::default()
                .event("overview")
                .data(serde_json::to_string(&s).unwrap_or_default()),
            Err(_) => Event::default().comment("unavailable"),
        };
        Some((Ok(event), state))
    });
    Sse::new(ticks).keep_alive(KeepAlive::default())
}
