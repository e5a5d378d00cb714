use batch::prelude::*;

#[derive(Debug, thiserror::Error)]
enum ImportError {
    #[error("bad line")]
    BadLine { line: u64 },
    #[error("io")]
    Io,
}

#[step(chunk = 2, skip(ImportError::BadLine { .. }, limit = 3), no_skip(ImportError::Io { .. }, ImportError::BadLine { .. }))]
fn copy() -> impl ChunkStep<u32, u32> {
    read_write(ListReader::new(vec![1, 2, 3]), |_: &[u32]| Ok::<_, Error>(()))
}

fn main() {}
