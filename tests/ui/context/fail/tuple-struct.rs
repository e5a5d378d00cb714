use batch::prelude::*;

#[derive(ExecutionContext, Default)]
struct Cursor(u64);

fn main() {}
