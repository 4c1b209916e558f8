//! Rebuilds from the console: start what `carrot replay` does for one view (rebuild it and
//! swap it in, or `--verify`: rebuild it aside and count the rows that differ), then watch
//! it live (events done of the total, the rate, the time left) and its result. A rebuild
//! runs as a task of the process that started it, and its progress lives there (`Jobs`).

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::Response;
use axum::Form;
use carrot_projections::replay::{self, Progress};
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use uuid::Uuid;

use super::html::{self, escape};
use super::session::{record, see_other, ConsoleAdmin};
use crate::error::ApiError;
use crate::state::AppState;

/// Whether a rebuild runs, or how it ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum JobState {
    Running,
    Done,
    Failed,
}

impl JobState {
    fn name(self) -> &'static str {
        match self {
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
        }
    }
}

/// Where one rebuild stands.
#[derive(Clone)]
pub struct Job {
    view: &'static str,
    verify: bool,
    applied: u64,
    total: u64,
    elapsed_s: f64,
    state: JobState,
    /// What it ended with: the events and rate, the differences found, or why it failed.
    result: Option<String>,
}

impl Job {
    fn percent(&self) -> u64 {
        match self.state {
            JobState::Done => 100,
            _ => (self.applied * 100)
                .checked_div(self.total)
                .unwrap_or(0)
                .min(99),
        }
    }

    fn rate(&self) -> f64 {
        self.applied as f64 / self.elapsed_s.max(1e-3)
    }

    fn left_s(&self) -> f64 {
        self.total.saturating_sub(self.applied) as f64 / self.rate().max(1e-3)
    }
}

/// This process's rebuilds, by id (the most recent 50 are kept).
#[derive(Default)]
pub struct Jobs(Mutex<HashMap<Uuid, Job>>);

impl Jobs {
    fn update(&self, id: Uuid, change: impl FnOnce(&mut Job)) {
        let mut jobs = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(job) = jobs.get_mut(&id) {
            change(job);
        }
    }

    fn get(&self, id: Uuid) -> Option<Job> {
        let jobs = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        jobs.get(&id).cloned()
    }

    fn start(&self, id: Uuid, job: Job) {
        let mut jobs = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if jobs.len() >= 50 {
            if let Some(oldest) = jobs
                .iter()
                .find(|(_, j)| j.state != JobState::Running)
                .map(|(k, _)| *k)
            {
                jobs.remove(&oldest);
            }
        }
        jobs.insert(id, job);
    }
}

/// The start form's fields.
#[derive(Deserialize)]
pub struct Start {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    confirm: String,
    view: String,
    #[serde(default)]
    verify: String,
}

/// `GET /console/rebuilds`: the form.
pub async fn list(admin: ConsoleAdmin) -> Response {
    let mut options = String::new();
    for view in carrot_projections::views::all() {
        let _ = write!(options, "<option>{}</option>", escape(view.name()));
    }
    let body = format!(
        "<div class=\"box\"><form method=\"post\" action=\"/console/rebuilds\">{}\
         <p><label>View <select name=\"view\">{options}</select></label></p>\
         <p><label><input type=\"checkbox\" name=\"verify\" value=\"yes\"> Only verify: rebuild \
         it aside and count the rows that differ from the live view</label></p>\
         <p><label><input type=\"checkbox\" name=\"confirm\" value=\"yes\" required> Rebuild \
         it from the first event of the log (the live view serves meanwhile)</label></p>\
         <p><button type=\"submit\">Start</button></p></form></div>",
        html::csrf_field(&admin.csrf)
    );
    admin.page("Rebuild a view", &body)
}

/// `POST /console/rebuilds`: starts one, and shows it.
pub async fn start(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Form(form): Form<Start>,
) -> Result<Response, ApiError> {
    if let Some(refused) = admin.refusal(&form.csrf, Some(&form.confirm)) {
        return Ok(refused);
    }
    let view = carrot_projections::views::all()
        .into_iter()
        .find(|v| v.name() == form.view)
        .ok_or_else(|| ApiError::invalid("view", "no such view"))?;
    let verify = form.verify == "yes";
    let action = if verify { "verify" } else { "rebuild" };
    let operator = admin.user.user_id.as_uuid();
    let id = Uuid::new_v4();
    let jobs = state.rebuilds.clone();
    jobs.start(
        id,
        Job {
            view: view.name(),
            verify,
            applied: 0,
            total: 0,
            elapsed_s: 0.0,
            state: JobState::Running,
            result: None,
        },
    );
    let pool = state.pool.clone();
    // Recorded in the task, before it runs: a rebuild never runs unrecorded, whenever the
    // client hangs up.
    tokio::spawn(async move {
        let subject = format!("view:{}", view.name());
        if let Err(e) = record(&pool, operator, action, subject).await {
            jobs.update(id, |job| {
                job.state = JobState::Failed;
                job.result = Some(format!("not started: it could not be recorded ({e})"));
            });
            return;
        }
        let progress = &mut |p: Progress| {
            jobs.update(id, |job| {
                (job.applied, job.total) = (p.applied, p.total);
                job.elapsed_s = p.elapsed.as_secs_f64();
            })
        };
        let outcome = if verify {
            replay::verify(&pool, view.as_ref(), progress)
                .await
                .map(|(r, found)| (r, Some(found.len())))
        } else {
            replay::rebuild(&pool, view.as_ref(), progress)
                .await
                .map(|r| (r, None))
        };
        jobs.update(id, |job| match outcome {
            Ok((rebuilt, differences)) => {
                job.state = JobState::Done;
                (job.applied, job.total) = (rebuilt.events, rebuilt.events);
                job.elapsed_s = rebuilt.elapsed.as_secs_f64();
                job.result = Some(match differences {
                    Some(0) => format!("verified: the rebuild equals the live view ({} events, {:.0}/s)", rebuilt.events, rebuilt.rate()),
                    Some(n) => format!("verified: {n} row(s) differ from the live view; `carrot replay --verify {}` lists them", job.view),
                    None => format!("rebuilt and swapped in: {} events, {:.0}/s", rebuilt.events, rebuilt.rate()),
                });
            }
            Err(e) => {
                job.state = JobState::Failed;
                job.result = Some(e.to_string());
            }
        });
    });
    Ok(see_other(&format!("/console/rebuilds/{id}")))
}

/// The script that follows a rebuild: it writes each figure into the element named after it.
const LIVE: &str = r#"
(function(){
  var es=new EventSource(location.pathname+'/stream');
  es.addEventListener('progress',function(e){
    var d=JSON.parse(e.data);
    Object.keys(d).forEach(function(k){var el=document.getElementById('r-'+k);if(el)el.textContent=d[k];});
    document.getElementById('r-bar').value=d.percent;
    if(d.state!=='running')es.close();
  });
})();
"#;

/// What the page and the stream show of a job.
fn figures(job: &Job) -> serde_json::Value {
    serde_json::json!({
        "percent": job.percent(),
        "applied": job.applied,
        "total": job.total,
        "rate": format!("{:.0}", job.rate()),
        "left": format!("{:.1}", job.left_s()),
        "state": job.state.name(),
        "result": job.result.clone().unwrap_or_default(),
    })
}

/// `GET /console/rebuilds/{id}`.
pub async fn show(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let job = state.rebuilds.get(id).ok_or(ApiError::NotFound)?;
    let f = figures(&job);
    let text = |k: &str| escape(&f[k].to_string().replace('"', ""));
    let body = format!(
        "<div class=\"box\"><p>{} of <b>{}</b></p>\
         <p><progress id=\"r-bar\" max=\"100\" value=\"{}\" style=\"width:100%\"></progress></p>\
         <p><span id=\"r-percent\">{}</span> %: <span id=\"r-applied\">{}</span> of \
         <span id=\"r-total\">{}</span> events, <span id=\"r-rate\">{}</span> events/s, \
         <span id=\"r-left\">{}</span> s left. State: <b id=\"r-state\">{}</b></p>\
         <p id=\"r-result\">{}</p></div><script>{LIVE}</script>",
        if job.verify {
            "Verifying"
        } else {
            "Rebuilding"
        },
        escape(job.view),
        job.percent(),
        text("percent"),
        text("applied"),
        text("total"),
        text("rate"),
        text("left"),
        text("state"),
        text("result"),
    );
    Ok(admin.page("Rebuild", &body))
}

/// `GET /console/rebuilds/{id}/stream`: the job's figures every 200 ms until it ends.
pub async fn stream(
    State(state): State<AppState>,
    _admin: ConsoleAdmin,
    Path(id): Path<Uuid>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let jobs: Arc<Jobs> = state.rebuilds.clone();
    let ticks = stream::unfold((jobs, false), move |(jobs, ended)| async move {
        if ended {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let job = jobs.get(id)?;
        let ended = job.state != JobState::Running;
        let event = Event::default()
            .event("progress")
            .data(figures(&job).to_string());
        Some((Ok(event), (jobs, ended)))
    });
    Sse::new(ticks).keep_alive(KeepAlive::default())
}
