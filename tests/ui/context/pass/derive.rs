use batch::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(ExecutionContext, Default, Debug, PartialEq)]
#[context(prefix = "reader.")]
struct ReaderState {
    #[context(key = "current.index")]
    index: u64,
    last_id: Option<i64>,
    r#type: String,
}

#[derive(ExecutionContext, Default, Debug, PartialEq)]
struct Page<T> {
    items: Vec<T>,
    #[context(key = "page.number")]
    number: u32,
}

#[derive(Serialize, Deserialize, Default, Debug, PartialEq)]
struct Order {
    id: i64,
}

#[derive(ExecutionContext)]
struct Nothing;

fn main() {
    assert_eq!(ReaderState::KEYS, ["reader.current.index", "reader.last_id", "reader.type"]);

    // Missing keys load as defaults: a first run and a restart read the same way.
    let mut ctx = ExecutionContext::new();
    assert_eq!(ctx.load::<ReaderState>().unwrap(), ReaderState::default());

    let state = ReaderState { index: 2, last_id: Some(7), r#type: "csv".into() };
    ctx.store(&state).unwrap();
    assert_eq!(ctx.get::<u64>("reader.current.index").unwrap(), Some(2));
    assert_eq!(ctx.load::<ReaderState>().unwrap(), state);

    let page = Page { items: vec![Order { id: 1 }], number: 3 };
    ctx.store(&page).unwrap();
    assert_eq!(Page::<Order>::KEYS, ["items", "page.number"]);
    assert_eq!(ctx.load::<Page<Order>>().unwrap(), page);

    assert!(Nothing::KEYS.is_empty());
    assert!(Nothing::load(&ctx).is_ok());
    Nothing.store(&mut ctx).unwrap();
}
