//! Every path an expansion names, in one table.
//!
//! Generated code only ever refers to the runtime through `<root>::__private::<Name>`,
//! where `<root>` is `::batch` unless the user passed `crate = path`, and to the
//! standard library through `::core::…`. Keeping the names here means a rename in the
//! facade is a one-line change, and no expansion can pick up a user's local module
//! that happens to be called `batch` or `core` through a relative path.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::Path;

/// The root of the runtime facade as seen from the user's crate.
#[derive(Clone)]
pub(crate) struct Runtime {
    root: TokenStream,
}

impl Default for Runtime {
    fn default() -> Self {
        Runtime {
            root: quote!(::batch),
        }
    }
}

impl Runtime {
    /// A facade re-exported elsewhere (`crate = ::my_app::batch`). The path has already
    /// been checked to be absolute (see `args::crate_path`).
    pub(crate) fn at(path: &Path) -> Self {
        Runtime {
            root: path.to_token_stream(),
        }
    }
}

macro_rules! private_names {
    ($($(#[$doc:meta])* $method:ident => $name:ident,)*) => {
        impl Runtime {
            $(
                $(#[$doc])*
                pub(crate) fn $method(&self) -> TokenStream {
                    let root = &self.root;
                    quote!(#root::__private::$name)
                }
            )*
        }
    };
}

private_names! {
    /// A configured step, what `IntoStep::into_step` returns.
    step_def => StepDef,
    /// `StepBuilder::new(name)…chunk(factory)` / `…tasklet(factory)`.
    step_builder => StepBuilder,
    /// `Partition::new(name, worker, partitioner)…` of `#[step(partition(...))]`.
    partition => Partition,
    /// What a step factory receives; `StepScope::param::<T>(&scope, name)`.
    step_scope => StepScope,
    /// `<T as FromStepScope>::from_scope(&scope)` for injected arguments.
    trait_from_step_scope => FromStepScope,
    /// `ResourceNeed::of::<T>()`: a `Res<T>` argument declared to the launcher.
    resource_need => ResourceNeed,
    /// Accepts both `X` and `Result<X, E>` from a step function.
    trait_into_step_output => IntoStepOutput,
    /// Implemented by the companion struct of a `#[step]` function.
    trait_into_step => IntoStep,
    /// Implemented by the companion struct of a `#[job]` function.
    trait_into_job => IntoJob,
    /// `Job::new(name, flow)`.
    job => Job,
    /// `ParameterRules::new().required([...]).optional([...])` of `#[job(required, optional)]`.
    parameter_rules => ParameterRules,
    /// Implemented by `#[derive(ExecutionContext)]`.
    context_state => ContextState,
    /// The key → JSON map that `ContextState` loads from and stores into.
    execution_context => ExecutionContext,
    /// The error of `ContextState::load` / `store`.
    context_error => ContextError,
    /// Bound on generic field types of a derived `ContextState`: `store` serializes them.
    serialize => Serialize,
    /// Bound on generic field types of a derived `ContextState`: `load` deserializes them.
    deserialize_owned => DeserializeOwned,
    /// `ErrorMatcher::of::<T>()` / `ErrorMatcher::when::<T>(name, predicate)` for the
    /// error lists of `retry`, `skip`, `no_rollback`, ….
    error_matcher => ErrorMatcher,
    /// `Backoff::Fixed(d)` / `Exponential { .. }` / `Random { .. }`.
    backoff => Backoff,
    /// The four kinds a `listener(...)` value is registered as.
    step_execution_listener => StepExecutionListener,
    chunk_listener => ChunkListener,
    retry_listener => RetryListener,
    skip_listener => SkipListener,
    /// The item listener kinds, registered on a chunk step whose item types are known.
    item_read_listener => ItemReadListener,
    item_process_listener => ItemProcessListener,
    item_write_listener => ItemWriteListener,
    /// The one `Arc` a listener value is shared through.
    arc => Arc,
    /// `Duration::from_millis(n)` for durations read by the macro.
    duration => Duration,
}

/// `::core::result::Result`
pub(crate) fn core_result() -> TokenStream {
    quote!(::core::result::Result)
}

/// `::core::option::Option`
pub(crate) fn core_option() -> TokenStream {
    quote!(::core::option::Option)
}

/// `::core::marker::PhantomData`
pub(crate) fn core_phantom_data() -> TokenStream {
    quote!(::core::marker::PhantomData)
}

/// `::core::cell::Cell`
pub(crate) fn core_cell() -> TokenStream {
    quote!(::core::cell::Cell)
}

/// `::core::default::Default`
pub(crate) fn core_default() -> TokenStream {
    quote!(::core::default::Default)
}

/// The body of a stub emitted next to a compile error: it is never compiled into
/// anything that runs, because the crate does not build.
pub(crate) fn unreachable_stub() -> TokenStream {
    quote!(::core::unreachable!(
        "this item failed to expand; see the compile error"
    ))
}
