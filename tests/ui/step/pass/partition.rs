use batch::prelude::*;
use batch::repository::BoxFuture;
use batch::step::partition::{KeyRange, MAX_VALUE, MIN_VALUE, Partitioner};

/// Three key ranges of 1..=9, whatever the grid size.
struct Thirds;

impl Partitioner for Thirds {
    fn partition<'a>(
        &'a self,
        _scope: &'a batch::step::StepScope,
        _grid_size: usize,
    ) -> BoxFuture<'a, Result<Vec<ExecutionContext>>> {
        Box::pin(async move {
            [(1i64, 3i64), (4, 6), (7, 9)]
                .into_iter()
                .map(|(min, max)| {
                    let mut context = ExecutionContext::new();
                    context.put(MIN_VALUE, &min)?;
                    context.put(MAX_VALUE, &max)?;
                    Ok(context)
                })
                .collect()
        })
    }
}

// The worker takes its share as a typed argument.
#[step(chunk = 2)]
fn copy_range(range: KeyRange) -> impl ChunkStep<i64, i64> {
    read_write(ListReader::new(range.min..=range.max), writer(|_: &[i64]| Ok(())))
}

#[step(name = "copy", partition(worker = copy_range {}, grid_size = 3, concurrency = 2))]
fn partitioned_copy() -> Thirds {
    Thirds
}

#[job]
fn partitioned_job() -> Flow {
    Flow::start(partitioned_copy {}).build()
}

#[tokio::main]
async fn main() {
    let launcher = JobLauncher::new(InMemoryJobRepository::new());
    let execution = launcher
        .run(partitioned_job {}, JobParameters::new())
        .await
        .unwrap();
    assert_eq!(execution.status, BatchStatus::Completed);
    // The partitions are step executions of their own, in the repository.
    let stored = launcher
        .repository()
        .job_executions(&execution.instance)
        .await
        .unwrap();
    let mut steps: Vec<(&str, u64)> = stored[0]
        .step_executions
        .iter()
        .map(|s| (s.step_name.as_str(), s.counts.write))
        .collect();
    steps.sort();
    assert_eq!(
        steps,
        [("copy", 9), ("copy:partition0", 3), ("copy:partition1", 3), ("copy:partition2", 3)]
    );
}
