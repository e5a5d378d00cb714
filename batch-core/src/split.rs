//! Split flows (Spring's `split`): what a split's flows end as, together, and how
//! what each flow did comes back into the one job execution.
//!
//! The launcher runs each flow of a split on its own task with a copy of the job
//! execution, and waits for all of them: a failed flow does not cancel the others,
//! whose steps end as they would have alone. The split then ends as Spring's
//! `MaxValueFlowExecutionAggregator` decides: the most severe of the flows' ends, in
//! the order COMPLETED < STOPPED < FAILED < UNKNOWN (ties broken by the exit code's
//! name), so a split with one failed flow fails the job once the others finish, unless
//! a transition from the split says otherwise. A restart walks the split again: the
//! steps that completed are not run again (as everywhere in a restart), so only what
//! did not complete runs.

use crate::execution::{BatchStatus, ExitStatus, JobExecution};

/// A flow of a split whose task panicked or was cancelled; the other flows ran to
/// their ends.
#[derive(Debug, thiserror::Error)]
#[error("a flow of a split panicked: {0}")]
pub struct SplitFlowPanicked(#[source] pub tokio::task::JoinError);

/// How severe a flow's end is, in Spring's `FlowExecutionStatus` order.
fn severity(status: BatchStatus) -> u8 {
    match status {
        BatchStatus::Completed => 0,
        BatchStatus::Stopped | BatchStatus::Stopping => 1,
        BatchStatus::Failed | BatchStatus::Abandoned => 2,
        _ => 3,
    }
}

/// The end of a split from the ends of its flows: the most severe one.
pub(crate) fn aggregate(ends: &[(BatchStatus, ExitStatus)]) -> (BatchStatus, ExitStatus) {
    ends.iter()
        .max_by(|(a, ax), (b, bx)| {
            severity(*a)
                .cmp(&severity(*b))
                .then_with(|| ax.code.cmp(&bx.code))
        })
        .cloned()
        .unwrap_or((BatchStatus::Completed, ExitStatus::completed()))
}

/// Takes back into `execution` what a flow did on its copy `branch`: the step
/// executions it added (after the `base` the copy started with) and the job context
/// keys it set or changed.
pub(crate) fn merge(execution: &mut JobExecution, branch: JobExecution, base: usize) {
    let before = execution.context.clone();
    for (key, value) in branch.context.iter() {
        if before.get_value(key) != Some(value) {
            execution.context.put_value(key.clone(), value.clone());
        }
    }
    execution
        .step_executions
        .extend(branch.step_executions.into_iter().skip(base));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_severe_end_wins() {
        let end = |s: BatchStatus| (s, ExitStatus::for_status(s));
        use BatchStatus::{Completed, Failed, Stopped, Unknown};
        assert_eq!(aggregate(&[end(Completed), end(Completed)]).0, Completed);
        assert_eq!(aggregate(&[end(Completed), end(Stopped)]).0, Stopped);
        assert_eq!(
            aggregate(&[end(Failed), end(Completed), end(Stopped)]).0,
            Failed
        );
        assert_eq!(aggregate(&[end(Failed), end(Unknown)]).0, Unknown);
        assert_eq!(aggregate(&[]).0, Completed);
        // Among ends of one status, the exit code that sorts last.
        let custom = (Completed, ExitStatus::new("COMPLETED_WITH_SKIPS"));
        assert_eq!(
            aggregate(&[end(Completed), custom.clone()]).1.code,
            "COMPLETED_WITH_SKIPS"
        );
    }
}
