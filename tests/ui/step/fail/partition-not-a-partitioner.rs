use batch::prelude::*;

#[step(chunk = 2)]
fn copy_range() -> impl ChunkStep<i64, i64> {
    read_write(ListReader::new(vec![1i64]), writer(|_: &[i64]| Ok(())))
}

// The function returns the partitioner itself, not a `Result` or a step.
#[step(partition(worker = copy_range {}))]
fn partitioned() -> Result<Vec<ExecutionContext>> {
    Ok(Vec::new())
}

fn main() {}
