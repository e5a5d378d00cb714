use batch::prelude::*;

#[derive(ExecutionContext, Default)]
struct ReaderState {
    #[context(prefix = "reader.")]
    index: u64,
}

fn main() {}
