use batch::prelude::*;

#[derive(ExecutionContext, Default)]
struct ReaderState {
    #[context(key = "")]
    index: u64,
}

fn main() {}
