//! Checking `#[step]`: the keys' values, repeated keys, how the keys fit together,
//! and the shape of the function.

use super::parse::{
    BackoffSpec, ChunkItem, ErrorSpec, ExponentialItem, Input, PartitionItem, RETRY_FORM,
    RandomItem, RetryItem, SKIP_FORM, STEP, SkipItem, StepArg, StepArgs, StepFn,
};
use crate::args::{self, KeyList, KeyValue};
use crate::errors::{Errors, Once};
use crate::runtime::Runtime;
use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Lit, LitBool, LitFloat, LitInt, LitStr, ReturnType, Type};

/// The checked configuration of one step.
#[derive(Default)]
pub(crate) struct StepConfig {
    pub(crate) runtime: Runtime,
    pub(crate) name: Option<LitStr>,
    /// `Some` makes a chunk-oriented step, `None` a tasklet step.
    pub(crate) chunk: Option<ChunkConfig>,
    pub(crate) start_limit: Option<LitInt>,
    pub(crate) allow_start_if_complete: Option<LitBool>,
    pub(crate) fault: FaultConfig,
    /// `listener(expr)`, in order.
    pub(crate) listeners: Vec<Expr>,
    /// `promote("key", …)`: the step context keys promoted to the job context.
    pub(crate) promote: Vec<syn::LitStr>,
    /// `Some` makes a partitioned step, whose function returns the partitioner.
    pub(crate) partition: Option<PartitionConfig>,
}

/// `partition(worker = …, …)`: the settings of `Partition`'s builder.
pub(crate) struct PartitionConfig {
    pub(crate) worker: Expr,
    pub(crate) grid_size: Option<LitInt>,
    pub(crate) grid_size_param: Option<LitStr>,
    pub(crate) concurrency: Option<LitInt>,
    pub(crate) remote: Option<LitBool>,
    pub(crate) remote_param: Option<LitStr>,
}

/// `chunk = N` or `chunk(...)`.
pub(crate) struct ChunkConfig {
    /// Items per chunk; absent only with a custom `policy`.
    pub(crate) size: Option<LitInt>,
    pub(crate) completion: Completion,
}

pub(crate) enum Completion {
    /// After `size` items.
    Size,
    /// After `size` items or this many milliseconds, whichever comes first.
    Timeout(u64),
    /// As the policy says.
    Policy(Expr),
}

/// The fault-tolerance keys. Empty lists and `None` mean "not given".
#[derive(Default)]
pub(crate) struct FaultConfig {
    pub(crate) retry: Vec<ErrorSpec>,
    pub(crate) retry_limit: Option<LitInt>,
    pub(crate) backoff: Option<Backoff>,
    pub(crate) no_retry: Vec<ErrorSpec>,
    pub(crate) skip: Vec<ErrorSpec>,
    pub(crate) skip_limit: Option<LitInt>,
    pub(crate) no_skip: Vec<ErrorSpec>,
    pub(crate) no_rollback: Vec<ErrorSpec>,
    pub(crate) processor_non_transactional: bool,
}

impl FaultConfig {
    /// Whether the step runs the fault-tolerant chunk loop (any key above given).
    pub(crate) fn enabled(&self) -> bool {
        !self.retry.is_empty()
            || !self.no_retry.is_empty()
            || !self.skip.is_empty()
            || !self.no_skip.is_empty()
            || !self.no_rollback.is_empty()
            || self.processor_non_transactional
    }
}

/// A backoff with its durations in milliseconds.
pub(crate) enum Backoff {
    Fixed(u64),
    Exponential {
        initial: u64,
        multiplier: LitFloat,
        max: u64,
    },
    Random {
        min: u64,
        max: u64,
    },
}

/// Folds the keys as written into a configuration, reporting bad values, repeated
/// keys and keys that do not fit together. A key whose value is bad is still recorded
/// (as `None`) so that repeating it is reported too.
pub(crate) fn config(args: &StepArgs, errors: &mut Errors) -> StepConfig {
    for error in &args.errors {
        errors.push(error.clone());
    }
    let mut runtime = Once::new(STEP);
    let mut name = Once::new(STEP);
    let mut chunk = Once::new(STEP);
    let mut chunk_with = Once::list(STEP);
    let mut start_limit = Once::new(STEP);
    let mut allow_start_if_complete = Once::new(STEP);
    let mut promote: Vec<syn::LitStr> = Vec::new();
    let mut retry = Once::list(STEP);
    let mut no_retry = Once::list(STEP);
    let mut skip = Once::list(STEP);
    let mut no_skip = Once::list(STEP);
    let mut no_rollback = Once::list(STEP);
    let mut processor_non_transactional = Once::new(STEP);
    let mut listeners = Vec::new();
    let mut partition = Once::new(STEP);
    // Keys that only a chunk-oriented step can have, with how they are written.
    let mut fault_keys: Vec<(TokenStream, &str)> = Vec::new();
    // Keys that a partitioned step's manager has no use for: they belong on its worker.
    let mut worker_keys: Vec<(TokenStream, &str)> = Vec::new();

    for arg in &args.args {
        match arg {
            StepArg::Chunk(pair) => {
                worker_keys.push((pair.key.to_token_stream(), "chunk"));
                let value = args::positive_int::<_, u64>(
                    errors,
                    pair,
                    "a chunk holds at least one item: write `chunk = 1` or more, or remove \
                     `chunk` to make a tasklet step",
                );
                if chunk_with.is_set() {
                    both_chunk_forms(errors, pair);
                }
                chunk.set(errors, pair, value);
            }
            StepArg::ChunkWith(list) => {
                worker_keys.push((list.key.to_token_stream(), "chunk(...)"));
                let value = chunk_with_config(list, errors);
                if chunk.is_set() {
                    both_chunk_forms(errors, list);
                }
                chunk_with.set(errors, list, value);
            }
            StepArg::Name(pair) => {
                let value = args::non_empty_str(errors, pair, "load_orders");
                name.set(errors, pair, value);
            }
            StepArg::StartLimit(pair) => {
                worker_keys.push((pair.key.to_token_stream(), "start_limit"));
                let value = args::positive_int::<_, u32>(
                    errors,
                    pair,
                    "a start limit below 1 would forbid the step from ever starting: write \
                     `start_limit = 1` or more, or remove `start_limit` for no limit",
                );
                start_limit.set(errors, pair, value);
            }
            StepArg::AllowStartIfComplete(flag) => {
                worker_keys.push((flag.key.to_token_stream(), "allow_start_if_complete"));
                let value = args::flag(errors, flag);
                allow_start_if_complete.set(errors, flag, value);
            }
            StepArg::Retry(list) => {
                fault_keys.push((list.key.to_token_stream(), "retry(...)"));
                let value = retry_config(list, errors);
                retry.set(errors, list, value);
            }
            StepArg::NoRetry(list) => {
                fault_keys.push((list.key.to_token_stream(), "no_retry(...)"));
                let value = error_list(list, errors);
                no_retry.set(errors, list, (list, value));
            }
            StepArg::Skip(list) => {
                fault_keys.push((list.key.to_token_stream(), "skip(...)"));
                let value = skip_config(list, errors);
                skip.set(errors, list, value);
            }
            StepArg::NoSkip(list) => {
                fault_keys.push((list.key.to_token_stream(), "no_skip(...)"));
                let value = error_list(list, errors);
                no_skip.set(errors, list, (list, value));
            }
            StepArg::NoRollback(list) => {
                fault_keys.push((list.key.to_token_stream(), "no_rollback(...)"));
                let value = error_list(list, errors);
                no_rollback.set(errors, list, value);
            }
            StepArg::ProcessorNonTransactional(flag) => {
                fault_keys.push((flag.key.to_token_stream(), "processor_non_transactional"));
                let value = args::flag(errors, flag);
                processor_non_transactional.set(errors, flag, value);
            }
            StepArg::Promote(list) => {
                worker_keys.push((list.key.to_token_stream(), "promote(...)"));
                for error in &list.errors {
                    errors.push(error.clone());
                }
                if list.items.is_empty() {
                    errors.at(
                        list,
                        "`promote()` needs the keys to promote: write `promote(\"orders.total\")`",
                    );
                }
                for key in &list.items {
                    if key.value().is_empty() {
                        errors.at(key, "a promoted key must not be empty");
                    } else if promote
                        .iter()
                        .any(|k: &syn::LitStr| k.value() == key.value())
                    {
                        errors.at(key, "this key is already promoted: name each key once");
                    } else {
                        promote.push(key.clone());
                    }
                }
            }
            StepArg::Listener(list) => {
                worker_keys.push((list.key.to_token_stream(), "listener(...)"));
                for error in &list.errors {
                    errors.push(error.clone());
                }
                match list.items.as_slice() {
                    [expr] => listeners.push(expr.clone()),
                    [] => errors.at(
                        list,
                        "`listener()` needs the listener: write `listener(AuditListener::default())`",
                    ),
                    [_, extra @ ..] => errors.at(
                        quote!(#(#extra)*),
                        "`listener(...)` takes one listener: write one `listener(...)` per listener",
                    ),
                }
            }
            StepArg::Partition(list) => {
                let value = partition_config(list, errors);
                partition.set(errors, list, value);
            }
            StepArg::Crate(pair) => {
                let value = args::crate_path(errors, pair);
                runtime.set(errors, pair, value);
            }
        }
    }

    let is_partition = partition.is_set();
    if is_partition {
        for (key, form) in fault_keys.iter().chain(&worker_keys) {
            errors.at(
                key,
                format!(
                    "`{form}` does not apply to a partitioned step: its manager only splits \
                     the work and sums the partitions; put `{form}` on the worker step"
                ),
            );
        }
    }

    // A key that did not parse may have been a misspelt `chunk`; then "this is a
    // tasklet step" would only add noise.
    let is_chunk_step = chunk.is_set() || chunk_with.is_set();
    if !is_chunk_step && !is_partition && args.errors.is_empty() {
        for (key, form) in &fault_keys {
            errors.at(
                key,
                format!(
                    "`{form}` is for chunk-oriented steps, and this is a tasklet step (it has \
                     no `chunk`): add `chunk = N` and return `impl ChunkStep<I, O>`, or remove \
                     `{form}` and handle the error inside the tasklet"
                ),
            );
        }
    }

    let (retry_given, skip_given) = (retry.is_set(), skip.is_set());
    let retry = retry.get().flatten();
    let skip = skip.get().flatten();
    let no_retry = no_retry.get();
    let no_skip = no_skip.get();
    if let Some((list, no_retry)) = &no_retry {
        match &retry {
            Some(retry) => in_both(errors, &retry.errors, "retry", no_retry, "no_retry"),
            None if !retry_given => only_narrows(errors, list, "no_retry", RETRY_FORM),
            None => {}
        }
    }
    if let Some((list, no_skip)) = &no_skip {
        match &skip {
            Some(skip) => in_both(errors, &skip.errors, "skip", no_skip, "no_skip"),
            None if !skip_given => only_narrows(errors, list, "no_skip", SKIP_FORM),
            None => {}
        }
    }

    let (retry, retry_limit, backoff) = match retry {
        Some(r) => (r.errors, Some(r.limit), r.backoff),
        None => (Vec::new(), None, None),
    };
    let (skip, skip_limit) = match skip {
        Some(s) => (s.errors, s.limit),
        None => (Vec::new(), None),
    };
    let chunk = match (chunk.get(), chunk_with.get()) {
        (Some(Some(size)), None) => Some(ChunkConfig {
            size: Some(size),
            completion: Completion::Size,
        }),
        (None, Some(Some(config))) => Some(config),
        // Invalid: reported above, and nothing is expanded.
        _ => None,
    };
    StepConfig {
        runtime: runtime.get().flatten().unwrap_or_default(),
        name: name.get().flatten(),
        chunk,
        start_limit: start_limit.get().flatten(),
        allow_start_if_complete: allow_start_if_complete.get().flatten(),
        fault: FaultConfig {
            retry,
            retry_limit,
            backoff,
            no_retry: no_retry.map(|(_, v)| v).unwrap_or_default(),
            skip,
            skip_limit,
            no_skip: no_skip.map(|(_, v)| v).unwrap_or_default(),
            no_rollback: no_rollback.get().unwrap_or_default(),
            processor_non_transactional: processor_non_transactional
                .get()
                .flatten()
                .is_some_and(|b| b.value),
        },
        listeners,
        promote,
        partition: partition.get().flatten(),
    }
}

/// `partition(worker = EXPR, grid_size = N, grid_size_param = "…", concurrency = N,
/// remote [= bool], remote_param = "…")`; `worker` is required.
fn partition_config(
    list: &KeyList<impl ToTokens, PartitionItem>,
    errors: &mut Errors,
) -> Option<PartitionConfig> {
    const PLACE: &str = "`partition(...)`";
    for error in &list.errors {
        errors.push(error.clone());
    }
    let mut worker = Once::new(PLACE);
    let mut grid_size = Once::new(PLACE);
    let mut grid_size_param = Once::new(PLACE);
    let mut concurrency = Once::new(PLACE);
    let mut remote = Once::new(PLACE);
    let mut remote_param = Once::new(PLACE);
    for item in &list.items {
        match item {
            PartitionItem::Worker(pair) => worker.set(errors, pair, Some(pair.value.clone())),
            PartitionItem::GridSize(pair) => {
                let value = args::positive_int::<_, usize>(
                    errors,
                    pair,
                    "a partitioned step makes at least one partition: write `grid_size = 1` or more",
                );
                grid_size.set(errors, pair, value);
            }
            PartitionItem::GridSizeParam(pair) => {
                let value = args::non_empty_str(errors, pair, "partitions");
                grid_size_param.set(errors, pair, value);
            }
            PartitionItem::Concurrency(pair) => {
                let value = args::positive_int::<_, usize>(
                    errors,
                    pair,
                    "at least one partition must run at a time: write `concurrency = 1` or more",
                );
                concurrency.set(errors, pair, value);
            }
            PartitionItem::Remote(flag) => {
                let value = args::flag(errors, flag);
                remote.set(errors, flag, value);
            }
            PartitionItem::RemoteParam(pair) => {
                let value = args::non_empty_str(errors, pair, "remote");
                remote_param.set(errors, pair, value);
            }
        }
    }
    let worker = worker.get().flatten();
    if worker.is_none() && list.errors.is_empty() {
        errors.at(
            list,
            "`partition(...)` needs the step each partition runs: write \
             `partition(worker = copy_range {}, grid_size = 4)`",
        );
    }
    Some(PartitionConfig {
        worker: worker?,
        grid_size: grid_size.get().flatten(),
        grid_size_param: grid_size_param.get().flatten(),
        concurrency: concurrency.get().flatten(),
        remote: remote.get().flatten(),
        remote_param: remote_param.get().flatten(),
    })
}

fn both_chunk_forms(errors: &mut Errors, second: impl ToTokens) {
    errors.at(
        second,
        "`chunk = N` and `chunk(...)` both set the chunk: keep one; `chunk(size = N, …)` \
         says everything `chunk = N` does",
    );
}

/// `chunk(size = N, timeout = "30s")` / `chunk(size = N, policy = EXPR)`.
fn chunk_with_config(
    list: &KeyList<impl ToTokens, ChunkItem>,
    errors: &mut Errors,
) -> Option<ChunkConfig> {
    const PLACE: &str = "`chunk(...)`";
    for error in &list.errors {
        errors.push(error.clone());
    }
    let mut size = Once::new(PLACE);
    let mut timeout = Once::new(PLACE);
    let mut policy = Once::new(PLACE);
    let mut valid = list.errors.is_empty();
    for item in &list.items {
        match item {
            ChunkItem::Size(pair) => {
                let value = args::positive_int::<_, u64>(
                    errors,
                    pair,
                    "a chunk holds at least one item: write `chunk(size = 1)` or more, or \
                     remove `chunk(...)` to make a tasklet step",
                );
                valid &= value.is_some();
                size.set(errors, pair, value);
            }
            ChunkItem::Timeout(pair) => {
                let value = match args::duration(errors, &pair.value, "timeout = {}") {
                    Some(0) => {
                        errors.at(
                            &pair.value,
                            "a chunk timeout of zero would end every chunk after its first \
                             item: write a longer one, such as `timeout = \"30s\"`",
                        );
                        None
                    }
                    other => other,
                };
                valid &= value.is_some();
                timeout.set(errors, pair, (pair, value));
            }
            ChunkItem::Policy(pair) => policy.set(errors, pair, pair),
        }
    }
    let size = size.get();
    let completion = match (timeout.get(), policy.get()) {
        (Some((_, ms)), None) => ms.map(Completion::Timeout),
        (None, Some(policy)) => Some(Completion::Policy(policy.value.clone())),
        (None, None) => Some(Completion::Size),
        (Some(_), Some(policy)) => {
            errors.at(
                policy,
                "a chunk completes by `timeout` or by `policy`, not both: for both, give a \
                 `policy` that combines yours with a `TimeoutTerminationPolicy` in a \
                 `CompositeCompletionPolicy`",
            );
            None
        }
    };
    // With a policy, the policy alone decides and `size` only sizes the buffer; in the
    // other forms the size is what ends a chunk.
    if size.is_none() && !matches!(completion, Some(Completion::Policy(_))) {
        let fix = if list
            .items
            .iter()
            .any(|i| matches!(i, ChunkItem::Timeout(_)))
        {
            "a chunk ends at `size` items or at the timeout, whichever comes first: write \
             `chunk(size = 100, timeout = \"30s\")`"
        } else {
            "write `chunk(size = 100)`, or `chunk = 100`"
        };
        errors.at(list, format!("`chunk(...)` needs a `size`: {fix}"));
        valid = false;
    }
    let size = match size {
        Some(size) => Some(size?),
        None => None,
    };
    let completion = completion?;
    valid.then_some(ChunkConfig { size, completion })
}

/// What `retry(...)` says, once checked.
struct RetryConfig {
    errors: Vec<ErrorSpec>,
    limit: LitInt,
    backoff: Option<Backoff>,
}

fn retry_config(
    list: &KeyList<impl ToTokens, RetryItem>,
    errors: &mut Errors,
) -> Option<RetryConfig> {
    const PLACE: &str = "`retry(...)`";
    for error in &list.errors {
        errors.push(error.clone());
    }
    let mut types = Vec::new();
    let mut limit = Once::new(PLACE);
    let mut backoff = Once::new(PLACE);
    let mut valid = list.errors.is_empty();
    for item in &list.items {
        match item {
            RetryItem::Error(spec) => types.push(spec.clone()),
            RetryItem::Limit(pair) => {
                let value = retry_limit(errors, pair);
                valid &= value.is_some();
                limit.set(errors, pair, value);
            }
            RetryItem::Backoff(pair) => {
                let value = backoff_config(&pair.value, errors);
                valid &= value.is_some();
                backoff.set(errors, pair, value);
            }
        }
    }
    valid &= no_repeats(errors, &types, "retry");
    let limit = limit.get();
    // An entry that did not parse may have been the missing type or limit.
    if !list.errors.is_empty() {
        return None;
    }
    if types.is_empty() {
        let written = args::pretty(list);
        errors.at(
            list,
            format!(
                "`{written}` names no error to retry: list the error types first, as in \
                 `retry(TimeoutError, limit = 3)`; an error is retried only when its type is listed"
            ),
        );
        return None;
    }
    let Some(limit) = limit else {
        let types = types
            .iter()
            .map(args::pretty)
            .collect::<Vec<_>>()
            .join(", ");
        errors.at(
            list,
            format!(
                "`retry({types})` needs a limit, the number of attempts in all, the first \
                 included: write `retry({types}, limit = 3)` for one try and two retries"
            ),
        );
        return None;
    };
    let limit = limit?;
    let backoff = backoff.get().flatten();
    valid.then_some(RetryConfig {
        errors: types,
        limit,
        backoff,
    })
}

/// `limit = N` in `retry(...)`: at least 2, since it counts the first attempt too.
fn retry_limit<K: ToTokens>(errors: &mut Errors, pair: &KeyValue<K, Expr>) -> Option<LitInt> {
    let too_low = "the retry limit counts every attempt, the first included, so it must be \
                   at least 2 for anything to be retried: write `limit = 2` for one retry, \
                   `limit = 3` for two";
    let limit = args::positive_int::<_, u32>(errors, pair, too_low)?;
    if limit.base10_digits() == "1" {
        errors.at(pair, too_low);
        return None;
    }
    Some(limit)
}

fn backoff_config(spec: &BackoffSpec, errors: &mut Errors) -> Option<Backoff> {
    match spec {
        BackoffSpec::Fixed(list) => {
            for error in &list.errors {
                errors.push(error.clone());
            }
            match list.items.as_slice() {
                [delay] => Some(Backoff::Fixed(args::duration(errors, delay, "fixed({})")?)),
                _ => {
                    errors.at(
                        list,
                        "`fixed(...)` takes the one pause before each retry: write \
                         `fixed(\"100ms\")`",
                    );
                    None
                }
            }
        }
        BackoffSpec::Exponential(list) => {
            const PLACE: &str = "`exponential(...)`";
            for error in &list.errors {
                errors.push(error.clone());
            }
            let mut initial = Once::new(PLACE);
            let mut multiplier = Once::new(PLACE);
            let mut max = Once::new(PLACE);
            for item in &list.items {
                match item {
                    ExponentialItem::Initial(pair) => {
                        let value = args::duration(errors, &pair.value, "initial = {}");
                        initial.set(errors, pair, value);
                    }
                    ExponentialItem::Multiplier(pair) => {
                        let value = backoff_multiplier(errors, pair);
                        multiplier.set(errors, pair, value);
                    }
                    ExponentialItem::Max(pair) => {
                        let value = args::duration(errors, &pair.value, "max = {}");
                        max.set(errors, pair, (pair, value));
                    }
                }
            }
            let (Some(initial), Some((max_pair, max))) = (initial.get(), max.get()) else {
                errors.at(
                    list,
                    "`exponential(...)` needs `initial` and `max` (`multiplier` is 2.0 unless \
                     given): write `exponential(initial = \"100ms\", multiplier = 2.0, max = \"5s\")`",
                );
                return None;
            };
            let (initial, max) = (initial?, max?);
            if max < initial {
                errors.at(
                    max_pair,
                    "`max` caps the pause, so it cannot be below `initial`: raise `max` or \
                     lower `initial`",
                );
                return None;
            }
            let multiplier = match multiplier.get() {
                Some(value) => value?,
                None => LitFloat::new("2.0", proc_macro2::Span::call_site()),
            };
            Some(Backoff::Exponential {
                initial,
                multiplier,
                max,
            })
        }
        BackoffSpec::Random(list) => {
            const PLACE: &str = "`random(...)`";
            for error in &list.errors {
                errors.push(error.clone());
            }
            let mut min = Once::new(PLACE);
            let mut max = Once::new(PLACE);
            for item in &list.items {
                match item {
                    RandomItem::Min(pair) => {
                        let value = args::duration(errors, &pair.value, "min = {}");
                        min.set(errors, pair, value);
                    }
                    RandomItem::Max(pair) => {
                        let value = args::duration(errors, &pair.value, "max = {}");
                        max.set(errors, pair, (pair, value));
                    }
                }
            }
            let (Some(min), Some((max_pair, max))) = (min.get(), max.get()) else {
                errors.at(
                    list,
                    "`random(...)` needs both bounds of the pause: write \
                     `random(min = \"50ms\", max = \"500ms\")`",
                );
                return None;
            };
            let (min, max) = (min?, max?);
            if max < min {
                errors.at(
                    max_pair,
                    "`max` cannot be below `min`: the pause is drawn between them",
                );
                return None;
            }
            Some(Backoff::Random { min, max })
        }
    }
}

/// `multiplier = 2.0` (or `2`): at least 1, or the pauses would shrink.
fn backoff_multiplier<K: ToTokens>(
    errors: &mut Errors,
    pair: &KeyValue<K, Expr>,
) -> Option<LitFloat> {
    let value = match &pair.value {
        Expr::Lit(ExprLit {
            lit: Lit::Float(f), ..
        }) => f.base10_parse::<f64>().ok(),
        Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        }) => i.base10_parse::<f64>().ok(),
        _ => None,
    };
    match value {
        Some(v) if v >= 1.0 && v.is_finite() => {
            Some(LitFloat::new(&format!("{v:?}"), pair.value.span()))
        }
        Some(_) => {
            errors.at(
                pair,
                "a `multiplier` below 1 would shrink the pause at each retry: write \
                 `multiplier = 2.0`, or use `fixed(...)` for the same pause every time",
            );
            None
        }
        None => {
            errors.at(
                &pair.value,
                "`multiplier` takes a number literal: write `multiplier = 2.0`",
            );
            None
        }
    }
}

/// What `skip(...)` says, once checked.
struct SkipConfig {
    errors: Vec<ErrorSpec>,
    limit: Option<LitInt>,
}

fn skip_config(list: &KeyList<impl ToTokens, SkipItem>, errors: &mut Errors) -> Option<SkipConfig> {
    const PLACE: &str = "`skip(...)`";
    for error in &list.errors {
        errors.push(error.clone());
    }
    let mut types = Vec::new();
    let mut limit = Once::new(PLACE);
    let mut valid = list.errors.is_empty();
    for item in &list.items {
        match item {
            SkipItem::Error(spec) => types.push(spec.clone()),
            SkipItem::Limit(pair) => {
                let value = args::positive_int::<_, u64>(
                    errors,
                    pair,
                    "a skip limit of 0 lets the step skip nothing: write `limit = 1` or more, \
                     or remove `skip(...)`",
                );
                valid &= value.is_some();
                limit.set(errors, pair, value);
            }
        }
    }
    valid &= no_repeats(errors, &types, "skip");
    if !list.errors.is_empty() {
        return None;
    }
    if types.is_empty() {
        let written = args::pretty(list);
        errors.at(
            list,
            format!(
                "`{written}` names no error to skip: list the error types first, as in \
                 `skip(BadRecord, limit = 10)`; an item is skipped only when its error's type \
                 is listed"
            ),
        );
        return None;
    }
    let limit = match limit.get() {
        Some(limit) => Some(limit?),
        None => None,
    };
    valid.then_some(SkipConfig {
        errors: types,
        limit,
    })
}

/// The entries of `no_retry(...)`, `no_skip(...)` or `no_rollback(...)`.
fn error_list<K: ToTokens>(list: &KeyList<K, ErrorSpec>, errors: &mut Errors) -> Vec<ErrorSpec> {
    for error in &list.errors {
        errors.push(error.clone());
    }
    let name = list.key.to_token_stream().to_string();
    if list.items.is_empty() && list.errors.is_empty() {
        errors.at(
            list,
            format!("`{name}()` names no error: list the error types, or remove `{name}()`"),
        );
    }
    no_repeats(errors, &list.items, &name);
    list.items.clone()
}

/// Reports an error listed twice in one list; `true` when there is none.
fn no_repeats(errors: &mut Errors, list: &[ErrorSpec], name: &str) -> bool {
    let mut seen: Vec<String> = Vec::new();
    let mut ok = true;
    for spec in list {
        let key = spec.to_token_stream().to_string();
        if seen.contains(&key) {
            errors.at(
                spec,
                format!(
                    "`{}` is listed twice in `{name}(...)`: remove one",
                    args::pretty(spec)
                ),
            );
            ok = false;
        } else {
            seen.push(key);
        }
    }
    ok
}

/// Reports each error named in both `yes(...)` and `no(...)`, at the second list.
fn in_both(
    errors: &mut Errors,
    yes: &[ErrorSpec],
    yes_name: &str,
    no: &[ErrorSpec],
    no_name: &str,
) {
    for spec in no {
        let key = spec.to_token_stream().to_string();
        if yes.iter().any(|y| y.to_token_stream().to_string() == key) {
            let written = args::pretty(spec);
            errors.at(
                spec,
                format!(
                    "`{written}` is in both `{yes_name}(...)` and `{no_name}(...)`, which \
                     contradict each other: remove it from one of them (`{no_name}` is for \
                     exceptions to `{yes_name}`, such as `{yes_name}(ApiError, …)` with \
                     `{no_name}(ApiError::BadRequest {{ .. }})`)"
                ),
            );
        }
    }
}

/// `no_retry(...)` without `retry(...)`, or `no_skip(...)` without `skip(...)`.
fn only_narrows(errors: &mut Errors, list: &impl ToTokens, name: &str, example: &str) {
    let base = name.trim_start_matches("no_");
    errors.at(
        list,
        format!(
            "`{name}(...)` makes exceptions to `{base}(...)`, which this step does not have, \
             so it changes nothing: add `{example}`, or remove `{name}(...)`"
        ),
    );
}

/// Checks the function: it must be callable by the framework with injected arguments,
/// and show what the keys need from it.
pub(crate) fn function(f: &StepFn, config: &StepConfig, errors: &mut Errors) {
    // On a fault-tolerant step a listener may also be a `SkipListener<I, O>`, and the
    // expansion can only ask "is it one?" with `I` and `O` in hand.
    if config.chunk.is_some()
        && config.fault.enabled()
        && !config.listeners.is_empty()
        && f.items.is_none()
        && let ReturnType::Type(_, ty) = &f.item.sig.output
    {
        errors.at(
            ty,
            "`listener(...)` on a step with fault-tolerance keys also registers the value as \
             a `SkipListener<I, O>` if it is one, and reads `I` and `O` from the return type: \
             write it as `impl ChunkStep<I, O>` or `Result<impl ChunkStep<I, O>, E>`",
        );
    }
    if config.partition.is_some() {
        partition_function(f, errors);
        return;
    }
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

/// A partitioned step's function is called once, when the flow is built, for the
/// partitioner; what a partitioner needs of the launch it reads from the scope that
/// `Partitioner::partition` receives.
fn partition_function(f: &StepFn, errors: &mut Errors) {
    f.item.check_plain_fn(
        errors,
        "step",
        "the partitioner: `-> KeyRangePartitioner`, `-> FilePartitioner`, or another \
         `Partitioner`",
    );
    if let Some(asyncness) = &f.item.sig.asyncness {
        errors.at(
            asyncness,
            "a partitioned step's function returns its partitioner when the flow is built, \
             so it cannot be `async`; remove `async` (the partitioner's own `partition` runs \
             when the step starts)",
        );
    }
    if !f.inputs.is_empty() {
        let inputs = &f.item.sig.inputs;
        errors.at(
            inputs,
            "a partitioned step's function returns its partitioner when the flow is built, \
             so it takes no arguments; the partitioner reads the launch's parameters and \
             resources from the scope its `partition` method receives",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_keeps_its_settings() {
        let config = config_of(
            r#"name = "copy", partition(worker = copy_range {}, grid_size = 4, grid_size_param = "partitions", concurrency = 2, remote, remote_param = "remote")"#,
        );
        let partition = config.partition.expect("a partitioned step");
        assert_eq!(args::pretty(&partition.worker), "copy_range { }");
        assert_eq!(partition.grid_size.unwrap().base10_digits(), "4");
        assert_eq!(partition.grid_size_param.unwrap().value(), "partitions");
        assert_eq!(partition.concurrency.unwrap().base10_digits(), "2");
        assert!(partition.remote.unwrap().value);
        assert_eq!(partition.remote_param.unwrap().value(), "remote");
        assert!(config.chunk.is_none());
    }

    #[test]
    fn promoted_keys_are_kept_once_each() {
        let args: StepArgs = syn::parse_str(r#"promote("a", "b")"#).unwrap();
        let mut errors = Errors::default();
        let config = config(&args, &mut errors);
        assert!(errors.finish().is_ok());
        let keys: Vec<String> = config.promote.iter().map(|k| k.value()).collect();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(
            errors_of(r#"promote("a", "a"), promote("")"#),
            [
                "this key is already promoted: name each key once",
                "a promoted key must not be empty"
            ]
        );
    }

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
        assert_eq!(config.chunk.unwrap().size.unwrap().base10_digits(), "5");
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

    fn config_of(src: &str) -> StepConfig {
        let args: StepArgs = syn::parse_str(src).unwrap();
        let mut errors = Errors::default();
        let config = config(&args, &mut errors);
        if let Err(e) = errors.finish() {
            panic!("{src}: {e}");
        }
        config
    }

    #[test]
    fn fault_tolerance_is_kept() {
        let config = config_of(
            "chunk(size = 5, timeout = \"2s\"), \
             retry(Timeout, ApiError::Busy { .. }, limit = 3, \
                   backoff = exponential(initial = \"100ms\", max = \"1m\")), \
             no_retry(ApiError::BadRequest(..)), skip(Bad), no_skip(Worse), \
             no_rollback(Minor), processor_non_transactional, listener(Audit), listener(Log)",
        );
        let chunk = config.chunk.unwrap();
        assert_eq!(chunk.size.unwrap().base10_digits(), "5");
        assert!(matches!(chunk.completion, Completion::Timeout(2_000)));
        let fault = &config.fault;
        assert!(fault.enabled());
        assert_eq!(fault.retry.len(), 2);
        assert_eq!(fault.retry_limit.as_ref().unwrap().base10_digits(), "3");
        assert!(matches!(
            &fault.backoff,
            Some(Backoff::Exponential { initial: 100, max: 60_000, multiplier }) if multiplier.base10_digits() == "2.0"
        ));
        assert_eq!(fault.no_retry.len(), 1);
        assert!(fault.skip_limit.is_none(), "the runtime's default applies");
        assert!(fault.processor_non_transactional);
        assert_eq!(config.listeners.len(), 2);

        let config = config_of("chunk(policy = MyPolicy), listener(Audit)");
        let chunk = config.chunk.unwrap();
        assert!(chunk.size.is_none());
        assert!(matches!(chunk.completion, Completion::Policy(_)));
        assert!(!config.fault.enabled());

        let config = config_of(
            "chunk = 1, retry(A, limit = 2, backoff = fixed(\"1h\")), processor_non_transactional = false",
        );
        assert!(matches!(
            config.fault.backoff,
            Some(Backoff::Fixed(3_600_000))
        ));
        assert!(!config.fault.processor_non_transactional);
        assert!(config.fault.enabled());
    }

    #[test]
    fn fault_tolerance_mistakes() {
        let cases: &[(&str, &str)] = &[
            (
                "chunk = 2, retry(limit = 3)",
                "`retry(limit = 3)` names no error to retry",
            ),
            ("chunk = 2, retry(A)", "`retry(A)` needs a limit"),
            (
                "chunk = 2, retry(A, limit = 1)",
                "the retry limit counts every attempt",
            ),
            (
                "chunk = 2, retry(A, limit = 0)",
                "the retry limit counts every attempt",
            ),
            (
                "chunk = 2, retry(A, A, limit = 2)",
                "`A` is listed twice in `retry(...)`",
            ),
            (
                "chunk = 2, skip(limit = 3)",
                "`skip(limit = 3)` names no error to skip",
            ),
            ("chunk = 2, skip(A, limit = 0)", "a skip limit of 0"),
            (
                "chunk = 2, retry(A, limit = 2), no_retry(A)",
                "`A` is in both `retry(...)` and `no_retry(...)`",
            ),
            (
                "chunk = 2, skip(E::V { .. }), no_skip(E::V{..})",
                "`E::V { .. }` is in both `skip(...)` and `no_skip(...)`",
            ),
            (
                "chunk = 2, no_retry(A)",
                "`no_retry(...)` makes exceptions to `retry(...)`",
            ),
            (
                "chunk = 2, no_skip(A)",
                "`no_skip(...)` makes exceptions to `skip(...)`",
            ),
            ("chunk = 2, no_rollback()", "`no_rollback()` names no error"),
            (
                "chunk = 2, retry(A, limit = 2), retry(B, limit = 2)",
                "duplicate `retry` in `#[step(...)]`: it may be given only once; write all its \
                 entries in one `retry(...)`",
            ),
            (
                "retry(A, limit = 2)",
                "`retry(...)` is for chunk-oriented steps",
            ),
            (
                "processor_non_transactional",
                "`processor_non_transactional` is for chunk",
            ),
            (
                "chunk(size = 0)",
                "a chunk holds at least one item: write `chunk(size = 1)`",
            ),
            (
                "chunk = 2, chunk(size = 2)",
                "`chunk = N` and `chunk(...)` both set the chunk",
            ),
            (
                "chunk(size = 2, timeout = \"1s\", policy = P)",
                "a chunk completes by `timeout` or by `policy`, not both",
            ),
            (
                "chunk(timeout = \"1s\")",
                "`chunk(...)` needs a `size`: a chunk ends at",
            ),
            (
                "chunk()",
                "`chunk(...)` needs a `size`: write `chunk(size = 100)`",
            ),
            (
                "chunk(size = 2, timeout = \"0ms\")",
                "a chunk timeout of zero",
            ),
            (
                "chunk(size = 2, timeout = \"30 secs\")",
                "`\"30 secs\"` is not a duration",
            ),
            (
                "chunk(size = 2, timeout = \"1.5s\")",
                "`\"1.5s\"` is not a whole number of its unit: write `timeout = \"1500ms\"`",
            ),
            (
                "chunk(size = 2, timeout = \"30\")",
                "`\"30\"` has no unit: write `timeout = \"30ms\"`",
            ),
            (
                "chunk(size = 2, timeout = 30)",
                "a duration is a string with its unit",
            ),
            (
                "chunk = 2, retry(A, limit = 2, backoff = fixed(\"1s\", \"2s\"))",
                "`fixed(...)` takes the one pause",
            ),
            (
                "chunk = 2, retry(A, limit = 2, backoff = exponential(initial = \"1s\"))",
                "`exponential(...)` needs `initial` and `max`",
            ),
            (
                "chunk = 2, retry(A, limit = 2, backoff = exponential(initial = \"1s\", max = \"1ms\"))",
                "`max` caps the pause",
            ),
            (
                "chunk = 2, retry(A, limit = 2, backoff = exponential(initial = \"1s\", max = \"2s\", multiplier = 0.5))",
                "a `multiplier` below 1",
            ),
            (
                "chunk = 2, retry(A, limit = 2, backoff = random(min = \"1s\", max = \"1ms\"))",
                "`max` cannot be below `min`",
            ),
            (
                "chunk = 2, retry(A, limit = 2, backoff = linear(\"1s\"))",
                "unknown backoff `linear`; expected one of: `fixed`, `exponential`, `random`",
            ),
            ("listener()", "`listener()` needs the listener"),
            ("listener(a, b)", "`listener(...)` takes one listener"),
        ];
        for (src, expected) in cases {
            let errors = errors_of(src);
            assert_eq!(errors.len(), 1, "{src}: {errors:?}");
            assert!(errors[0].starts_with(expected), "{src}: {}", errors[0]);
        }
    }

    #[test]
    fn fault_tolerance_mistakes_are_all_reported() {
        let errors = errors_of(
            "retry(limit = 3), skip(limit = 2), no_retry(X), chunk_sise = 3, \
             processor_non_transactional",
        );
        // The tasklet check stays quiet: `chunk_sise` may have been meant as `chunk`.
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].starts_with("unknown key `chunk_sise`"));
        assert!(errors[1].starts_with("`retry(limit = 3)` names no error"));
        assert!(errors[2].starts_with("`skip(limit = 2)` names no error"));

        let errors = errors_of(
            "retry(limit = 3), skip(limit = 2), no_retry(X), processor_non_transactional",
        );
        assert_eq!(errors.len(), 6, "{errors:?}");
        assert!(errors[2].starts_with("`retry(...)` is for chunk-oriented steps"));
        assert!(errors[3].starts_with("`skip(...)` is for chunk-oriented steps"));
        assert!(errors[4].starts_with("`no_retry(...)` is for chunk-oriented steps"));
        assert!(errors[5].starts_with("`processor_non_transactional` is for"));

        // A malformed entry is reported alone, not also as a missing limit.
        let errors = errors_of("chunk = 1, retry(A, limits = 3)");
        assert_eq!(errors.len(), 1, "{errors:?}");
    }
}
