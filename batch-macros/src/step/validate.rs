//! Checking `#[step]`: the keys' values, repeated keys, and the shape of the function.

use super::parse::{Input, STEP, StepArg, StepArgs, StepFn};
use crate::args;
use crate::errors::{Errors, Once};
use crate::runtime::Runtime;
use syn::{LitBool, LitInt, LitStr, Type};

/// The checked configuration of one step.
#[derive(Default)]
pub(crate) struct StepConfig {
    pub(crate) runtime: Runtime,
    pub(crate) name: Option<LitStr>,
    /// `Some` makes a chunk-oriented step, `None` a tasklet step.
    pub(crate) chunk: Option<LitInt>,
    pub(crate) start_limit: Option<LitInt>,
    pub(crate) allow_start_if_complete: Option<LitBool>,
}

/// Folds the keys as written into a configuration, reporting bad values and repeated
/// keys. A key whose value is bad is still recorded (as `None`) so that repeating it
/// is reported too.
pub(crate) fn config(args: &StepArgs, errors: &mut Errors) -> StepConfig {
    let mut runtime = Once::new(STEP);
    let mut name = Once::new(STEP);
    let mut chunk = Once::new(STEP);
    let mut start_limit = Once::new(STEP);
    let mut allow_start_if_complete = Once::new(STEP);

    for arg in &args.args {
        match arg {
            StepArg::Chunk(pair) => {
                let value = args::positive_int::<_, u64>(
                    errors,
                    pair,
                    "a chunk holds at least one item: write `chunk = 1` or more, or remove \
                     `chunk` to make a tasklet step",
                );
                chunk.set(errors, pair, value);
            }
            StepArg::Name(pair) => {
                let value = args::non_empty_str(errors, pair, "load_orders");
                name.set(errors, pair, value);
            }
            StepArg::StartLimit(pair) => {
                let value = args::positive_int::<_, u32>(
                    errors,
                    pair,
                    "a start limit below 1 would forbid the step from ever starting: write \
                     `start_limit = 1` or more, or remove `start_limit` for no limit",
                );
                start_limit.set(errors, pair, value);
            }
            StepArg::AllowStartIfComplete(flag) => {
                let value = args::flag(errors, flag);
                allow_start_if_complete.set(errors, flag, value);
            }
            StepArg::Crate(pair) => {
                let value = args::crate_path(errors, pair);
                runtime.set(errors, pair, value);
            }
        }
    }

    StepConfig {
        runtime: runtime.get().flatten().unwrap_or_default(),
        name: name.get().flatten(),
        chunk: chunk.get().flatten(),
        start_limit: start_limit.get().flatten(),
        allow_start_if_complete: allow_start_if_complete.get().flatten(),
    }
}

/// Checks the function: it must be callable by the framework with injected arguments.
pub(crate) fn function(f: &StepFn, errors: &mut Errors) {
    f.item.check_plain_fn(
        errors,
        "step",
        "the step: `-> impl Tasklet`, `-> impl ChunkStep<I, O>`, or a `Result` of either",
    );
    for input in &f.inputs {
        let (Input::Param { ty, .. } | Input::Injected { ty }) = input;
        if let Type::ImplTrait(ty) = ty {
            errors.at(
                ty,
                "an injected argument needs a concrete type: the framework builds the \
                 value from the job, so `impl Trait` leaves it nothing to build; name the type",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of(src: &str) -> Vec<String> {
        let args: StepArgs = syn::parse_str(src).unwrap();
        let mut errors = Errors::default();
        config(&args, &mut errors);
        match errors.finish() {
            Ok(()) => vec![],
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn a_valid_config_is_kept() {
        let args: StepArgs =
            syn::parse_str("chunk = 5, start_limit = 2, allow_start_if_complete = false").unwrap();
        let mut errors = Errors::default();
        let config = config(&args, &mut errors);
        assert!(errors.finish().is_ok());
        assert_eq!(config.chunk.unwrap().base10_digits(), "5");
        assert_eq!(config.start_limit.unwrap().base10_digits(), "2");
        assert!(!config.allow_start_if_complete.unwrap().value);
        assert!(config.name.is_none());
    }

    #[test]
    fn every_mistake_is_reported_at_once() {
        let errors = errors_of(
            "chunk = 0, chunk = 2, name = \"\", start_limit = 0, \
             allow_start_if_complete = 1, crate = batch",
        );
        assert_eq!(errors.len(), 6, "{errors:?}");
        assert!(errors[0].starts_with("a chunk holds at least one item"));
        assert!(errors[1].starts_with("duplicate `chunk`"));
        assert!(errors[2].starts_with("`name` cannot be empty"));
        assert!(errors[3].starts_with("a start limit below 1"));
        assert!(errors[4].starts_with("`allow_start_if_complete` takes `true` or `false`"));
        assert!(errors[5].starts_with("`crate` takes an absolute path"));
    }
}
