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
/// #[step(
///     chunk(size = 100, timeout = "30s"),
///     start_limit = 3,
///     retry(Timeout, ApiError::Busy { .. }, limit = 3, backoff = fixed("100ms")),
///     no_retry(ApiError::Status(400, ..)),
///     skip(BadRecord, limit = 10),
///     listener(Audit::default()),
/// )]
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
/// | `chunk = N` | a chunk-oriented step that commits every `N` items (`N ≥ 1`); without `chunk`, a tasklet step |
/// | `chunk(size = N, timeout = "30s")` | the same, and a chunk also ends once it has taken that long |
/// | `chunk(policy = EXPR)` / `chunk(size = N, policy = EXPR)` | a `batch::repeat::CompletionPolicy` value decides when a chunk is full; `size` then only sizes the chunk's buffer |
/// | `name = "…"` | the step's name in the job repository; default: the function's name |
/// | `start_limit = N` | how many times the step may start for one job instance (`N ≥ 1`) |
/// | `allow_start_if_complete` / `= true\|false` | run the step again on restart even if it completed |
/// | `retry(E, …, limit = N, backoff = …)` | retry errors of the listed types; `limit` counts every attempt, the first included (`N ≥ 2`, required) |
/// | `no_retry(E, …)` | exceptions to `retry`: never retry these |
/// | `skip(E, …, limit = N)` | skip items whose errors are of the listed types, at most `N` in the whole step (default 10) |
/// | `no_skip(E, …)` | exceptions to `skip`: never skip these |
/// | `no_rollback(E, …)` | errors that leave the chunk's transaction to commit |
/// | `processor_non_transactional` / `= true\|false` | keep each item's processor output across retries and rescans, so each item is processed once |
/// | `listener(EXPR)` | a listener; repeat the key for more |
/// | `promote("KEY", …)` | step context keys copied into the job context when the step completes (Spring's `ExecutionContextPromotionListener`) |
/// | `partition(worker = STEP, grid_size = N, grid_size_param = "…", concurrency = N, remote, remote_param = "…")` | a partitioned step (Spring's `PartitionStep`): the function takes no arguments and returns the `Partitioner`; each partition runs `worker`; the other settings are `Partition`'s builder methods of the same names |
/// | `crate = ::path` | where the `batch` facade is, when it is re-exported under another path |
///
/// `chunk = N` and `chunk(...)` are two spellings of one key: give one. Every key is
/// given at most once, except `listener`; a list key takes all its entries in one list
/// (`retry(A, B, limit = 3)`, not `retry(A, limit = 3), retry(B, limit = 3)`), since
/// two lists could disagree on the limit. `retry`, `no_retry`, `skip`, `no_skip`,
/// `no_rollback` and `processor_non_transactional` make the step fault-tolerant (the
/// runtime's fault-tolerant chunk loop) and only go on chunk steps.
///
/// ## Naming errors
///
/// An entry of `retry(...)` and the other lists is either a type or a pattern:
/// - a path, `Timeout` or `std::io::Error`, is a type (it must implement
///   `std::error::Error`); it matches when an error of that type appears anywhere in
///   the error's `source()` chain, and the match nearest the outside of the chain wins;
/// - a path followed by `{ … }` or `( … )` is a pattern: `ApiError::Busy { .. }`,
///   `ApiError::Status(503, ..)`. Its type is the path without its last segment
///   (`ApiError`), and it matches errors of that type for which the pattern matches.
///   A one-segment pattern, `HttpError { status: 503, .. }`, is a struct pattern whose
///   path is the type.
///
/// A bare path is always a type, so a unit variant is written as a pattern too:
/// `ApiError::Timeout { .. }` (the `{ .. }` form matches any kind of variant);
/// `ApiError::Timeout` alone is rejected by rustc as "expected type, found variant".
///
/// ## Durations and backoff
///
/// Durations are string literals read by the macro: a whole number and a unit, `ms`,
/// `s`, `m` or `h` (`"500ms"`, `"30s"`, `"5m"`, `"1h"`). The backoff before each retry
/// is one of
/// - `backoff = fixed("100ms")`: the same pause every time;
/// - `backoff = exponential(initial = "100ms", multiplier = 2.0, max = "5s")`: `initial`,
///   times `multiplier` per retry, capped at `max` (`multiplier` defaults to 2.0 and
///   must be at least 1);
/// - `backoff = random(min = "50ms", max = "500ms")`: drawn uniformly between the two.
///
/// Without `backoff`, a retry happens at once.
///
/// ## Listeners
///
/// `listener(EXPR)` registers the value once for each listener trait it implements,
/// all sharing one `Arc`: `StepExecutionListener` and `ChunkListener` on every step,
/// on a chunk step whose return type names its item types also `ItemReadListener<I>`,
/// `ItemProcessListener<I, O>` and `ItemWriteListener<O>`, and on a fault-tolerant
/// step also `RetryListener` and `SkipListener<I, O>`. The
/// value may be the listener itself or an `Arc` of it (so a test can keep a handle and
/// look at what it heard). Retry and skip listeners are not registered on other steps,
/// which never call them (a retry listener would even switch the step to the
/// fault-tolerant loop); a value that implements none of the traits the step calls is
/// a compile error on the expression. `I` and `O` come from the return type, which on
/// a fault-tolerant step with listeners must be written `impl ChunkStep<I, O>` or
/// `Result<impl ChunkStep<I, O>, E>`.
///
/// ## Mistakes
///
/// Mistakes in the attribute are compile errors on the tokens concerned, all reported by
/// one build: unknown keys (with the list of keys), repeated keys, `chunk = 0`,
/// `chunk(size = 0)`, both spellings of `chunk`, `timeout` with `policy`, a malformed
/// duration, `retry` without error types or without `limit` (or with `limit` below 2),
/// `skip` without error types, the same error in `retry` and `no_retry` (or `skip` and
/// `no_skip`), `no_retry` without `retry`, fault-tolerance keys on a tasklet step, and
/// a listener that implements none of the listener traits. Each has a case in
/// `tests/ui/step/fail/`.
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
///         let audit = Arc::new(Audit::default());
///         StepBuilder::new("import_orders")
///             .chunk_size(100)
///             .chunk_timeout(Duration::from_millis(30_000))
///             .start_limit(3)
///             .retry(ErrorMatcher::of::<Timeout>())
///             .retry(ErrorMatcher::when::<ApiError>("ApiError::Busy { .. }", |e: &ApiError| {
///                 matches!(e, ApiError::Busy { .. })
///             }))
///             .retry_limit(3)
///             .backoff(Backoff::Fixed(Duration::from_millis(100)))
///             .no_retry(ErrorMatcher::when::<ApiError>("ApiError::Status(400, ..)", |e: &ApiError| {
///                 matches!(e, ApiError::Status(400, ..))
///             }))
///             .skip(ErrorMatcher::of::<BadRecord>())
///             .skip_limit(10)
///             // One call for each listener trait `Audit` implements; here, all four.
///             .listener(audit.clone())
///             .chunk_listener(audit.clone())
///             .retry_listener(audit.clone())
///             .skip_listener::<Order, Order>(audit)
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
/// `impl Tasklet`. `chunk(policy = EXPR)` becomes `.completion_policy(EXPR)`. The
/// listener calls are where the real expansion differs from hand-written code: which
/// traits a value implements is decided at compile time by method resolution on a
/// small wrapper (for each trait, an impl that exists only when the value implements
/// it is preferred over a fallback that does nothing), and a final check fails to
/// compile, at the listener expression, when no trait matched. The real expansion
/// names everything by absolute paths through `::batch::__private`, keeps those helper
/// items inside `const _: () = { … };`, and emits nothing else.
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
