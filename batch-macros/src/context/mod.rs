//! `#[derive(ExecutionContext)]`: parse → validate → expand.

mod expand;
mod parse;
mod validate;

use crate::errors::Errors;
use crate::runtime::Runtime;
use proc_macro2::TokenStream;
use syn::DeriveInput;

pub(crate) fn derive(input: TokenStream) -> TokenStream {
    let input = match syn::parse2::<DeriveInput>(input) {
        Ok(input) => input,
        // The item is emitted by rustc itself for a derive; only the error is ours.
        Err(error) => return error.to_compile_error(),
    };
    let mut errors = Errors::default();
    let parsed = match parse::context_struct(&input, &mut errors) {
        Ok(parsed) => parsed,
        Err(error) => return expand::fallback(&input, &Runtime::default(), error),
    };
    let model = validate::model(&parsed, &mut errors);
    match errors.finish() {
        Ok(()) => expand::context_state(&input, &model),
        Err(error) => expand::fallback(&input, &model.runtime, error),
    }
}
