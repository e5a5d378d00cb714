//! Emitting `#[step]`: the user's function, its companion struct, and `IntoStep`.
//! Everything here has been checked already; expansion cannot fail.

use super::parse::{ErrorSpec, Input, StepFn, is_param};
use super::validate::{Backoff, Completion, FaultConfig, PartitionConfig, StepConfig};
use crate::args;
use crate::fn_item::{FnItem, companion_struct};
use crate::runtime::{self, Runtime};
use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Expr, FnArg, Ident, LitStr, ReturnType, Signature};

pub(crate) fn step(f: &StepFn, config: &StepConfig) -> TokenStream {
    let item = user_fn(f.item);
    let companion = companion_struct(f.item);
    let cfgs = f.item.cfg_attrs();
    let rt = &config.runtime;
    let into_step = rt.trait_into_step();
    let step_def = rt.step_def();
    let ident = &f.item.sig.ident;
    let kinds = listener_kinds(f, config);
    let helpers = if config.listeners.is_empty() {
        TokenStream::new()
    } else {
        listener_helpers(f, config, &kinds)
    };
    let body = match &config.partition {
        Some(partition) => partition_body(f, config, partition),
        None => body(f, config, &kinds),
    };
    quote! {
        #item
        #companion
        #(#cfgs)*
        const _: () = {
            #helpers
            #[allow(deprecated)]
            impl #into_step for #ident {
                fn into_step(self) -> #step_def {
                    #body
                }
            }
        };
    }
}

/// `StepBuilder::new(name)[.chunk_size(n)]….chunk|tasklet(factory)`, with a statement
/// per listener in between when there are listeners.
fn body(f: &StepFn, config: &StepConfig, kinds: &[ListenerKind]) -> TokenStream {
    let rt = &config.runtime;
    let step_builder = rt.step_builder();
    let duration = rt.duration();
    let name = step_name(f, config);

    let mut builder = quote!(#step_builder::new(#name));
    if let Some(chunk) = &config.chunk {
        if let Some(size) = &chunk.size {
            builder.extend(quote!(.chunk_size(#size)));
        }
        match &chunk.completion {
            Completion::Size => {}
            Completion::Timeout(millis) => {
                builder.extend(quote!(.chunk_timeout(#duration::from_millis(#millis))));
            }
            Completion::Policy(policy) => builder.extend(quote!(.completion_policy(#policy))),
        }
    }
    if let Some(limit) = &config.start_limit {
        builder.extend(quote!(.start_limit(#limit)));
    }
    if let Some(allow) = &config.allow_start_if_complete {
        builder.extend(quote!(.allow_start_if_complete(#allow)));
    }
    if !config.promote.is_empty() {
        let keys = &config.promote;
        builder.extend(quote!(.promote([#(#keys),*])));
    }
    // Each `Res<T>` argument is declared, so that a launch without the resource is
    // refused before anything is written. Read from the syntax, not through a trait
    // bound: an argument type that cannot be injected is reported once, where the
    // factory builds it.
    let resource_need = rt.resource_need();
    for input in &f.inputs {
        if let Input::Injected { ty } = input
            && let Some(inner) = res_argument(ty)
        {
            builder.extend(
                quote!(.requires(::core::option::Option::Some(#resource_need::of::<#inner>()))),
            );
        }
    }
    builder.extend(fault_tolerance(&config.fault, rt));

    // Spanned on the return type: when the function returns a chunk step but `chunk`
    // is missing (or the reverse), the unmet `Tasklet` / `ChunkStep` bound of this
    // call is reported on the return type, next to the runtime's hint.
    let finish = Ident::new(
        if config.chunk.is_some() {
            "chunk"
        } else {
            "tasklet"
        },
        output_span(&f.item.sig),
    );
    let factory = factory(f, rt);
    if config.listeners.is_empty() {
        return quote!(#builder.#finish(#factory));
    }
    let builder_var = Ident::new("__batch_builder", Span::call_site());
    let listeners = config
        .listeners
        .iter()
        .map(|listener| register_listener(f, listener, kinds, &builder_var));
    quote! {
        let #builder_var = #builder;
        #(let #builder_var = #listeners;)*
        #builder_var.#finish(#factory)
    }
}

/// `Partition::new(name, worker, function())[.grid_size(n)]….build()`.
fn partition_body(f: &StepFn, config: &StepConfig, partition: &PartitionConfig) -> TokenStream {
    let rt = &config.runtime;
    let partition_type = rt.partition();
    let into_step = rt.trait_into_step();
    let ident = &f.item.sig.ident;
    let name = step_name(f, config);
    let worker = &partition.worker;
    // Spanned on the return type, so that a function returning something other than a
    // partitioner is reported there, with the runtime's hint.
    let partitioner = quote_spanned!(output_span(&f.item.sig)=> #ident());
    let mut manager = quote!(#partition_type::new(#name, #worker, #partitioner));
    if let Some(size) = &partition.grid_size {
        manager.extend(quote!(.grid_size(#size)));
    }
    if let Some(param) = &partition.grid_size_param {
        manager.extend(quote!(.grid_size_param(#param)));
    }
    if let Some(tasks) = &partition.concurrency {
        manager.extend(quote!(.concurrency(#tasks)));
    }
    if let Some(remote) = &partition.remote {
        manager.extend(quote!(.remote(#remote)));
    }
    if let Some(param) = &partition.remote_param {
        manager.extend(quote!(.remote_param(#param)));
    }
    quote!(#into_step::into_step(#manager))
}

/// The step's name in the job repository: `name = "…"`, else the function's name.
fn step_name(f: &StepFn, config: &StepConfig) -> LitStr {
    let ident = &f.item.sig.ident;
    config
        .name
        .clone()
        .unwrap_or_else(|| LitStr::new(&ident.unraw().to_string(), ident.span()))
}

/// `.retry(…)….processor_non_transactional()`, each list followed by its settings.
fn fault_tolerance(fault: &FaultConfig, rt: &Runtime) -> TokenStream {
    let matchers = |method: &str, specs: &[ErrorSpec]| -> TokenStream {
        let method = Ident::new(method, Span::call_site());
        let matchers = specs.iter().map(|spec| matcher(spec, rt));
        quote!(#(.#method(#matchers))*)
    };
    let mut calls = matchers("retry", &fault.retry);
    if let Some(limit) = &fault.retry_limit {
        calls.extend(quote!(.retry_limit(#limit)));
    }
    if let Some(backoff) = &fault.backoff {
        let backoff = backoff_value(backoff, rt);
        calls.extend(quote!(.backoff(#backoff)));
    }
    calls.extend(matchers("no_retry", &fault.no_retry));
    calls.extend(matchers("skip", &fault.skip));
    if let Some(limit) = &fault.skip_limit {
        calls.extend(quote!(.skip_limit(#limit)));
    }
    calls.extend(matchers("no_skip", &fault.no_skip));
    calls.extend(matchers("no_rollback", &fault.no_rollback));
    if fault.processor_non_transactional {
        calls.extend(quote!(.processor_non_transactional()));
    }
    calls
}

/// `ErrorMatcher::of::<T>()`, or for a pattern,
/// `ErrorMatcher::when::<T>("T::Variant { .. }", |e: &T| matches!(e, T::Variant { .. }))`.
/// Spanned on the user's type or pattern, so that "`T` is not an error" or "no
/// variant `Variant`" points there.
fn matcher(spec: &ErrorSpec, rt: &Runtime) -> TokenStream {
    let error_matcher = rt.error_matcher();
    match spec {
        ErrorSpec::Type(ty) => quote_spanned!(ty.span()=> #error_matcher::of::<#ty>()),
        ErrorSpec::Pattern { ty, pat } => {
            let name = LitStr::new(&args::pretty(pat), pat.span());
            quote_spanned! {pat.span()=>
                #error_matcher::when::<#ty>(
                    #name,
                    |__batch_error: &#ty| ::core::matches!(__batch_error, #pat),
                )
            }
        }
    }
}

fn backoff_value(backoff: &Backoff, rt: &Runtime) -> TokenStream {
    let kind = rt.backoff();
    let duration = rt.duration();
    let ms = |millis: &u64| quote!(#duration::from_millis(#millis));
    match backoff {
        Backoff::Fixed(delay) => {
            let delay = ms(delay);
            quote!(#kind::Fixed(#delay))
        }
        Backoff::Exponential {
            initial,
            multiplier,
            max,
        } => {
            let (initial, max) = (ms(initial), ms(max));
            quote!(#kind::Exponential { initial: #initial, multiplier: #multiplier, max: #max })
        }
        Backoff::Random { min, max } => {
            let (min, max) = (ms(min), ms(max));
            quote!(#kind::Random { min: #min, max: #max })
        }
    }
}

/// A listener trait that `listener(...)` can register a value as.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum ListenerKind {
    Step,
    Chunk,
    Retry,
    Skip,
    ItemRead,
    ItemProcess,
    ItemWrite,
}

impl ListenerKind {
    /// The method of the probe traits for this kind.
    fn probe(self) -> Ident {
        let name = match self {
            ListenerKind::Step => "__batch_step_listener",
            ListenerKind::Chunk => "__batch_chunk_listener",
            ListenerKind::Retry => "__batch_retry_listener",
            ListenerKind::Skip => "__batch_skip_listener",
            ListenerKind::ItemRead => "__batch_item_read_listener",
            ListenerKind::ItemProcess => "__batch_item_process_listener",
            ListenerKind::ItemWrite => "__batch_item_write_listener",
        };
        Ident::new(name, Span::call_site())
    }

    fn traits(self) -> (Ident, Ident) {
        let (yes, no) = match self {
            ListenerKind::Step => ("__BatchIsStepListener", "__BatchNotStepListener"),
            ListenerKind::Chunk => ("__BatchIsChunkListener", "__BatchNotChunkListener"),
            ListenerKind::Retry => ("__BatchIsRetryListener", "__BatchNotRetryListener"),
            ListenerKind::Skip => ("__BatchIsSkipListener", "__BatchNotSkipListener"),
            ListenerKind::ItemRead => ("__BatchIsItemReadListener", "__BatchNotItemReadListener"),
            ListenerKind::ItemProcess => (
                "__BatchIsItemProcessListener",
                "__BatchNotItemProcessListener",
            ),
            ListenerKind::ItemWrite => {
                ("__BatchIsItemWriteListener", "__BatchNotItemWriteListener")
            }
        };
        (
            Ident::new(yes, Span::call_site()),
            Ident::new(no, Span::call_site()),
        )
    }
}

/// The kinds this step calls. Retry and skip listeners are only called by the
/// fault-tolerant chunk loop; registering a retry listener would even switch a plain
/// step to that loop, so they are registered only where fault tolerance is configured.
/// A skip listener needs the step's item types, which validation made sure the return
/// type shows on such a step.
fn listener_kinds(f: &StepFn, config: &StepConfig) -> Vec<ListenerKind> {
    let mut kinds = vec![ListenerKind::Step, ListenerKind::Chunk];
    // Item listeners need the step's item types too.
    if config.chunk.is_some() && f.items.is_some() {
        kinds.extend([
            ListenerKind::ItemRead,
            ListenerKind::ItemProcess,
            ListenerKind::ItemWrite,
        ]);
    }
    if config.chunk.is_some() && config.fault.enabled() {
        kinds.push(ListenerKind::Retry);
        if f.items.is_some() {
            kinds.push(ListenerKind::Skip);
        }
    }
    kinds
}

/// The items `listener(...)` expands to, once per step, hidden in the `const _` block.
///
/// A listener value is registered once for each listener trait it implements. Rust
/// has no "if the type implements the trait" in generic code, but method resolution
/// gives it for a concrete type: a call `(&probe).method()` first looks for `method`
/// on `&Probe` (the impl for `Probe<L>` with `&self`, which exists only when `L`
/// implements the trait) and only then on `&&Probe` (the fallback impl for `&Probe<L>`,
/// which always exists). The chosen impl registers the value, or does nothing; either
/// way it passes on a marker saying whether any kind matched, and a final check turns
/// "none" into a compile error at the user's expression.
fn listener_helpers(f: &StepFn, config: &StepConfig, kinds: &[ListenerKind]) -> TokenStream {
    let rt = &config.runtime;
    let arc = rt.arc();
    let builder = rt.step_builder();
    let cell = runtime::core_cell();
    let phantom = runtime::core_phantom_data();
    let unreachable = quote!(::core::unreachable!("a listener value is taken once"));

    let probes = kinds.iter().map(|&kind| {
        let (yes, no) = kind.traits();
        let method = kind.probe();
        let (bound, register) = match kind {
            ListenerKind::Step => {
                let t = rt.step_execution_listener();
                (quote!(#t), quote!(builder.listener(self.0.clone())))
            }
            ListenerKind::Chunk => {
                let t = rt.chunk_listener();
                (quote!(#t), quote!(builder.chunk_listener(self.0.clone())))
            }
            ListenerKind::Retry => {
                let t = rt.retry_listener();
                (quote!(#t), quote!(builder.retry_listener(self.0.clone())))
            }
            ListenerKind::Skip => {
                let t = rt.skip_listener();
                (
                    quote!(#t<I, O>),
                    quote!(builder.skip_listener::<I, O>(self.0.clone())),
                )
            }
            ListenerKind::ItemRead => {
                let t = rt.item_read_listener();
                (
                    quote!(#t<I>),
                    quote!(builder.item_read_listener::<I>(self.0.clone())),
                )
            }
            ListenerKind::ItemProcess => {
                let t = rt.item_process_listener();
                (
                    quote!(#t<I, O>),
                    quote!(builder.item_process_listener::<I, O>(self.0.clone())),
                )
            }
            ListenerKind::ItemWrite => {
                let t = rt.item_write_listener();
                (
                    quote!(#t<O>),
                    quote!(builder.item_write_listener::<O>(self.0.clone())),
                )
            }
        };
        quote! {
            trait #yes {
                fn #method<S>(&self, builder: #builder, found: S) -> (#builder, __BatchFound);
            }
            impl<L: #bound + 'static, I: 'static, O: 'static> #yes for __BatchListener<L, I, O> {
                fn #method<S>(&self, builder: #builder, _: S) -> (#builder, __BatchFound) {
                    (#register, __BatchFound)
                }
            }
            trait #no {
                fn #method<S>(&self, builder: #builder, found: S) -> (#builder, S);
            }
            impl<L, I, O> #no for &__BatchListener<L, I, O> {
                fn #method<S>(&self, builder: #builder, found: S) -> (#builder, S) {
                    (builder, found)
                }
            }
        }
    });

    let (message, label, note) = listener_message(f, config, kinds);
    quote! {
        // `listener(x)` and `listener(Arc::new(x))` both share one `Arc` of `x`:
        // the same resolution order picks the impl for `Arc<T>` when there is one.
        struct __BatchListenerValue<T>(#cell<::core::option::Option<T>>);
        trait __BatchSharedListener<T> {
            fn __batch_arc(&self) -> #arc<T>;
        }
        impl<T> __BatchSharedListener<T> for __BatchListenerValue<#arc<T>> {
            fn __batch_arc(&self) -> #arc<T> {
                match self.0.take() {
                    ::core::option::Option::Some(shared) => shared,
                    ::core::option::Option::None => #unreachable,
                }
            }
        }
        trait __BatchOwnedListener<T> {
            fn __batch_arc(&self) -> #arc<T>;
        }
        impl<T> __BatchOwnedListener<T> for &__BatchListenerValue<T> {
            fn __batch_arc(&self) -> #arc<T> {
                match self.0.take() {
                    ::core::option::Option::Some(owned) => #arc::new(owned),
                    ::core::option::Option::None => #unreachable,
                }
            }
        }

        /// The value, and the step's item types for `SkipListener<I, O>`.
        #[allow(dead_code)]
        struct __BatchListener<L, I, O>(#arc<L>, #phantom<fn() -> (I, O)>);
        struct __BatchFound;
        struct __BatchImplementsNone;
        #(#probes)*

        #[diagnostic::on_unimplemented(message = #message, label = #label, note = #note)]
        trait __BatchAcceptedListener<Found> {}
        #[diagnostic::do_not_recommend]
        impl<L> __BatchAcceptedListener<__BatchFound> for L {}
        // A second impl, never used, keeps rustc from inferring `Found` from the only
        // impl (and then reporting a type mismatch instead of the message above).
        #[diagnostic::do_not_recommend]
        impl<L> __BatchAcceptedListener<()> for L {}
        fn __batch_check_listener<L: __BatchAcceptedListener<Found>, Found>(_: &#arc<L>, _: Found) {}
    }
}

/// The message of the error for a value that is none of the kinds.
fn listener_message(
    f: &StepFn,
    config: &StepConfig,
    kinds: &[ListenerKind],
) -> (LitStr, LitStr, LitStr) {
    let escape = |text: String| text.replace('{', "{{").replace('}', "}}");
    let accepted = match (kinds.contains(&ListenerKind::ItemRead), f.items) {
        (true, Some((i, o))) => {
            let (i, o) = (args::pretty(i), args::pretty(o));
            let items = format!("`ItemReadListener<{i}>`, `ItemProcessListener<{i}, {o}>`");
            escape(if kinds.contains(&ListenerKind::Skip) {
                format!(
                    "`StepExecutionListener`, `ChunkListener`, {items}, `ItemWriteListener<{o}>`, `RetryListener` or `SkipListener<{i}, {o}>`"
                )
            } else {
                format!(
                    "`StepExecutionListener`, `ChunkListener`, {items} or `ItemWriteListener<{o}>`"
                )
            })
        }
        _ => "`StepExecutionListener` or `ChunkListener`".to_owned(),
    };
    let note = if kinds.contains(&ListenerKind::Retry) {
        "the value is registered once for each of these traits it implements, sharing one `Arc`"
            .to_owned()
    } else if config.chunk.is_some() {
        "a `RetryListener` or `SkipListener` is only called on a step with fault-tolerance \
         keys (`retry(...)`, `skip(...)`, …), so this step does not take one"
            .to_owned()
    } else {
        "a `RetryListener` or `SkipListener` is only called on a chunk step with \
         fault-tolerance keys, and this is a tasklet step"
            .to_owned()
    };
    let span = Span::call_site();
    (
        LitStr::new(
            &format!(
                "`{{Self}}` is not a listener this step can call: `listener(...)` takes a \
                 value (or an `Arc` of one) that implements {accepted}"
            ),
            span,
        ),
        LitStr::new("implements none of the listener traits", span),
        LitStr::new(&note, span),
    )
}

/// `{ probe each kind; check that one matched; the builder }` for one `listener(expr)`.
fn register_listener(
    f: &StepFn,
    expr: &Expr,
    kinds: &[ListenerKind],
    builder: &Ident,
) -> TokenStream {
    let cell = runtime::core_cell();
    let phantom = runtime::core_phantom_data();
    let (i, o) = match (kinds.contains(&ListenerKind::ItemRead), f.items) {
        (true, Some((i, o))) => (quote!(#i), quote!(#o)),
        _ => (quote!(()), quote!(())),
    };
    let listener = Ident::new("__batch_listener", Span::call_site());
    let found = Ident::new("__batch_found", Span::call_site());
    let probes = kinds.iter().map(|kind| {
        let method = kind.probe();
        quote!(let (#builder, #found) = (&#listener).#method(#builder, #found);)
    });
    // The check's arguments span the user's expression, from its first token to its
    // last, so the error underlines exactly what was written in `listener(...)`
    // (rustc points at an argument; every token of both must carry the span, idents
    // included, since interpolated tokens keep their own).
    let mut tokens = expr.to_token_stream().into_iter();
    let first = tokens.next().map_or_else(Span::call_site, |t| t.span());
    let last = tokens.last().map_or(first, |t| t.span());
    let value = Ident::new("__batch_listener", last);
    let found_here = Ident::new("__batch_found", last);
    let reference = quote_spanned!(first=> &);
    let field = quote_spanned!(last=> .0);
    let check = quote_spanned! {first=>
        __batch_check_listener(#reference #value #field, #found_here);
    };
    quote! {
        {
            let #listener = __BatchListener::<_, #i, #o>(
                (&__BatchListenerValue(#cell::new(::core::option::Option::Some(#expr))))
                    .__batch_arc(),
                #phantom,
            );
            let #found = __BatchImplementsNone;
            #(#probes)*
            #check
            #builder
        }
    }
}

/// The closure the runtime calls for each step execution: it builds every argument
/// from the scope, calls the user's function, and accepts `X` or `Result<X, E>`.
fn factory(f: &StepFn, rt: &Runtime) -> TokenStream {
    let step_scope = rt.step_scope();
    let from_step_scope = rt.trait_from_step_scope();
    let into_step_output = rt.trait_into_step_output();
    let sig = &f.item.sig;
    let ident = &sig.ident;

    let scope = Ident::new("__batch_scope", Span::call_site());
    let vars: Vec<Ident> = (0..f.inputs.len())
        .map(|i| format_ident!("__batch_arg{}", i))
        .collect();
    // Each binding carries the span of the argument's type, so that "the trait
    // `FromStepScope` is not implemented for `Pool`" points at `Pool` in the signature.
    let bindings = f.inputs.iter().zip(&vars).map(|(input, var)| match input {
        Input::Param { name, ty } => quote_spanned! {ty.span()=>
            let #var = #step_scope::param::<#ty>(&#scope, #name)?;
        },
        Input::Injected { ty } => quote_spanned! {ty.span()=>
            let #var = <#ty as #from_step_scope>::from_scope(&#scope)?;
        },
    });

    let mut call = quote!(#ident(#(#vars),*));
    if sig.asyncness.is_some() {
        call = quote!(#call.await);
    }
    // An unsuitable return type (say, an error type that does not convert into the
    // framework's) is reported on the return type: the converted value is a single
    // token carrying that span.
    let output_span = output_span(sig);
    let value = Ident::new("__batch_value", output_span);
    let convert = quote_spanned!(output_span=> #into_step_output::into_step_output(#value));
    let output = quote!(let #value = #call; #convert);

    let scope_pattern = if f.inputs.is_empty() {
        quote!(_)
    } else {
        quote!(#scope)
    };
    quote! {
        |#scope_pattern: #step_scope| async move {
            #(#bindings)*
            #output
        }
    }
}

fn output_span(sig: &Signature) -> Span {
    match &sig.output {
        ReturnType::Type(_, ty) => ty.span(),
        ReturnType::Default => sig.ident.span(),
    }
}

/// The user's function as written, minus our `#[param]` markers, which rustc would
/// otherwise reject as unknown attributes.
pub(crate) fn user_fn(item: &FnItem) -> TokenStream {
    let mut sig = item.sig.clone();
    for arg in &mut sig.inputs {
        if let FnArg::Typed(arg) = arg {
            arg.attrs.retain(|a| !is_param(a));
        }
    }
    let FnItem {
        attrs, vis, body, ..
    } = item;
    quote!(#(#attrs)* #vis #sig #body)
}

/// What is emitted when the attribute or the function has mistakes: the errors, the
/// function (so calls to it still resolve), and the companion with a stub `IntoStep`
/// (so the job that lists the step does not add errors of its own).
pub(crate) fn fallback(item: &FnItem, rt: &Runtime, error: syn::Error) -> TokenStream {
    let user = user_fn(item);
    let error = error.to_compile_error();
    if item.sig.receiver().is_some() {
        // Inside an `impl` block, where a struct cannot go.
        return quote!(#user #error);
    }
    let companion = companion_struct(item);
    let cfgs = item.cfg_attrs();
    let into_step = rt.trait_into_step();
    let step_def = rt.step_def();
    let ident = &item.sig.ident;
    let stub = runtime::unreachable_stub();
    quote! {
        #error
        #user
        #companion
        #(#cfgs)*
        const _: () = {
            #[allow(deprecated)]
            impl #into_step for #ident {
                fn into_step(self) -> #step_def {
                    #stub
                }
            }
        };
    }
}

/// `T` of an argument written `Res<T>` (with any path before `Res`).
fn res_argument(ty: &syn::Type) -> Option<&syn::Type> {
    let syn::Type::Path(path) = ty else {
        return None;
    };
    let last = path.path.segments.last()?;
    if last.ident != "Res" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    args.args.iter().find_map(|arg| match arg {
        syn::GenericArgument::Type(inner) => Some(inner),
        _ => None,
    })
}
