//! `#[step(...)]`: parse → validate → expand.

mod expand;
mod parse;
mod validate;

use crate::errors::Errors;
use crate::fn_item::FnItem;
use proc_macro2::TokenStream;

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let item = match FnItem::parse_or_explain(item, "step") {
        Ok(item) => item,
        Err(emitted) => return emitted,
    };
    let mut errors = Errors::default();

    // A syntax error in the attribute stops its parsing, but the function is still
    // checked so that its mistakes are reported in the same build.
    let config = match syn::parse2::<parse::StepArgs>(args) {
        Ok(args) => validate::config(&args, &mut errors),
        Err(error) => {
            errors.push(error);
            validate::StepConfig::default()
        }
    };
    let step_fn = parse::step_fn(&item, &mut errors);
    validate::function(&step_fn, &config, &mut errors);

    match errors.finish() {
        Ok(()) => expand::step(&step_fn, &config),
        Err(error) => expand::fallback(&item, &config.runtime, error),
    }
}
