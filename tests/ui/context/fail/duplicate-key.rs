use batch::prelude::*;

#[derive(ExecutionContext, Default)]
struct ReaderState {
    #[context(key = "current.index")]
    index: u64,
    #[context(key = "current.index")]
    position: u64,
}

fn main() {}
