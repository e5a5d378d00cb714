//! Parsing `#[step(...)]`: the attribute's keys, and the function's arguments with
//! their `#[param]` markers.

use crate::args::{self, Flag, KeyList, KeyValue};
use crate::errors::{Errors, Once};
use crate::fn_item::FnItem;
use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::token::{Brace, Paren};
use syn::{
    Attribute, Expr, ExprLit, FnArg, GenericArgument, Ident, Lit, LitStr, Pat, Path, PathArguments,
    ReturnType, Token, Type, TypeImplTrait, TypeParamBound,
};

pub(crate) mod kw {
    syn::custom_keyword!(chunk);
    syn::custom_keyword!(name);
    syn::custom_keyword!(start_limit);
    syn::custom_keyword!(allow_start_if_complete);
    syn::custom_keyword!(retry);
    syn::custom_keyword!(no_retry);
    syn::custom_keyword!(skip);
    syn::custom_keyword!(no_skip);
    syn::custom_keyword!(no_rollback);
    syn::custom_keyword!(processor_non_transactional);
    syn::custom_keyword!(listener);
    syn::custom_keyword!(promote);
    syn::custom_keyword!(partition);
    // Inside `partition(...)`.
    syn::custom_keyword!(worker);
    syn::custom_keyword!(grid_size);
    syn::custom_keyword!(grid_size_param);
    syn::custom_keyword!(concurrency);
    syn::custom_keyword!(remote);
    syn::custom_keyword!(remote_param);
    // Inside `chunk(...)`.
    syn::custom_keyword!(size);
    syn::custom_keyword!(timeout);
    syn::custom_keyword!(policy);
    // Inside `retry(...)` and `skip(...)`.
    syn::custom_keyword!(limit);
    syn::custom_keyword!(backoff);
    // `backoff = …`
    syn::custom_keyword!(fixed);
    syn::custom_keyword!(exponential);
    syn::custom_keyword!(random);
    syn::custom_keyword!(initial);
    syn::custom_keyword!(multiplier);
    syn::custom_keyword!(min);
    syn::custom_keyword!(max);
}

/// Where step keys are written, for messages.
pub(crate) const STEP: &str = "`#[step(...)]`";

/// How each list key is written, for the message when its parentheses are missing.
pub(crate) const CHUNK_FORM: &str = "chunk(size = 100, timeout = \"30s\")";
pub(crate) const RETRY_FORM: &str = "retry(TimeoutError, limit = 3)";
pub(crate) const NO_RETRY_FORM: &str = "no_retry(BadRequest)";
pub(crate) const SKIP_FORM: &str = "skip(BadRecord, limit = 10)";
pub(crate) const NO_SKIP_FORM: &str = "no_skip(Corrupted)";
pub(crate) const NO_ROLLBACK_FORM: &str = "no_rollback(ValidationError)";
pub(crate) const LISTENER_FORM: &str = "listener(AuditListener::default())";
pub(crate) const PROMOTE_FORM: &str = "promote(\"orders.total\")";
pub(crate) const PARTITION_FORM: &str = "partition(worker = copy_range {}, grid_size = 4)";

/// Everything between the parentheses of `#[step(...)]`, in the order written.
///
/// Keys are kept as written (with their keyword token) and only checked in
/// `validate`, so that one pass can report every mistake. A new key is a keyword in
/// `kw`, a variant here, a branch in `StepArg::parse`, and a line in
/// `validate::config`; keys with nested syntax, such as
/// `retry(TerminationFailed, limit = 3)`, get a variant holding their own parsed list.
///
/// A malformed key does not stop the parse: its error is kept in `errors` and the
/// parse resumes at the next comma (see `args::comma_separated_recovering`).
pub(crate) struct StepArgs {
    pub(crate) args: Vec<StepArg>,
    pub(crate) errors: Vec<syn::Error>,
}

pub(crate) enum StepArg {
    /// `chunk = 10`: a chunk-oriented step committing every 10 items.
    Chunk(KeyValue<kw::chunk, Expr>),
    /// `chunk(size = 10, timeout = "30s")` / `chunk(size = 10, policy = …)`.
    ChunkWith(KeyList<kw::chunk, ChunkItem>),
    /// `name = "load_orders"`: the step's name in the job repository.
    Name(KeyValue<kw::name, Expr>),
    /// `start_limit = 3`: how many times the step may be started for one job instance.
    StartLimit(KeyValue<kw::start_limit, Expr>),
    /// `allow_start_if_complete [= bool]`: run again on restart even if it completed.
    AllowStartIfComplete(Flag<kw::allow_start_if_complete>),
    /// `retry(TimeoutError, ApiError::Busy { .. }, limit = 3, backoff = …)`
    Retry(KeyList<kw::retry, RetryItem>),
    /// `no_retry(BadRequest, …)`
    NoRetry(KeyList<kw::no_retry, ErrorSpec>),
    /// `skip(BadRecord, …, limit = 10)`
    Skip(KeyList<kw::skip, SkipItem>),
    /// `no_skip(Corrupted, …)`
    NoSkip(KeyList<kw::no_skip, ErrorSpec>),
    /// `no_rollback(ValidationError, …)`
    NoRollback(KeyList<kw::no_rollback, ErrorSpec>),
    /// `processor_non_transactional [= bool]`
    ProcessorNonTransactional(Flag<kw::processor_non_transactional>),
    /// `listener(expr)`, repeatable.
    Listener(KeyList<kw::listener, Expr>),
    /// `promote("key", …)`: step context keys copied into the job context when the
    /// step completes (Spring's `ExecutionContextPromotionListener`).
    Promote(KeyList<kw::promote, LitStr>),
    /// `partition(worker = copy_range {}, grid_size = 4, …)`: a partitioned step
    /// (Spring's `PartitionStep`) whose function returns the partitioner.
    Partition(KeyList<kw::partition, PartitionItem>),
    /// `crate = ::path::to::batch`
    Crate(KeyValue<Token![crate], Path>),
}

impl Parse for StepArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut errors = Vec::new();
        let args = args::comma_separated_recovering(input, &mut errors);
        Ok(StepArgs { args, errors })
    }
}

impl Parse for StepArg {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let lookahead = input.lookahead1();
        if lookahead.peek(kw::chunk) {
            if input.peek2(Paren) {
                KeyList::parse_with(input, CHUNK_FORM).map(StepArg::ChunkWith)
            } else {
                input.parse().map(StepArg::Chunk)
            }
        } else if lookahead.peek(kw::name) {
            input.parse().map(StepArg::Name)
        } else if lookahead.peek(kw::start_limit) {
            input.parse().map(StepArg::StartLimit)
        } else if lookahead.peek(kw::allow_start_if_complete) {
            input.parse().map(StepArg::AllowStartIfComplete)
        } else if lookahead.peek(kw::retry) {
            KeyList::parse_with(input, RETRY_FORM).map(StepArg::Retry)
        } else if lookahead.peek(kw::no_retry) {
            KeyList::parse_with(input, NO_RETRY_FORM).map(StepArg::NoRetry)
        } else if lookahead.peek(kw::skip) {
            KeyList::parse_with(input, SKIP_FORM).map(StepArg::Skip)
        } else if lookahead.peek(kw::no_skip) {
            KeyList::parse_with(input, NO_SKIP_FORM).map(StepArg::NoSkip)
        } else if lookahead.peek(kw::no_rollback) {
            KeyList::parse_with(input, NO_ROLLBACK_FORM).map(StepArg::NoRollback)
        } else if lookahead.peek(kw::processor_non_transactional) {
            input.parse().map(StepArg::ProcessorNonTransactional)
        } else if lookahead.peek(kw::listener) {
            KeyList::parse_with(input, LISTENER_FORM).map(StepArg::Listener)
        } else if lookahead.peek(kw::promote) {
            KeyList::parse_with(input, PROMOTE_FORM).map(StepArg::Promote)
        } else if lookahead.peek(kw::partition) {
            KeyList::parse_with(input, PARTITION_FORM).map(StepArg::Partition)
        } else if lookahead.peek(Token![crate]) {
            input.parse().map(StepArg::Crate)
        } else {
            Err(unknown_step_key(input, lookahead))
        }
    }
}

/// An unknown key, and the keys there are. Names from Spring Batch's step builder
/// (`retryLimit`, `commitInterval`, …) are also told where that setting lives here.
fn unknown_step_key(input: ParseStream, lookahead: syn::parse::Lookahead1) -> syn::Error {
    let word = input.fork().call(Ident::parse_any).ok();
    let hint = word.as_ref().and_then(|word| {
        let word = word.to_string().replace('_', "").to_lowercase();
        Some(match word.as_str() {
            "retrylimit" | "retries" | "maxattempts" => {
                "the limit goes inside `retry(...)`: `retry(TimeoutError, limit = 3)`"
            }
            "skiplimit" => "the limit goes inside `skip(...)`: `skip(BadRecord, limit = 10)`",
            "backoff" | "backoffpolicy" => {
                "the backoff goes inside `retry(...)`: \
                 `retry(TimeoutError, limit = 3, backoff = fixed(\"100ms\"))`"
            }
            "chunksize" | "commitinterval" | "size" => "write `chunk = 100` or `chunk(size = 100)`",
            "timeout" | "chunktimeout" => {
                "the timeout goes inside `chunk(...)`: `chunk(size = 100, timeout = \"30s\")`"
            }
            "policy" | "completionpolicy" => {
                "the policy goes inside `chunk(...)`: `chunk(size = 100, policy = MyPolicy::new())`"
            }
            "listeners"
            | "retrylistener"
            | "skiplistener"
            | "chunklistener"
            | "steplistener"
            | "stepexecutionlistener" => {
                "write `listener(value)`, once per listener: it registers the value as every \
                 listener kind it implements"
            }
            _ => return None,
        })
    });
    match (word, hint) {
        (Some(word), Some(hint)) => syn::Error::new(
            word.span(),
            format!(
                "unknown key `{word}` in {STEP}: {hint}; {}",
                lookahead.error()
            ),
        ),
        _ => args::unknown_key(input, lookahead, STEP),
    }
}

/// One entry of `partition(...)`, named as `Partition`'s builder methods are.
pub(crate) enum PartitionItem {
    /// `worker = copy_range {}`: the step each partition runs.
    Worker(KeyValue<kw::worker, Expr>),
    /// `grid_size = 4`
    GridSize(KeyValue<kw::grid_size, Expr>),
    /// `grid_size_param = "partitions"`
    GridSizeParam(KeyValue<kw::grid_size_param, Expr>),
    /// `concurrency = 4`
    Concurrency(KeyValue<kw::concurrency, Expr>),
    /// `remote [= bool]`
    Remote(Flag<kw::remote>),
    /// `remote_param = "remote"`
    RemoteParam(KeyValue<kw::remote_param, Expr>),
}

impl Parse for PartitionItem {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let lookahead = input.lookahead1();
        if lookahead.peek(kw::worker) {
            input.parse().map(PartitionItem::Worker)
        } else if lookahead.peek(kw::grid_size_param) {
            input.parse().map(PartitionItem::GridSizeParam)
        } else if lookahead.peek(kw::grid_size) {
            input.parse().map(PartitionItem::GridSize)
        } else if lookahead.peek(kw::concurrency) {
            input.parse().map(PartitionItem::Concurrency)
        } else if lookahead.peek(kw::remote_param) {
            input.parse().map(PartitionItem::RemoteParam)
        } else if lookahead.peek(kw::remote) {
            input.parse().map(PartitionItem::Remote)
        } else {
            Err(args::unknown_key(input, lookahead, "`partition(...)`"))
        }
    }
}

/// One entry of `chunk(...)`.
pub(crate) enum ChunkItem {
    /// `size = 100`
    Size(KeyValue<kw::size, Expr>),
    /// `timeout = "30s"`
    Timeout(KeyValue<kw::timeout, Expr>),
    /// `policy = MyPolicy::new()`
    Policy(KeyValue<kw::policy, Expr>),
}

impl Parse for ChunkItem {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let lookahead = input.lookahead1();
        if lookahead.peek(kw::size) {
            input.parse().map(ChunkItem::Size)
        } else if lookahead.peek(kw::timeout) {
            input.parse().map(ChunkItem::Timeout)
        } else if lookahead.peek(kw::policy) {
            input.parse().map(ChunkItem::Policy)
        } else {
            Err(args::unknown_key(input, lookahead, "`chunk(...)`"))
        }
    }
}

/// An error named in `retry(...)`, `skip(...)` and the other lists.
#[derive(Clone)]
pub(crate) enum ErrorSpec {
    /// `TerminationFailed`, `std::io::Error`: every error of this type. A bare path is
    /// always a type; a unit variant is written as a pattern, `ApiError::Timeout { .. }`.
    Type(Type),
    /// `ApiError::Timeout { .. }`, `ApiError::Status(503, ..)`: errors of `ty` that
    /// match `pat`. `ty` is the pattern's path minus its last segment (the variant);
    /// a one-segment pattern, `HttpError { status: 503, .. }`, is a struct pattern and
    /// its path is the type.
    Pattern { ty: Path, pat: Pat },
}

impl Parse for ErrorSpec {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        // A pattern is a path followed by `{ … }` or `( … )`. Anything else is a type
        // (which may have generic arguments that a pattern path could not have).
        let fork = input.fork();
        let is_pattern =
            fork.call(Path::parse_mod_style).is_ok() && (fork.peek(Brace) || fork.peek(Paren));
        if !is_pattern {
            return input.parse().map(ErrorSpec::Type);
        }
        let pat = Pat::parse_single(input)?;
        let path = match &pat {
            Pat::Struct(p) if p.qself.is_none() => &p.path,
            Pat::TupleStruct(p) if p.qself.is_none() => &p.path,
            other => {
                return Err(syn::Error::new_spanned(
                    other,
                    "an error pattern names an enum variant or a struct: write \
                     `ApiError::Timeout { .. }` or `ApiError::Status(503, ..)`",
                ));
            }
        };
        let mut ty = path.clone();
        if ty.segments.len() > 1 {
            ty.segments.pop();
            // `pop` leaves the trailing `::`, which a type cannot end with.
            let last = ty.segments.pop().map(syn::punctuated::Pair::into_value);
            ty.segments.extend(last);
        }
        Ok(ErrorSpec::Pattern { ty, pat })
    }
}

impl ToTokens for ErrorSpec {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        match self {
            ErrorSpec::Type(ty) => ty.to_tokens(tokens),
            ErrorSpec::Pattern { pat, .. } => pat.to_tokens(tokens),
        }
    }
}

/// One entry of `retry(...)`.
pub(crate) enum RetryItem {
    Error(ErrorSpec),
    /// `limit = 3`: total attempts, the first included.
    Limit(KeyValue<kw::limit, Expr>),
    /// `backoff = fixed("100ms")`, …
    Backoff(KeyValue<kw::backoff, BackoffSpec>),
}

impl Parse for RetryItem {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        if input.peek(kw::limit) {
            input.parse().map(RetryItem::Limit)
        } else if input.peek(kw::backoff) {
            input.parse().map(RetryItem::Backoff)
        } else if input.peek(Ident::peek_any) && input.peek2(Token![=]) {
            Err(unknown_list_key(input, "retry", "`limit` or `backoff`"))
        } else {
            input.parse().map(RetryItem::Error)
        }
    }
}

/// One entry of `skip(...)`.
pub(crate) enum SkipItem {
    Error(ErrorSpec),
    /// `limit = 10`: skips allowed over the whole step.
    Limit(KeyValue<kw::limit, Expr>),
}

impl Parse for SkipItem {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        if input.peek(kw::limit) {
            input.parse().map(SkipItem::Limit)
        } else if input.peek(Ident::peek_any) && input.peek2(Token![=]) {
            Err(unknown_list_key(input, "skip", "`limit`"))
        } else {
            input.parse().map(SkipItem::Error)
        }
    }
}

/// `word = …` inside a list of error types, where `word` is not a key of the list.
fn unknown_list_key(input: ParseStream, list: &str, keys: &str) -> syn::Error {
    match input.fork().call(Ident::parse_any) {
        Ok(word) => syn::Error::new(
            word.span(),
            format!("unknown key `{word}` in `{list}(...)`; expected {keys}, or an error type"),
        ),
        Err(error) => error,
    }
}

/// The value of `backoff = …`.
pub(crate) enum BackoffSpec {
    /// `fixed("100ms")`
    Fixed(KeyList<kw::fixed, Expr>),
    /// `exponential(initial = "100ms", multiplier = 2.0, max = "5s")`
    Exponential(KeyList<kw::exponential, ExponentialItem>),
    /// `random(min = "50ms", max = "500ms")`
    Random(KeyList<kw::random, RandomItem>),
}

pub(crate) const FIXED_FORM: &str = "fixed(\"100ms\")";
pub(crate) const EXPONENTIAL_FORM: &str =
    "exponential(initial = \"100ms\", multiplier = 2.0, max = \"5s\")";
pub(crate) const RANDOM_FORM: &str = "random(min = \"50ms\", max = \"500ms\")";

impl Parse for BackoffSpec {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let lookahead = input.lookahead1();
        if lookahead.peek(kw::fixed) {
            KeyList::parse_with(input, FIXED_FORM).map(BackoffSpec::Fixed)
        } else if lookahead.peek(kw::exponential) {
            KeyList::parse_with(input, EXPONENTIAL_FORM).map(BackoffSpec::Exponential)
        } else if lookahead.peek(kw::random) {
            KeyList::parse_with(input, RANDOM_FORM).map(BackoffSpec::Random)
        } else if input.peek(LitStr) {
            let lit: LitStr = input.parse()?;
            Err(syn::Error::new_spanned(
                &lit,
                format!(
                    "name the kind of backoff: write `backoff = fixed({})`",
                    lit.to_token_stream()
                ),
            ))
        } else {
            Err(args::unknown_word(input, lookahead, "backoff `{}`"))
        }
    }
}

impl ToTokens for BackoffSpec {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        match self {
            BackoffSpec::Fixed(list) => list.to_tokens(tokens),
            BackoffSpec::Exponential(list) => list.to_tokens(tokens),
            BackoffSpec::Random(list) => list.to_tokens(tokens),
        }
    }
}

pub(crate) enum ExponentialItem {
    Initial(KeyValue<kw::initial, Expr>),
    Multiplier(KeyValue<kw::multiplier, Expr>),
    Max(KeyValue<kw::max, Expr>),
}

impl Parse for ExponentialItem {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let lookahead = input.lookahead1();
        if lookahead.peek(kw::initial) {
            input.parse().map(ExponentialItem::Initial)
        } else if lookahead.peek(kw::multiplier) {
            input.parse().map(ExponentialItem::Multiplier)
        } else if lookahead.peek(kw::max) {
            input.parse().map(ExponentialItem::Max)
        } else {
            Err(args::unknown_key(input, lookahead, "`exponential(...)`"))
        }
    }
}

pub(crate) enum RandomItem {
    Min(KeyValue<kw::min, Expr>),
    Max(KeyValue<kw::max, Expr>),
}

impl Parse for RandomItem {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let lookahead = input.lookahead1();
        if lookahead.peek(kw::min) {
            input.parse().map(RandomItem::Min)
        } else if lookahead.peek(kw::max) {
            input.parse().map(RandomItem::Max)
        } else {
            Err(args::unknown_key(input, lookahead, "`random(...)`"))
        }
    }
}

/// The step function, borrowed from the parsed item.
pub(crate) struct StepFn<'a> {
    pub(crate) item: &'a FnItem,
    /// One entry per typed argument, in order. Receivers (`self`) are not listed; the
    /// validation reports them from the signature.
    pub(crate) inputs: Vec<Input<'a>>,
    /// `I` and `O` when the return type is written `impl ChunkStep<I, O>` or
    /// `Result<impl ChunkStep<I, O>, E>`: the item types a `SkipListener` needs.
    pub(crate) items: Option<(&'a Type, &'a Type)>,
}

pub(crate) enum Input<'a> {
    /// `#[param] name: T`: the job parameter `name`, converted to `T`.
    Param { name: LitStr, ty: &'a Type },
    /// Any other argument: `T: FromStepScope`.
    Injected { ty: &'a Type },
}

pub(crate) fn step_fn<'a>(item: &'a FnItem, errors: &mut Errors) -> StepFn<'a> {
    let inputs = item
        .sig
        .inputs
        .iter()
        .filter_map(|arg| match arg {
            FnArg::Typed(arg) => Some(input(&arg.attrs, &arg.pat, &arg.ty, errors)),
            FnArg::Receiver(_) => None,
        })
        .collect();
    StepFn {
        item,
        inputs,
        items: chunk_items(&item.sig.output),
    }
}

/// `I` and `O` of `-> impl ChunkStep<I, O>` or `-> …Result<impl ChunkStep<I, O>, …>`
/// (any path ending in `ChunkStep`, any `Result` alias). Other spellings give `None`.
fn chunk_items(output: &ReturnType) -> Option<(&Type, &Type)> {
    let ReturnType::Type(_, ty) = output else {
        return None;
    };
    match ungroup(ty) {
        Type::ImplTrait(bounds) => chunk_bound(bounds),
        Type::Path(path) if path.qself.is_none() => {
            let last = path.path.segments.last()?;
            let PathArguments::AngleBracketed(args) = &last.arguments else {
                return None;
            };
            match args.args.first()? {
                GenericArgument::Type(ok) if last.ident == "Result" => match ungroup(ok) {
                    Type::ImplTrait(bounds) => chunk_bound(bounds),
                    _ => None,
                },
                _ => None,
            }
        }
        _ => None,
    }
}

fn chunk_bound(bounds: &TypeImplTrait) -> Option<(&Type, &Type)> {
    bounds.bounds.iter().find_map(|bound| {
        let TypeParamBound::Trait(bound) = bound else {
            return None;
        };
        let last = bound.path.segments.last()?;
        let PathArguments::AngleBracketed(args) = &last.arguments else {
            return None;
        };
        let mut types = args.args.iter().filter_map(|arg| match arg {
            GenericArgument::Type(ty) => Some(ty),
            _ => None,
        });
        match (
            last.ident == "ChunkStep",
            types.next(),
            types.next(),
            types.next(),
        ) {
            (true, Some(i), Some(o), None) => Some((i, o)),
            _ => None,
        }
    })
}

fn ungroup(ty: &Type) -> &Type {
    match ty {
        Type::Group(group) => ungroup(&group.elem),
        Type::Paren(paren) => ungroup(&paren.elem),
        other => other,
    }
}

fn input<'a>(attrs: &[Attribute], pat: &Pat, ty: &'a Type, errors: &mut Errors) -> Input<'a> {
    let mut marker = Once::new("the attributes of this argument");
    for attr in attrs.iter().filter(|a| is_param(a)) {
        let explicit = param_name(attr, errors);
        marker.set(errors, attr.path(), (attr, explicit));
    }
    let Some((attr, explicit)) = marker.get() else {
        return Input::Injected { ty };
    };
    let name = match explicit {
        // The attribute itself was malformed and has been reported; keep going with a
        // placeholder so the rest of the function is still checked.
        Err(()) => LitStr::new("", attr.pound_token.span),
        Ok(Some(name)) => name,
        Ok(None) => match pat {
            Pat::Ident(p) if p.subpat.is_none() => {
                LitStr::new(&p.ident.unraw().to_string(), p.ident.span())
            }
            other => {
                errors.at(
                    other,
                    "`#[param]` takes the parameter's name from the argument, but this pattern \
                     is not a plain name: bind it to a name, or give the name explicitly with \
                     `#[param(\"name\")]`",
                );
                LitStr::new("", attr.pound_token.span)
            }
        },
    };
    Input::Param { name, ty }
}

pub(crate) fn is_param(attr: &Attribute) -> bool {
    attr.path().is_ident("param")
}

const PARAM_FORMS: &str = "write `#[param]` to use the argument's name, or `#[param(\"targetDate\")]` / \
     `#[param(name = \"targetDate\")]` to name the job parameter";

/// `#[param]` → `Ok(None)`, `#[param("x")]` / `#[param(name = "x")]` → `Ok(Some("x"))`.
/// Malformed forms are reported and give `Err(())`.
fn param_name(attr: &Attribute, errors: &mut Errors) -> Result<Option<LitStr>, ()> {
    match &attr.meta {
        syn::Meta::Path(_) => Ok(None),
        syn::Meta::NameValue(nv) => {
            let fix = match &nv.value {
                Expr::Lit(ExprLit {
                    lit: Lit::Str(name),
                    ..
                }) => {
                    format!("write `#[param({})]`", name.to_token_stream())
                }
                _ => PARAM_FORMS.to_owned(),
            };
            errors.at(
                nv,
                format!("`#[param = …]` is not a form of `#[param]`: {fix}"),
            );
            Err(())
        }
        syn::Meta::List(list) => match list.parse_args_with(ParamArgs::parse) {
            Ok(ParamArgs(name)) if name.value().is_empty() => {
                errors.at(
                    &name,
                    "a job parameter name cannot be empty: write the name as it is passed \
                     to the job, `#[param(\"targetDate\")]`, or `#[param]` to use the \
                     argument's name",
                );
                Err(())
            }
            Ok(ParamArgs(name)) => Ok(Some(name)),
            Err(error) => {
                errors.push(error);
                Err(())
            }
        },
    }
}

/// The inside of `#[param(...)]`: `"name"` or `name = "name"`, nothing else.
struct ParamArgs(LitStr);

impl Parse for ParamArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let lookahead = input.lookahead1();
        let name = if lookahead.peek(LitStr) {
            input.parse()?
        } else if lookahead.peek(kw::name) {
            input.parse::<KeyValue<kw::name, LitStr>>()?.value
        } else if input.peek(Ident::peek_any) {
            let word = input.call(Ident::parse_any)?;
            return Err(syn::Error::new(
                word.span(),
                format!("unknown key `{word}` in `#[param(...)]`: {PARAM_FORMS}"),
            ));
        } else {
            return Err(syn::Error::new(
                input.span(),
                format!("malformed `#[param(...)]`: {PARAM_FORMS}"),
            ));
        };
        if !input.is_empty() {
            let rest: TokenStream = input.parse()?;
            return Err(syn::Error::new_spanned(
                &rest,
                format!("`#[param(...)]` names one job parameter: remove `{}`", rest),
            ));
        }
        Ok(ParamArgs(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> syn::Result<StepArgs> {
        syn::parse_str(src)
    }

    fn parse_errors(src: &str) -> Vec<String> {
        parse(src)
            .unwrap()
            .errors
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn keys_parse_in_any_order() {
        let args = parse(
            "name = \"load\", chunk = 3, start_limit = 2, allow_start_if_complete, crate = ::b,",
        )
        .unwrap();
        assert!(args.errors.is_empty());
        assert_eq!(args.args.len(), 5);
        assert!(matches!(args.args[1], StepArg::Chunk(_)));
        assert!(matches!(
            args.args[3],
            StepArg::AllowStartIfComplete(Flag { value: None, .. })
        ));
        assert!(parse("").unwrap().args.is_empty());
    }

    #[test]
    fn unknown_key_lists_known_keys() {
        assert_eq!(
            parse_errors("chunk = 3, retires = 2"),
            [
                "unknown key `retires` in `#[step(...)]`; expected one of: `chunk`, `name`, \
              `start_limit`, `allow_start_if_complete`, `retry`, `no_retry`, `skip`, \
              `no_skip`, `no_rollback`, `processor_non_transactional`, `listener`, `promote`, `partition`, `crate`"
            ]
        );
    }

    #[test]
    fn spring_names_are_redirected() {
        assert_eq!(
            parse_errors("chunk = 3, retry_limit = 2"),
            [
                "unknown key `retry_limit` in `#[step(...)]`: the limit goes inside `retry(...)`: \
              `retry(TimeoutError, limit = 3)`; expected one of: `chunk`, `name`, \
              `start_limit`, `allow_start_if_complete`, `retry`, `no_retry`, `skip`, \
              `no_skip`, `no_rollback`, `processor_non_transactional`, `listener`, `promote`, `partition`, `crate`"
            ]
        );
        assert!(parse_errors("commitInterval = 2")[0].starts_with(
            "unknown key `commitInterval` in `#[step(...)]`: write `chunk = 100` or \
                 `chunk(size = 100)`; expected one of: `chunk`"
        ));
    }

    #[test]
    fn missing_comma_is_reported() {
        assert_eq!(parse_errors("chunk = 3 name = \"x\""), ["expected `,`"]);
    }

    #[test]
    fn fault_tolerance_keys_parse() {
        let args = parse(
            "chunk(size = 5, timeout = \"30s\"), \
             retry(Timeout, api::ApiError::Busy { .. }, ApiError::Status(503, ..), limit = 3, \
                   backoff = exponential(initial = \"100ms\", multiplier = 2.0, max = \"5s\")), \
             no_retry(std::io::Error), skip(Bad, limit = 10), no_skip(Worse), \
             no_rollback(Minor), processor_non_transactional, listener(Audit::default()), \
             listener(LOG.clone())",
        )
        .unwrap();
        assert!(args.errors.is_empty());
        assert_eq!(args.args.len(), 9);
        let StepArg::Retry(retry) = &args.args[1] else {
            panic!("not retry")
        };
        let errors: Vec<String> = retry
            .items
            .iter()
            .filter_map(|item| match item {
                RetryItem::Error(ErrorSpec::Type(ty)) => Some(format!("type {}", args::pretty(ty))),
                RetryItem::Error(ErrorSpec::Pattern { ty, pat }) => {
                    Some(format!("{} of {}", args::pretty(pat), args::pretty(ty)))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            errors,
            [
                "type Timeout",
                "api::ApiError::Busy { .. } of api::ApiError",
                "ApiError::Status(503, ..) of ApiError",
            ]
        );
        assert!(matches!(
            retry.items[4],
            RetryItem::Backoff(KeyValue {
                value: BackoffSpec::Exponential(_),
                ..
            })
        ));
    }

    #[test]
    fn every_malformed_key_is_reported() {
        assert_eq!(
            parse_errors(
                "chunk_size = 3, retry(Timeout, limits = 3), retry = 3, \
                 skip(Bad, max = 2), chunk(size = 2, timout = \"1s\"), \
                 retry(A, backoff = linear(\"1s\")), retry(A, backoff = \"1s\"), listener"
            ),
            [
                "unknown key `chunk_size` in `#[step(...)]`: write `chunk = 100` or \
                 `chunk(size = 100)`; expected one of: `chunk`, `name`, \
                 `start_limit`, `allow_start_if_complete`, `retry`, `no_retry`, `skip`, \
                 `no_skip`, `no_rollback`, `processor_non_transactional`, `listener`, `promote`, `partition`, `crate`",
                "`retry` takes a list in parentheses: write `retry(TimeoutError, limit = 3)`",
                "`listener` takes a list in parentheses: write \
                 `listener(AuditListener::default())`",
            ]
        );
        // Errors inside a list wait in the list, and validation reports them.
        let args = parse("retry(Timeout, limits = 3), skip(Bad, max = 2)").unwrap();
        let inner: Vec<String> = args
            .args
            .iter()
            .flat_map(|arg| match arg {
                StepArg::Retry(list) => list.errors.clone(),
                StepArg::Skip(list) => list.errors.clone(),
                _ => vec![],
            })
            .map(|e| e.to_string())
            .collect();
        assert_eq!(
            inner,
            [
                "unknown key `limits` in `retry(...)`; expected `limit` or `backoff`, or an error type",
                "unknown key `max` in `skip(...)`; expected `limit`, or an error type",
            ]
        );
    }

    #[test]
    fn patterns_must_name_a_path() {
        let err = syn::parse_str::<ErrorSpec>("ApiError::Timeout { .. } | ApiError::Busy { .. }");
        assert!(err.is_err());
        let spec: ErrorSpec = syn::parse_str("HttpError { status: 503, .. }").unwrap();
        let ErrorSpec::Pattern { ty, .. } = spec else {
            panic!("not a pattern")
        };
        assert_eq!(args::pretty(&ty), "HttpError");
    }

    #[test]
    fn chunk_items_come_from_the_return_type() {
        let items = |src: &str| {
            let item: FnItem = syn::parse_str(src).unwrap();
            chunk_items(&item.sig.output).map(|(i, o)| (args::pretty(i), args::pretty(o)))
        };
        let pair = |i: &str, o: &str| Some((i.to_owned(), o.to_owned()));
        assert_eq!(
            items("fn s() -> impl ChunkStep<u32, String> {}"),
            pair("u32", "String")
        );
        assert_eq!(
            items("fn s() -> Result<impl batch::ChunkStep<A, B> + Send, E> {}"),
            pair("A", "B")
        );
        assert_eq!(
            items("fn s() -> batch::Result<impl ChunkStep<Vec<u8>, B>> {}"),
            pair("Vec<u8>", "B")
        );
        assert_eq!(items("fn s() -> impl Tasklet {}"), None);
        assert_eq!(items("fn s() -> MySpec {}"), None);
        assert_eq!(items("fn s() -> Option<impl ChunkStep<A, B>> {}"), None);
    }

    fn inputs(src: &str) -> (Vec<String>, Vec<String>) {
        let item: FnItem = syn::parse_str(src).unwrap();
        let mut errors = Errors::default();
        let f = step_fn(&item, &mut errors);
        let names = f
            .inputs
            .iter()
            .map(|i| match i {
                Input::Param { name, .. } => name.value(),
                Input::Injected { .. } => "<injected>".to_owned(),
            })
            .collect();
        let messages = match errors.finish() {
            Ok(()) => vec![],
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        };
        (names, messages)
    }

    #[test]
    fn params_take_their_names() {
        let (names, errors) = inputs(
            "fn s(#[param] r#type: String, #[param(\"targetDate\")] d: u32, \
             #[param(name = \"x\")] (a, b): (u8, u8), ctx: Ctx) -> T {}",
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(names, ["type", "targetDate", "x", "<injected>"]);
    }

    #[test]
    fn malformed_params_are_all_reported() {
        let (_, errors) = inputs(
            "fn s(#[param = \"a\"] a: u8, #[param(1)] b: u8, #[param(\"\")] c: u8, \
             #[param(\"x\", \"y\")] d: u8, #[param] (e, f): (u8, u8), #[param] #[param] g: u8) -> T {}",
        );
        assert_eq!(errors.len(), 6, "{errors:?}");
        assert_eq!(
            errors[0],
            "`#[param = …]` is not a form of `#[param]`: write `#[param(\"a\")]`"
        );
        assert!(errors[1].starts_with("malformed `#[param(...)]`"));
        assert!(errors[2].starts_with("a job parameter name cannot be empty"));
        assert_eq!(
            errors[3],
            "`#[param(...)]` names one job parameter: remove `, \"y\"`"
        );
        assert!(errors[4].contains("not a plain name"));
        assert!(errors[5].starts_with("duplicate `param`"));
    }
}
