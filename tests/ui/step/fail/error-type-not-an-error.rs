use batch::prelude::*;

#[derive(Debug)]
enum ApiError {
    Timeout,
}

#[step(chunk = 2, retry(ApiError, ApiError::Timeout { .. }, limit = 3))]
fn copy() -> impl ChunkStep<u32, u32> {
    read_write(ListReader::new(vec![1, 2, 3]), |_: &[u32]| Ok::<_, Error>(()))
}

fn main() {}
