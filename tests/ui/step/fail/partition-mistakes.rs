use batch::prelude::*;
use batch::step::partition::KeyRangePartitioner;

#[step(chunk = 2)]
fn copy_range() -> impl ChunkStep<i64, i64> {
    read_write(ListReader::new(vec![1i64]), writer(|_: &[i64]| Ok(())))
}

// The manager's keys only, and the worker is required.
#[step(chunk = 10, retry(std::io::Error, limit = 2), partition(grid_size = 0))]
fn no_worker() -> KeyRangePartitioner {
    KeyRangePartitioner::new("source", "id")
}

// Built when the flow is built: no arguments, not async.
#[step(partition(worker = copy_range {}, grid_size = 4, grid_size = 8))]
async fn with_arguments(#[param] table: String) -> KeyRangePartitioner {
    KeyRangePartitioner::new(table, "id")
}

#[step(partition(worker = copy_range {}, remote = "yes", gridsize = 4))]
fn bad_keys() -> KeyRangePartitioner {
    KeyRangePartitioner::new("source", "id")
}

fn main() {}
