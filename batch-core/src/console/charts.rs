//! The SVG pictures: a sparkline of a job's recent durations and the timeline of an
//! execution's steps (partitions are step executions of their own, one row each).

use std::fmt::Write;

use chrono::NaiveDateTime;

use crate::console::html::esc;
use crate::execution::{BatchStatus, JobExecution, now};

/// The colour of a status, as the stylesheet's badges.
fn colour(status: BatchStatus) -> &'static str {
    match status {
        BatchStatus::Completed => "#2f8f4e",
        BatchStatus::Starting | BatchStatus::Started => "#2c6e9b",
        BatchStatus::Stopping => "#b77d12",
        BatchStatus::Stopped => "#9a6a12",
        BatchStatus::Failed | BatchStatus::Unknown => "#b3362f",
        BatchStatus::Abandoned => "#58606a",
    }
}

/// Durations (seconds, oldest first) as a line; empty when there are fewer than two.
pub(crate) fn sparkline(durations: &[f64]) -> String {
    const W: f64 = 120.0;
    const H: f64 = 24.0;
    if durations.len() < 2 {
        return String::new();
    }
    let max = durations.iter().cloned().fold(0.0_f64, f64::max).max(1e-9);
    let step = W / (durations.len() - 1) as f64;
    let points: Vec<String> = durations
        .iter()
        .enumerate()
        .map(|(i, d)| {
            format!(
                "{:.1},{:.1}",
                i as f64 * step,
                H - 2.0 - d / max * (H - 4.0)
            )
        })
        .collect();
    format!(
        r##"<svg class="sparkline" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img" aria-label="durations of the last {n} executions"><polyline fill="none" stroke="#2c6e9b" stroke-width="1.5" points="{}"/></svg>"##,
        points.join(" "),
        n = durations.len()
    )
}

fn millis(from: NaiveDateTime, to: NaiveDateTime) -> f64 {
    (to - from).num_milliseconds().max(0) as f64
}

/// Each step execution as a bar from its start to its end (or now), on the span of
/// the job execution.
pub(crate) fn timeline(execution: &JobExecution) -> String {
    const LABEL: f64 = 180.0;
    const WIDTH: f64 = 900.0;
    const ROW: f64 = 22.0;
    let steps: Vec<_> = execution
        .step_executions
        .iter()
        .filter(|s| s.start_time.is_some())
        .collect();
    let Some(start) = execution
        .start_time
        .or_else(|| steps.iter().filter_map(|s| s.start_time).min())
    else {
        return r#"<p class="muted">No step has started.</p>"#.into();
    };
    if steps.is_empty() {
        return r#"<p class="muted">No step has started.</p>"#.into();
    }
    let end = execution
        .end_time
        .into_iter()
        .chain(steps.iter().filter_map(|s| s.end_time))
        .max()
        .filter(|_| execution.end_time.is_some())
        .unwrap_or_else(now);
    let total = millis(start, end).max(1.0);
    let scale = (WIDTH - LABEL - 10.0) / total;
    let height = ROW * steps.len() as f64 + 24.0;
    let mut svg = format!(
        r##"<svg class="timeline" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="timeline of the steps">"##
    );
    for (i, s) in steps.iter().enumerate() {
        let y = i as f64 * ROW + 4.0;
        let from = s.start_time.expect("filtered");
        let to = s.end_time.unwrap_or_else(now);
        let x = LABEL + millis(start, from) * scale;
        let w = (millis(from, to) * scale).max(2.0);
        let seconds = millis(from, to) / 1000.0;
        let _ = write!(
            svg,
            r##"<text x="0" y="{ty}">{name}</text><rect x="{x:.1}" y="{y}" width="{w:.1}" height="{h}" rx="2" fill="{fill}"><title>{name}: {status}, {seconds:.3} s</title></rect>"##,
            ty = y + 13.0,
            name = esc(&s.step_name),
            h = ROW - 6.0,
            fill = colour(s.status),
            status = s.status.as_str(),
        );
    }
    let axis_y = steps.len() as f64 * ROW + 16.0;
    let _ = write!(
        svg,
        r##"<text x="{LABEL}" y="{axis_y}" class="muted">0 s</text><text x="{right}" y="{axis_y}" text-anchor="end">{secs:.3} s</text></svg>"##,
        right = WIDTH - 10.0,
        secs = total / 1000.0,
    );
    svg
}
