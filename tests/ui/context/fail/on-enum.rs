use batch::prelude::*;

#[derive(ExecutionContext)]
enum Phase {
    Reading,
    Writing,
}

fn main() {}
