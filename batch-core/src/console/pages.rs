//! The console's HTML: one function per page, each text from the repository escaped
//! through [`esc`]. Pages read without JavaScript; those that show a running
//! execution say `data-live` so that the script (or, without it, a `<noscript>`
//! refresh) shows them as they change.

use std::fmt::Write;

use chrono::NaiveDateTime;

use crate::console::charts::{sparkline, timeline};
use crate::console::html::{esc, url_component};
use crate::context::ExecutionContext;
use crate::execution::{BatchStatus, JobExecution, StepExecution, now};
use crate::repository::JobStatistics;
use crate::telemetry::SIZE_HINT_KEY;

/// The frame of every page.
pub(crate) fn layout(title: &str, body: &str, live: bool) -> String {
    let (live_attr, noscript) = if live {
        (
            " data-live",
            r#"<noscript><meta http-equiv="refresh" content="5"></noscript>"#,
        )
    } else {
        ("", "")
    };
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · batch console</title><link rel="stylesheet" href="/assets/console.css">{noscript}
<script src="/assets/console.js" defer></script></head>
<body><header><strong>batch console</strong><a href="/">Jobs</a><a href="/executions">Executions</a><a href="/metrics">Metrics</a></header>
<main{live_attr}>{body}</main></body></html>
"#,
        title = esc(title),
    )
}

fn badge(status: BatchStatus) -> String {
    let s = status.as_str();
    format!(r#"<span class="status status-{s}">{s}</span>"#)
}

/// Seconds as a person reads them.
pub(crate) fn duration_text(seconds: Option<f64>) -> String {
    match seconds {
        None => "–".into(),
        Some(s) if s < 60.0 => format!("{s:.3} s"),
        Some(s) if s < 3600.0 => format!("{} min {:02} s", (s / 60.0) as u64, (s % 60.0) as u64),
        Some(s) => format!(
            "{} h {:02} min",
            (s / 3600.0) as u64,
            ((s % 3600.0) / 60.0) as u64
        ),
    }
}

fn seconds(d: Option<chrono::Duration>) -> Option<f64> {
    d.map(|d| d.num_milliseconds() as f64 / 1000.0)
}

fn time_text(t: Option<NaiveDateTime>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
        .unwrap_or_else(|| "–".into())
}

/// One job on the jobs page: what the repository adds up, and its latest executions
/// (newest first).
pub(crate) struct JobRow {
    pub(crate) statistics: JobStatistics,
    pub(crate) recent: Vec<JobExecution>,
}

/// `/`: each job's latest status, executions, average and last duration, sparkline.
pub(crate) fn jobs(rows: &[JobRow]) -> String {
    let mut body = String::from("<h1>Jobs</h1>");
    if rows.is_empty() {
        body.push_str(r#"<p class="muted">The job repository holds no execution yet.</p>"#);
        return layout("Jobs", &body, false);
    }
    body.push_str(
        r#"<table id="jobs"><thead><tr><th>job</th><th>latest</th><th class="n">executions</th><th class="n">average duration</th><th class="n">last duration</th><th>recent durations</th></tr></thead><tbody>"#,
    );
    let mut live = false;
    for row in rows {
        let name = &row.statistics.job_name;
        let latest = row.recent.first();
        live |= latest.is_some_and(|e| e.status.is_running());
        let durations: Vec<f64> = row
            .recent
            .iter()
            .rev()
            .filter(|e| e.end_time.is_some())
            .filter_map(|e| seconds(e.duration()))
            .collect();
        let last = row
            .recent
            .iter()
            .find(|e| e.end_time.is_some())
            .and_then(|e| seconds(e.duration()));
        let _ = write!(
            body,
            r#"<tr data-job="{ename}"><td><a href="/executions?job={qname}">{ename}</a></td><td>{latest}</td><td class="n">{count}</td><td class="n">{avg}</td><td class="n">{last}</td><td>{spark}</td></tr>"#,
            ename = esc(name),
            qname = url_component(name),
            latest = latest
                .map(|e| format!(
                    r#"<a href="/executions/{id}">{badge}</a>"#,
                    id = e.id,
                    badge = badge(e.status)
                ))
                .unwrap_or_default(),
            count = row.statistics.executions,
            avg = duration_text(row.statistics.average_seconds),
            last = duration_text(last),
            spark = sparkline(&durations),
        );
    }
    body.push_str("</tbody></table>");
    layout("Jobs", &body, live)
}

/// What `/executions` was asked, as the form shows it again.
#[derive(Debug, Default, Clone)]
pub(crate) struct FilterForm {
    pub(crate) job: String,
    pub(crate) status: String,
    pub(crate) from: String,
    pub(crate) until: String,
    pub(crate) param: String,
}

impl FilterForm {
    /// The query string of these filters (for the next page's link).
    fn query(&self) -> String {
        [
            ("job", &self.job),
            ("status", &self.status),
            ("from", &self.from),
            ("until", &self.until),
            ("param", &self.param),
        ]
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", url_component(v)))
        .collect::<Vec<_>>()
        .join("&")
    }
}

/// `/executions`: the filter form, a page of executions, the link to older ones.
pub(crate) fn executions(
    form: &FilterForm,
    job_names: &[String],
    page: &[JobExecution],
    older: Option<i64>,
    error: Option<&str>,
) -> String {
    let mut body = String::from("<h1>Executions</h1>");
    let mut jobs = String::from(r#"<option value="">every job</option>"#);
    for name in job_names {
        let selected = if *name == form.job { " selected" } else { "" };
        let _ = write!(
            jobs,
            r#"<option value="{n}"{selected}>{n}</option>"#,
            n = esc(name)
        );
    }
    let mut statuses = String::from(r#"<option value="">every status</option>"#);
    for s in [
        "COMPLETED",
        "STARTING",
        "STARTED",
        "STOPPING",
        "STOPPED",
        "FAILED",
        "ABANDONED",
        "UNKNOWN",
    ] {
        let selected = if form.status.eq_ignore_ascii_case(s) {
            " selected"
        } else {
            ""
        };
        let _ = write!(statuses, r#"<option{selected}>{s}</option>"#);
    }
    let _ = write!(
        body,
        r#"<form class="filters" method="get" action="/executions">
<label>job<select name="job">{jobs}</select></label>
<label>status<select name="status">{statuses}</select></label>
<label>created from<input type="datetime-local" step="1" name="from" value="{from}"></label>
<label>created before<input type="datetime-local" step="1" name="until" value="{until}"></label>
<label>parameter<input name="param" placeholder="name=value" value="{param}"></label>
<button type="submit">Filter</button> <a href="/executions">clear</a></form>"#,
        from = esc(&form.from),
        until = esc(&form.until),
        param = esc(&form.param),
    );
    if let Some(error) = error {
        let _ = write!(body, r#"<p class="notice error">{}</p>"#, esc(error));
    }
    if page.is_empty() {
        body.push_str(r#"<p class="muted" id="none">No execution matches.</p>"#);
    } else {
        body.push_str(
            r#"<table id="executions"><thead><tr><th class="n">id</th><th>job</th><th class="n">instance</th><th>status</th><th>exit code</th><th>created</th><th>started</th><th>ended</th><th class="n">duration</th></tr></thead><tbody>"#,
        );
        for e in page {
            let _ = write!(
                body,
                r#"<tr data-id="{id}"><td class="n"><a href="/executions/{id}">{id}</a></td><td>{job}</td><td class="n">{instance}</td><td>{status}</td><td>{exit}</td><td>{created}</td><td>{start}</td><td>{end}</td><td class="n">{duration}</td></tr>"#,
                id = e.id,
                job = esc(&e.instance.job_name),
                instance = e.instance.id,
                status = badge(e.status),
                exit = esc(&e.exit_status.code),
                created = time_text(Some(e.create_time)),
                start = time_text(e.start_time),
                end = time_text(e.end_time),
                duration = duration_text(seconds(e.duration())),
            );
        }
        body.push_str("</tbody></table>");
    }
    if let Some(before) = older {
        let query = form.query();
        let sep = if query.is_empty() { "" } else { "&" };
        let _ = write!(
            body,
            r#"<p class="pager"><a href="/executions" id="newest">newest</a><a id="older" href="/executions?{query}{sep}before={before}">older →</a></p>"#
        );
    }
    let live = page.iter().any(|e| e.status.is_running());
    layout("Executions", &body, live)
}

/// What an execution page offers and says after an action.
pub(crate) struct ExecutionView<'a> {
    pub(crate) execution: &'a JobExecution,
    /// The form field of the viewer's session; `None` renders no action (read-only).
    pub(crate) form_token: Option<String>,
    /// Whether this process runs the execution's job (and so can restart it).
    pub(crate) can_restart: bool,
    /// What the last action did (`Ok`) or why it was refused (`Err`).
    pub(crate) notice: Option<Result<String, String>>,
}

fn context_block(context: &ExecutionContext) -> String {
    if context.is_empty() {
        return r#"<p class="muted">empty</p>"#.into();
    }
    let text = serde_json::to_string_pretty(&context.to_json()).unwrap_or_default();
    format!("<pre>{}</pre>", esc(&text))
}

/// Items per second, and percent and time left where the reader told its total.
fn progress(step: &StepExecution) -> String {
    let elapsed = step
        .start_time
        .map(|s| (now() - s).num_milliseconds() as f64 / 1000.0)
        .unwrap_or_default();
    let done = step.counts.read;
    let rate = if elapsed > 0.0 {
        done as f64 / elapsed
    } else {
        0.0
    };
    let total = step
        .context
        .get_value(SIZE_HINT_KEY)
        .and_then(serde_json::Value::as_u64);
    let mut out = format!(r#"<span class="items-done">{done}</span>"#);
    match total.filter(|t| *t > 0) {
        Some(total) => {
            let percent = (done as f64 / total as f64 * 100.0).min(100.0);
            let eta = if rate > 0.0 {
                duration_text(Some(total.saturating_sub(done) as f64 / rate))
            } else {
                "–".into()
            };
            let _ = write!(
                out,
                r#" of {total} items (<span class="percent">{percent:.1}</span> %), <span class="rate">{rate:.1}</span> items/s, about {eta} left<div class="progress"><div style="width:{percent:.1}%"></div></div>"#
            );
        }
        None => {
            let _ = write!(
                out,
                r#" items, <span class="rate">{rate:.1}</span> items/s"#
            );
        }
    }
    out
}

/// `/executions/{id}`: the execution, parameters, contexts, steps, timeline, actions.
pub(crate) fn execution(view: &ExecutionView<'_>) -> String {
    let e = view.execution;
    let mut body = format!(
        r#"<h1>Execution {id} of <span id="job-name">{job}</span> <span id="status">{status}</span></h1>"#,
        id = e.id,
        job = esc(&e.instance.job_name),
        status = badge(e.status),
    );
    match &view.notice {
        Some(Ok(text)) => {
            let _ = write!(body, r#"<p class="notice" id="notice">{}</p>"#, esc(text));
        }
        Some(Err(text)) => {
            let _ = write!(
                body,
                r#"<p class="notice error" id="notice">{}</p>"#,
                esc(text)
            );
        }
        None => {}
    }
    if let Some(token) = &view.form_token {
        let mut forms = String::new();
        let mut form = |action: &str, label: &str, class: &str| {
            let _ = write!(
                forms,
                r#"<form method="post" action="/executions/{id}/{action}"><input type="hidden" name="csrf" value="{token}"><button type="submit" id="{action}" class="{class}">{label}</button></form>"#,
                id = e.id,
                token = esc(token),
            );
        };
        if e.status.is_running() {
            form("stop", "Stop", "");
        }
        if view.can_restart && matches!(e.status, BatchStatus::Failed | BatchStatus::Stopped) {
            form("restart", "Restart", "");
        }
        if matches!(
            e.status,
            BatchStatus::Stopped | BatchStatus::Failed | BatchStatus::Unknown
        ) || e.status.is_running()
        {
            form("abandon", "Abandon", "danger");
        }
        if !forms.is_empty() {
            let _ = write!(body, r#"<div class="actions">{forms}</div>"#);
        }
    }
    let _ = write!(
        body,
        r#"<dl class="facts" id="facts"><dt>job instance</dt><dd>{instance} <a href="/executions?job={qjob}">all executions of this job</a></dd><dt>status</dt><dd>{status}</dd><dt>exit code</dt><dd id="exit-code">{code}</dd><dt>exit description</dt><dd id="exit-description">{description}</dd><dt>created</dt><dd>{created}</dd><dt>started</dt><dd>{start}</dd><dt>ended</dt><dd>{end}</dd><dt>duration</dt><dd>{duration}</dd><dt>last updated</dt><dd>{updated}</dd></dl>"#,
        instance = e.instance.id,
        qjob = url_component(&e.instance.job_name),
        status = e.status.as_str(),
        code = esc(&e.exit_status.code),
        description = if e.exit_status.description.is_empty() {
            "–".to_owned()
        } else {
            format!("<pre>{}</pre>", esc(&e.exit_status.description))
        },
        created = time_text(Some(e.create_time)),
        start = time_text(e.start_time),
        end = time_text(e.end_time),
        duration = duration_text(seconds(e.duration())),
        updated = time_text(e.last_updated),
    );
    body.push_str("<h2>Parameters</h2>");
    if e.parameters.is_empty() {
        body.push_str(r#"<p class="muted">none</p>"#);
    } else {
        body.push_str(r#"<table id="parameters"><thead><tr><th>name</th><th>value</th><th>type</th><th>identifying</th></tr></thead><tbody>"#);
        for (name, p) in e.parameters.iter() {
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(name),
                esc(&p.value.to_string()),
                esc(p.value.param_type().short_name()),
                if p.identifying { "yes" } else { "no" }
            );
        }
        body.push_str("</tbody></table>");
    }
    let live: Vec<&StepExecution> = e
        .step_executions
        .iter()
        .filter(|s| s.status.is_running())
        .collect();
    if !live.is_empty() {
        body.push_str(r#"<h2>Progress</h2><table id="progress"><tbody>"#);
        for s in live {
            let _ = write!(
                body,
                r#"<tr><td><span class="live-dot"></span>{}</td><td>{}</td></tr>"#,
                esc(&s.step_name),
                progress(s)
            );
        }
        body.push_str("</tbody></table>");
    }
    body.push_str("<h2>Timeline</h2>");
    body.push_str(&timeline(e));
    body.push_str(r#"<h2>Steps</h2><table id="steps"><thead><tr><th class="n">id</th><th>step</th><th>status</th><th class="n">read</th><th class="n">write</th><th class="n">filter</th><th class="n">commit</th><th class="n">rollback</th><th class="n">read skip</th><th class="n">process skip</th><th class="n">write skip</th><th>exit code</th><th class="n">duration</th></tr></thead><tbody>"#);
    for s in &e.step_executions {
        let c = &s.counts;
        let _ = write!(
            body,
            r#"<tr data-step="{id}"><td class="n">{id}</td><td>{name}</td><td>{status}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td>{code}</td><td class="n">{duration}</td></tr>"#,
            c.read,
            c.write,
            c.filter,
            c.commit,
            c.rollback,
            c.read_skip,
            c.process_skip,
            c.write_skip,
            id = s.id,
            name = esc(&s.step_name),
            status = badge(s.status),
            code = esc(&s.exit_status.code),
            duration = duration_text(seconds(s.duration())),
        );
    }
    body.push_str("</tbody></table>");
    for s in &e.step_executions {
        if !s.exit_status.description.is_empty() {
            let _ = write!(
                body,
                "<h2>Exit description of step {}</h2><pre>{}</pre>",
                esc(&s.step_name),
                esc(&s.exit_status.description)
            );
        }
    }
    body.push_str("<h2>Job context</h2>");
    body.push_str(&context_block(&e.context));
    for s in &e.step_executions {
        let _ = write!(body, "<h2>Context of step {}</h2>", esc(&s.step_name));
        body.push_str(&context_block(&s.context));
    }
    let title = format!("Execution {} of {}", e.id, e.instance.job_name);
    layout(&title, &body, e.status.is_running())
}

/// A page that only says something (a refusal, a missing execution).
pub(crate) fn message(title: &str, text: &str) -> String {
    layout(
        title,
        &format!(
            r#"<h1>{}</h1><p class="notice error">{}</p>"#,
            esc(title),
            esc(text)
        ),
        false,
    )
}
