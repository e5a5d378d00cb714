//! Emitting `#[step]`: the user's function, its companion struct, and `IntoStep`.
//! Everything here has been checked already; expansion cannot fail.

use super::parse::{Input, StepFn, is_param};
use super::validate::StepConfig;
use crate::fn_item::{FnItem, companion_struct};
use crate::runtime::{self, Runtime};
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{FnArg, Ident, LitStr, ReturnType, Signature};

pub(crate) fn step(f: &StepFn, config: &StepConfig) -> TokenStream {
    let item = user_fn(f.item);
    let companion = companion_struct(f.item);
    let cfgs = f.item.cfg_attrs();
    let rt = &config.runtime;
    let into_step = rt.trait_into_step();
    let step_def = rt.step_def();
    let ident = &f.item.sig.ident;
    let builder = builder(f, config);
    quote! {
        #item
        #companion
        #(#cfgs)*
        const _: () = {
            #[allow(deprecated)]
            impl #into_step for #ident {
                fn into_step(self) -> #step_def {
                    #builder
                }
            }
        };
    }
}

/// `StepBuilder::new(name)[.chunk_size(n)]….chunk|tasklet(factory)`
fn builder(f: &StepFn, config: &StepConfig) -> TokenStream {
    let rt = &config.runtime;
    let step_builder = rt.step_builder();
    let sig = &f.item.sig;
    let name = config
        .name
        .clone()
        .unwrap_or_else(|| LitStr::new(&sig.ident.unraw().to_string(), sig.ident.span()));

    let mut builder = quote!(#step_builder::new(#name));
    if let Some(size) = &config.chunk {
        builder.extend(quote!(.chunk_size(#size)));
    }
    if let Some(limit) = &config.start_limit {
        builder.extend(quote!(.start_limit(#limit)));
    }
    if let Some(allow) = &config.allow_start_if_complete {
        builder.extend(quote!(.allow_start_if_complete(#allow)));
    }
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
    quote!(#builder.#finish(#factory))
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
