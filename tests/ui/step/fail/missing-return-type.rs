use batch::prelude::*;

#[step]
fn load(#[param] region: String) {
    println!("{region}");
}

fn main() {}
