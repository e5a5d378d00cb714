use batch::prelude::*;

#[step(chunk = 2)]
struct Copy;

fn main() {}
