//! A generic struct: the impl requires its generic field types to be serializable.
use batch::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(ExecutionContext, Debug, PartialEq)]
#[context(prefix = "page.")]
struct Page<T, const N: usize> {
    items: Vec<T>,
    #[context(key = "number")]
    page: u32,
    sizes: [u32; N],
}

#[derive(Serialize, Deserialize, Default, Debug, PartialEq)]
struct Order {
    id: i64,
}

fn main() {
    assert_eq!(Page::<Order, 2>::KEYS, ["page.items", "page.number", "page.sizes"]);
    let mut ctx = ExecutionContext::new();
    let page = Page { items: vec![Order { id: 1 }], page: 3, sizes: [4, 5] };
    ctx.store(&page).unwrap();
    assert_eq!(ctx.load::<Page<Order, 2>>().unwrap(), page);
}
