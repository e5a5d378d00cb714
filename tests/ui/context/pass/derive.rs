use batch::prelude::*;

#[derive(ExecutionContext, Default, Debug, PartialEq)]
#[context(prefix = "reader.")]
struct ReaderState {
    #[context(key = "current.index")]
    index: u64,
    last_id: Option<i64>,
    r#type: String,
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

    assert!(Nothing::KEYS.is_empty());
    assert!(Nothing::load(&ctx).is_ok());
    Nothing.store(&mut ctx).unwrap();
}
