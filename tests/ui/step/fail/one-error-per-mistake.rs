//! A step with a mistake still leaves its function and companion behind, so the
//! flow that lists it and the code that calls it add no errors of their own.
use batch::prelude::*;

#[step(chunk = 2, retry_limit = 3)]
fn copy(#[param] count: u32) -> impl ChunkStep<u32, u32> {
    chunk(ListReader::new(0..count), |n: &u32| Ok::<_, Error>(Some(*n)), |_: &[u32]| Ok::<_, Error>(()))
}

#[job]
fn copy_job() -> Flow {
    let _direct_call = copy(3);
    Flow::start(copy {}).build()
}

fn main() {
    let _ = copy_job {}.into_job();
}
