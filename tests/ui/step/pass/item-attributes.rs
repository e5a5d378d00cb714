//! What the function keeps: doc comments, `#[deprecated]`, `#[cfg]`, raw identifiers,
//! and `crate = ::batch`.
#![deny(warnings)]
use batch::prelude::*;

/// A step that still works but should no longer be used.
#[deprecated = "use `load_v2`"]
#[step(crate = ::batch)]
fn load() -> impl Tasklet {
    |_: &mut TaskletContext<'_>| Ok::<_, Error>(RepeatStatus::Finished)
}

// Compiled out together with its companion.
#[cfg(any())]
#[step]
fn never() -> impl Tasklet {
    missing_function()
}

#[step]
fn r#loop(#[param] r#type: Option<String>) -> impl Tasklet {
    assert_eq!(r#type, None);
    |_: &mut TaskletContext<'_>| Ok::<_, Error>(RepeatStatus::Finished)
}

#[allow(deprecated)]
fn old_steps() -> Flow {
    Flow::start(load {}).next(r#loop {}).build()
}

fn main() {
    assert_eq!(r#loop {}.into_step().name(), "loop");
    // The function itself is still there and callable.
    let _tasklet = r#loop(None);
    let _ = old_steps();
}
