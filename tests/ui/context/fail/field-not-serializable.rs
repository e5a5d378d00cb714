use batch::prelude::*;

#[derive(Default)]
struct Connection;

#[derive(ExecutionContext, Default)]
struct ReaderState {
    index: u64,
    connection: Connection,
}

fn main() {}
