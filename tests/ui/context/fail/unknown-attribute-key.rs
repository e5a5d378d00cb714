use batch::prelude::*;

#[derive(ExecutionContext, Default)]
struct ReaderState {
    #[context(rename = "current.index")]
    index: u64,
}

fn main() {}
