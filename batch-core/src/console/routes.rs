//! The console's URLs and what each does: pages read the repository through the
//! explorer's queries, actions go through [`JobOperator`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Extension, Form, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{NaiveDate, NaiveDateTime};

use crate::console::ConsoleConfig;
use crate::console::assets;
use crate::console::pages::{self, ExecutionView, FilterForm, JobRow};
use crate::console::prometheus;
use crate::console::security::{self, Access, Secrets, Session};
use crate::execution::{BatchStatus, JobExecution};
use crate::job::Job;
use crate::launch::JobLauncher;
use crate::operator::{JobOperator, OperatorError};
use crate::repository::{ExecutionQuery, JobRepository, JobStatistics, RepositoryError};

/// Executions on one page of `/executions`.
const PAGE: usize = 25;
/// Executions per job behind the sparkline and last duration of `/`.
const RECENT: usize = 20;

/// What every request works with.
pub(crate) struct AppState {
    pub(crate) config: ConsoleConfig,
    pub(crate) secrets: Arc<Secrets>,
    operator: JobOperator,
    repository: Arc<dyn JobRepository>,
    job: Option<Arc<Job>>,
    /// The restarts this process runs, and the stop signal they share.
    runs: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    stop: crate::step::StopSignal,
}

impl AppState {
    pub(crate) fn new(
        config: ConsoleConfig,
        secrets: Secrets,
        launcher: JobLauncher,
        job: Option<Arc<Job>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            repository: launcher.repository().clone(),
            runs: std::sync::Mutex::new(Vec::new()),
            stop: launcher.stop_signal(),
            operator: JobOperator::new(launcher),
            secrets: Arc::new(secrets),
            job,
            config,
        })
    }
}

impl AppState {
    fn track(&self, run: tokio::task::JoinHandle<()>) {
        let mut runs = self.runs.lock().expect("runs lock");
        runs.retain(|r| !r.is_finished());
        runs.push(run);
    }

    /// Asks the restarts still running here to stop at their next chunk boundary and
    /// waits for them to end STOPPED, so that none is left STARTED by the exit.
    pub(crate) async fn stop_runs(&self) {
        let runs: Vec<_> = std::mem::take(&mut *self.runs.lock().expect("runs lock"));
        if runs.iter().any(|r| !r.is_finished()) {
            self.stop.stop();
        }
        for run in runs {
            let _ = run.await;
        }
    }
}

/// Every route, behind the security middleware.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(jobs))
        .route("/executions", get(executions))
        .route("/executions/{id}", get(execution))
        .route("/executions/{id}/{action}", post(act))
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/assets/console.css", get(css))
        .route("/assets/console.js", get(js))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.secrets.clone(),
            security::guard,
        ))
        .with_state(state)
}

fn page(status: StatusCode, html: String) -> Response {
    (status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response()
}

fn failure(e: RepositoryError) -> Response {
    let report = crate::error::Error::new(e).report();
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        pages::message("The job repository failed", &report),
    )
}

async fn not_found() -> Response {
    page(
        StatusCode::NOT_FOUND,
        pages::message("Not found", "There is no such page in the console."),
    )
}

async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        assets::CSS,
    )
        .into_response()
}

async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        assets::JS,
    )
        .into_response()
}

async fn jobs(State(state): State<Arc<AppState>>) -> Response {
    let outcome: Result<Vec<JobRow>, RepositoryError> = async {
        let stats = JobStatistics::by_job(&state.repository.execution_statistics().await?);
        let mut rows = Vec::with_capacity(stats.len());
        for statistics in stats {
            let recent = state
                .repository
                .find_job_executions(
                    &ExecutionQuery::new()
                        .job(&statistics.job_name)
                        .limit(RECENT),
                )
                .await?;
            rows.push(JobRow { statistics, recent });
        }
        Ok(rows)
    }
    .await;
    match outcome {
        Ok(rows) => page(StatusCode::OK, pages::jobs(&rows)),
        Err(e) => failure(e),
    }
}

/// A time of the filter form: `2026-01-31T12:00[:00]` (a datetime-local input),
/// the same with a space, or a date (its midnight).
fn parse_time(field: &str, text: &str) -> Result<Option<NaiveDateTime>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(Some(t));
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0));
    }
    Err(format!(
        "`{field}` must be a time such as 2026-01-31T12:00 or a date such as 2026-01-31, not `{text}`"
    ))
}

fn query_of(form: &FilterForm, before: Option<&str>) -> Result<ExecutionQuery, String> {
    let mut query = ExecutionQuery::new().limit(PAGE + 1);
    if !form.job.is_empty() {
        query = query.job(form.job.clone());
    }
    if !form.status.is_empty() {
        let status: BatchStatus = form
            .status
            .to_uppercase()
            .parse()
            .map_err(|e: crate::execution::UnknownStatus| e.to_string())?;
        query = query.status(status);
    }
    query.created_from = parse_time("from", &form.from)?;
    query.created_until = parse_time("until", &form.until)?;
    if !form.param.is_empty() {
        let (name, value) = form
            .param
            .split_once('=')
            .ok_or_else(|| format!("`parameter` must be name=value, not `{}`", form.param))?;
        query = query.parameter(name.trim(), value.trim());
    }
    if let Some(before) = before.filter(|b| !b.is_empty()) {
        let id = before
            .parse()
            .map_err(|_| format!("`before` must be an execution id, not `{before}`"))?;
        query = query.before(id);
    }
    Ok(query)
}

async fn executions(
    State(state): State<Arc<AppState>>,
    Query(raw): Query<HashMap<String, String>>,
) -> Response {
    let field = |k: &str| raw.get(k).cloned().unwrap_or_default();
    let form = FilterForm {
        job: field("job"),
        status: field("status"),
        from: field("from"),
        until: field("until"),
        param: field("param"),
    };
    let job_names = match state.repository.job_names().await {
        Ok(names) => names,
        Err(e) => return failure(e),
    };
    let query = match query_of(&form, raw.get("before").map(String::as_str)) {
        Ok(q) => q,
        Err(error) => {
            return page(
                StatusCode::BAD_REQUEST,
                pages::executions(&form, &job_names, &[], None, Some(&error)),
            );
        }
    };
    match state.repository.find_job_executions(&query).await {
        Ok(mut found) => {
            let older = (found.len() > PAGE).then(|| {
                found.truncate(PAGE);
                found.last().map(|e| e.id)
            });
            page(
                StatusCode::OK,
                pages::executions(&form, &job_names, &found, older.flatten(), None),
            )
        }
        Err(e) => failure(e),
    }
}

fn notice_of(query: &HashMap<String, String>) -> Option<Result<String, String>> {
    let text = match query.get("done")?.as_str() {
        "stop" => "Stop requested: the execution stops at its next chunk boundary.",
        "abandon" => "The execution is abandoned.",
        "restart" => "Restarted: this is the new execution of the instance.",
        _ => return None,
    };
    Some(Ok(text.to_owned()))
}

async fn render_execution(
    state: &AppState,
    session: &Session,
    id: i64,
    notice: Option<Result<String, String>>,
    status: StatusCode,
) -> Response {
    let execution = match state.repository.job_execution(id).await {
        Ok(Some(e)) => e,
        Ok(None) => {
            return page(
                StatusCode::NOT_FOUND,
                pages::message(
                    "No such execution",
                    &format!("Job execution {id} does not exist."),
                ),
            );
        }
        Err(e) => return failure(e),
    };
    let view = ExecutionView {
        can_restart: state
            .job
            .as_ref()
            .is_some_and(|j| j.name() == execution.instance.job_name),
        form_token: (!state.config.read_only).then(|| state.secrets.form_token(&session.0)),
        execution: &execution,
        notice,
    };
    page(status, pages::execution(&view))
}

async fn execution(
    State(state): State<Arc<AppState>>,
    Extension(session): Extension<Session>,
    Path(id): Path<i64>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    render_execution(&state, &session, id, notice_of(&query), StatusCode::OK).await
}

/// The form of an action: its session's field.
#[derive(serde::Deserialize)]
pub(crate) struct ActionForm {
    csrf: Option<String>,
}

async fn act(
    State(state): State<Arc<AppState>>,
    Extension(session): Extension<Session>,
    Extension(access): Extension<Access>,
    Path((id, action)): Path<(i64, String)>,
    form: Result<Form<ActionForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    // A POST without a form (or with another body) has no field: refused as such.
    let field = form.ok().and_then(|Form(f)| f.csrf);
    if !security::form_allowed(&state.secrets, &access, &session, field.as_deref()) {
        return page(
            StatusCode::FORBIDDEN,
            pages::message(
                "Refused",
                "The form's token is missing or belongs to another session: reload the page and try again.",
            ),
        );
    }
    let outcome: Result<i64, OperatorError> = match action.as_str() {
        "stop" => state.operator.stop(id).await.map(|e| e.id),
        "abandon" => state.operator.abandon(id).await.map(|e| e.id),
        "restart" => restart(&state, id).await,
        _ => {
            return page(
                StatusCode::NOT_FOUND,
                pages::message(
                    "No such action",
                    "The actions are stop, restart and abandon.",
                ),
            );
        }
    };
    match outcome {
        Ok(target) => Redirect::to(&format!("/executions/{target}?done={action}")).into_response(),
        Err(e) => {
            let status = match e {
                OperatorError::NoSuchExecution(_) => StatusCode::NOT_FOUND,
                OperatorError::Repository(_) => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::CONFLICT,
            };
            let text = crate::error::Error::new(e).report();
            render_execution(&state, &session, id, Some(Err(text)), status).await
        }
    }
}

/// Relaunches the instance in this process, in the background, and returns the new
/// execution's id once the repository has it.
async fn restart(state: &AppState, id: i64) -> Result<i64, OperatorError> {
    let execution = state
        .repository
        .job_execution(id)
        .await?
        .ok_or(OperatorError::NoSuchExecution(id))?;
    let Some(job) = state
        .job
        .as_ref()
        .filter(|j| j.name() == execution.instance.job_name)
    else {
        return Err(OperatorError::NotAllowed {
            action: "restart",
            execution_id: id,
            status: execution.status,
            reason: Some(format!(
                "this console runs in the program of another job; restart `{}` from its own program",
                execution.instance.job_name
            )),
        });
    };
    if !matches!(execution.status, BatchStatus::Failed | BatchStatus::Stopped) {
        // The operator says why not, without launching anything.
        return state
            .operator
            .restart(Job::clone(job), id)
            .await
            .map(|e| e.id);
    }
    let operator = state.operator.clone();
    let job = Job::clone(job);
    let (done, outcome) = tokio::sync::oneshot::channel();
    let run = tokio::spawn(async move {
        let _ = done.send(operator.restart(job, id).await);
    });
    state.track(run);
    let mut outcome = outcome;
    let newer = |found: Vec<JobExecution>| found.into_iter().find(|e| e.id > id).map(|e| e.id);
    let query = ExecutionQuery::new()
        .instance(execution.instance.id)
        .limit(1);
    for _ in 0..600 {
        if let Some(new) = newer(state.repository.find_job_executions(&query).await?) {
            return Ok(new);
        }
        match outcome.try_recv() {
            Ok(ended) => return ended.map(|e| e.id),
            Err(tokio::sync::oneshot::error::TryRecvError::Closed) => {
                return Err(OperatorError::NotAllowed {
                    action: "restart",
                    execution_id: id,
                    status: execution.status,
                    reason: Some("the restart panicked".into()),
                });
            }
            Err(tokio::sync::oneshot::error::TryRecvError::Empty) => {}
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(OperatorError::NotAllowed {
        action: "restart",
        execution_id: id,
        status: execution.status,
        reason: Some(
            "the new execution did not appear within 30 s; see the executions page".into(),
        ),
    })
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    match prometheus::render(state.repository.as_ref()).await {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => failure(e),
    }
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    match state.repository.job_names().await {
        Ok(_) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the job repository cannot be read: {}\n",
                crate::error::Error::new(e).report()
            ),
        )
            .into_response(),
    }
}
