//! The attribute and derive macros of the `batch` framework.
//!
//! Use them through the facade, `use batch::prelude::*;`, never from this crate
//! directly: the generated code names the runtime as `::batch::__private::…`.
//!
//! This file only routes. Each macro lives in its own module and runs the same three
//! stages: parse the input into a model that borrows it, validate the model while
//! collecting every mistake, then expand, which cannot fail. When validation finds
//! mistakes, the macro still emits the user's item and stand-ins for what it would
//! have generated, next to the errors, so that one mistake yields one error.

extern crate proc_macro;

mod args;
mod context;
mod errors;
mod fn_item;
mod job;
mod runtime;
mod step;

use proc_macro::TokenStream;

/// Turns a function that returns a step's work into a configured step.
///
/// ```ignore
/// use batch::prelude::*;
///
/// #[step(chunk = 100, start_limit = 3)]
/// async fn import_orders(
///     #[param("targetDate")] date: String, // the job parameter `targetDate`
///     #[param] region: Option<String>,     // the job parameter `region`, if given
///     state: Cursor,                       // any `FromStepScope` type
/// ) -> Result<impl ChunkStep<Order, Order>, ApiError> {
///     /* build the reader, processor and writer */
/// }
/// ```
///
/// # Keys
///
/// | key | meaning |
/// |---|---|
/// | `chunk = N` | a chunk-oriented step that commits every `N` items (`N ≥ 1`); without it, a tasklet step |
/// | `name = "…"` | the step's name in the job repository; default: the function's name |
/// | `start_limit = N` | how many times the step may start for one job instance (`N ≥ 1`) |
/// | `allow_start_if_complete` / `= true\|false` | run the step again on restart even if it completed |
/// | `crate = ::path` | where the `batch` facade is, when it is re-exported under another path |
///
/// # Arguments
///
/// Every argument is built by the framework each time the step runs:
/// - `#[param] name: T` is the job parameter `name`, converted to `T` (an `Option<T>`
///   is optional). `#[param("targetDate")]` or `#[param(name = "targetDate")]` names
///   the parameter when it differs from the argument.
/// - any other argument `x: T` comes from `T: FromStepScope` (the step's execution
///   context, typed state, shared resources).
///
/// The function may be `async`, and may return the step's work (`impl Tasklet`,
/// `impl ChunkStep<I, O>`) or a `Result` of it with any error type.
///
/// # What it expands to
///
/// The function stays as written (minus the `#[param]` markers). Next to it comes a
/// struct of the same name, which lives in the type namespace and so does not clash with
/// the function; it is what a flow takes (`import_orders {}`). For the example above,
/// the hand-written equivalent is:
///
/// ```ignore
/// async fn import_orders(date: String, region: Option<String>, state: Cursor)
///     -> Result<impl ChunkStep<Order, Order>, ApiError> { /* … */ }
///
/// #[allow(non_camel_case_types)]
/// struct import_orders {}
///
/// impl IntoStep for import_orders {
///     fn into_step(self) -> StepDef {
///         StepBuilder::new("import_orders")
///             .chunk_size(100)
///             .start_limit(3)
///             .chunk(|scope: StepScope| async move {
///                 let date = scope.param::<String>("targetDate")?;
///                 let region = scope.param::<Option<String>>("region")?;
///                 let state = <Cursor as FromStepScope>::from_scope(&scope)?;
///                 IntoStepOutput::into_step_output(import_orders(date, region, state).await)
///             })
///     }
/// }
/// ```
///
/// Without `chunk`, the last call is `.tasklet(…)` instead and the function returns
/// `impl Tasklet`. When the function is written to return `Result<…>`, the value goes
/// through a small generic helper before `IntoStepOutput`, which tells rustc that the
/// step is the `Ok` type (it cannot otherwise choose between "the value itself" and
/// "the value inside the `Result`"). The real expansion names everything by absolute
/// paths through `::batch::__private`, keeps the helper items inside `const _: () =
/// { … };`, and emits nothing else.
#[proc_macro_attribute]
pub fn step(args: TokenStream, item: TokenStream) -> TokenStream {
    step::expand(args.into(), item.into()).into()
}

/// Names a job and gives it its flow.
///
/// ```ignore
/// use batch::prelude::*;
///
/// #[job(name = "nightlySettlement")]
/// fn nightly_settlement() -> Flow {
///     Flow::start(load_orders {}).next(settle {}).build()
/// }
/// ```
///
/// The function takes no arguments (job parameters reach the steps through
/// `#[param]`) and returns the `Flow`. Keys: `name = "…"` (default: the function's
/// name) and `crate = ::path`.
///
/// # What it expands to
///
/// The function as written, and a struct of the same name that launchers take:
///
/// ```ignore
/// fn nightly_settlement() -> Flow { /* … */ }
///
/// #[allow(non_camel_case_types)]
/// struct nightly_settlement {}
///
/// impl IntoJob for nightly_settlement {
///     fn into_job(self) -> Job {
///         Job::new("nightlySettlement", nightly_settlement())
///     }
/// }
/// ```
#[proc_macro_attribute]
pub fn job(args: TokenStream, item: TokenStream) -> TokenStream {
    job::expand(args.into(), item.into()).into()
}

/// Typed state kept in a step's `ExecutionContext`, one context key per field.
///
/// ```ignore
/// use batch::prelude::*;
///
/// #[derive(ExecutionContext, Default)]
/// #[context(prefix = "reader.")]
/// struct ReaderState {
///     #[context(key = "current.index")]
///     index: u64,                 // stored under "reader.current.index"
///     last_id: Option<i64>,       // stored under "reader.last_id"
/// }
/// ```
///
/// Each field must be serializable, deserializable and `Default`: a key missing from
/// the context (a first run) loads as the field's default, so a restart and a first run
/// read the same way. `#[context(key = "…")]` on a field sets its key (default: the
/// field's name); `#[context(prefix = "…")]` on the struct goes in front of every key;
/// `#[context(crate = ::path)]` on the struct locates the facade. Generic structs get
/// the field bounds added to the impl's `where` clause.
///
/// # What it expands to
///
/// ```ignore
/// impl ContextState for ReaderState {
///     const KEYS: &'static [&'static str] = &["reader.current.index", "reader.last_id"];
///
///     fn load(ctx: &ExecutionContext) -> Result<Self, ContextError> {
///         Ok(Self {
///             index: ctx.get::<u64>("reader.current.index")?.unwrap_or_default(),
///             last_id: ctx.get::<Option<i64>>("reader.last_id")?.unwrap_or_default(),
///         })
///     }
///
///     fn store(&self, ctx: &mut ExecutionContext) -> Result<(), ContextError> {
///         ctx.put("reader.current.index", &self.index)?;
///         ctx.put("reader.last_id", &self.last_id)?;
///         Ok(())
///     }
/// }
/// ```
#[proc_macro_derive(ExecutionContext, attributes(context))]
pub fn derive_execution_context(input: TokenStream) -> TokenStream {
    context::derive(input.into()).into()
}
