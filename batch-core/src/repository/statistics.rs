//! What the read side adds up: executions of each job by status, with their total
//! duration, so that a console or `/metrics` can show counts and averages from one
//! grouped statement, whatever the history.

use crate::execution::BatchStatus;

/// The executions of one job in one status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusStatistics {
    /// The job's name.
    pub job_name: String,
    /// The status of these executions.
    pub status: BatchStatus,
    /// How many executions are in this status.
    pub executions: u64,
    /// How many of them have both a start and an end time.
    pub timed: u64,
    /// The sum of the durations of the timed ones, in milliseconds.
    pub total_millis: i64,
}

/// The executions of one job, all statuses together.
#[derive(Debug, Clone, PartialEq)]
pub struct JobStatistics {
    /// The job's name.
    pub job_name: String,
    /// How many executions the job has, in every status.
    pub executions: u64,
    /// The executions in each status, in the order of [`BatchStatus`].
    pub by_status: Vec<(BatchStatus, u64)>,
    /// The mean duration of the executions that ended, in seconds (`None`: none ended).
    pub average_seconds: Option<f64>,
}

impl JobStatistics {
    /// Groups rows of [`StatusStatistics`] by job, sorted by job name.
    pub fn by_job(rows: &[StatusStatistics]) -> Vec<JobStatistics> {
        let mut jobs: Vec<JobStatistics> = Vec::new();
        let mut sums: Vec<(u64, i64)> = Vec::new();
        let mut rows: Vec<&StatusStatistics> = rows.iter().collect();
        rows.sort_by(|a, b| (&a.job_name, a.status).cmp(&(&b.job_name, b.status)));
        for row in rows {
            if jobs.last().is_none_or(|j| j.job_name != row.job_name) {
                jobs.push(JobStatistics {
                    job_name: row.job_name.clone(),
                    executions: 0,
                    by_status: Vec::new(),
                    average_seconds: None,
                });
                sums.push((0, 0));
            }
            let job = jobs.last_mut().expect("pushed");
            let sum = sums.last_mut().expect("pushed");
            job.executions += row.executions;
            job.by_status.push((row.status, row.executions));
            sum.0 += row.timed;
            sum.1 += row.total_millis;
        }
        for (job, (timed, millis)) in jobs.iter_mut().zip(sums) {
            if timed > 0 {
                job.average_seconds = Some(millis as f64 / 1000.0 / timed as f64);
            }
        }
        jobs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_add_up_per_job_and_the_average_counts_timed_runs_only() {
        let row = |job: &str, status, executions, timed, total_millis| StatusStatistics {
            job_name: job.into(),
            status,
            executions,
            timed,
            total_millis,
        };
        let jobs = JobStatistics::by_job(&[
            row("b", BatchStatus::Completed, 3, 3, 3000),
            row("a", BatchStatus::Started, 1, 0, 0),
            row("b", BatchStatus::Failed, 1, 1, 5000),
        ]);
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[0].job_name, "a");
        assert_eq!(jobs[0].average_seconds, None);
        assert_eq!(jobs[1].executions, 4);
        assert_eq!(
            jobs[1].by_status,
            vec![(BatchStatus::Completed, 3), (BatchStatus::Failed, 1)]
        );
        assert_eq!(jobs[1].average_seconds, Some(2.0));
    }
}
