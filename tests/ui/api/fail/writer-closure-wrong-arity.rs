use batch::prelude::*;

#[step(chunk = 2)]
fn copy() -> impl ChunkStep<i32, i32> {
    read_write(ListReader::new(vec![1, 2, 3]), |_items: &[i32], _cx: &mut WriteContext<'_>, _extra: u8| {
        Ok::<_, Error>(())
    })
}

fn main() {}
