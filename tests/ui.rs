//! Compile-time behaviour of `#[step]`, `#[job]` and `#[derive(ExecutionContext)]`:
//! every mistake in `tests/ui/*/fail/` must fail with the message in its `.stderr`,
//! every file in `tests/ui/*/pass/` must build and run.
//!
//! The `.stderr` files are pinned to the toolchain in `rust-toolchain`/CI; after a
//! deliberate change to a message, regenerate them with
//! `TRYBUILD=overwrite cargo test --test ui` and read the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*/fail/*.rs");
    t.pass("tests/ui/*/pass/*.rs");
}
