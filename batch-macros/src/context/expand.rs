//! Emitting `impl ContextState` for a checked struct.

use super::validate::ContextModel;
use crate::runtime::{self, Runtime};
use proc_macro2::{TokenStream, TokenTree};
use quote::{ToTokens, quote, quote_spanned};
use std::collections::HashSet;
use syn::spanned::Spanned;
use syn::{DeriveInput, GenericParam, Ident, WherePredicate, parse_quote};

pub(crate) fn context_state(input: &DeriveInput, model: &ContextModel) -> TokenStream {
    let rt = &model.runtime;
    let context_state = rt.context_state();
    let execution_context = rt.execution_context();
    let context_error = rt.context_error();
    let result = runtime::core_result();
    let option = runtime::core_option();
    let ident = &input.ident;

    let keys = model.fields.iter().map(|f| &f.key);
    let ctx = if model.fields.is_empty() {
        quote!(_)
    } else {
        quote!(ctx)
    };
    // The field's type carries its own span, so "`Conn` does not implement `Default`"
    // (or `Deserialize`) points at the field rather than at the derive.
    let loads = model.fields.iter().map(|f| {
        let (field, ty, key) = (f.ident, f.ty, &f.key);
        let value = quote_spanned! {ty.span()=>
            #option::unwrap_or_default(#execution_context::get::<#ty>(ctx, #key)?)
        };
        quote!(#field: #value,)
    });
    let stores = model.fields.iter().map(|f| {
        let (field, ty, key) = (f.ident, f.ty, &f.key);
        quote_spanned! {ty.span()=>
            #execution_context::put(ctx, #key, &self.#field)?;
        }
    });

    let mut generics = input.generics.clone();
    let bounds = field_bounds(input, model, rt);
    if !bounds.is_empty() {
        generics.make_where_clause().predicates.extend(bounds);
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();

    quote! {
        const _: () = {
            #[automatically_derived]
            impl #impl_generics #context_state for #ident #ty_generics #where_clause {
                const KEYS: &'static [&'static str] = &[#(#keys),*];

                fn load(#ctx: &#execution_context) -> #result<Self, #context_error> {
                    #result::Ok(Self { #(#loads)* })
                }

                fn store(&self, #ctx: &mut #execution_context) -> #result<(), #context_error> {
                    #(#stores)*
                    #result::Ok(())
                }
            }
        };
    }
}

/// `FieldType: Serialize + DeserializeOwned + Default` for every field whose type
/// mentions one of the struct's type or const parameters. Other fields are concrete, and rustc
/// checks them directly; bounding them would only move the error away from the field.
fn field_bounds(input: &DeriveInput, model: &ContextModel, rt: &Runtime) -> Vec<WherePredicate> {
    let params: HashSet<&Ident> = input
        .generics
        .params
        .iter()
        .filter_map(|p| match p {
            GenericParam::Type(t) => Some(&t.ident),
            // `[u32; N]` is serializable only for some `N`: bounding it keeps the impl.
            GenericParam::Const(c) => Some(&c.ident),
            GenericParam::Lifetime(_) => None,
        })
        .collect();
    if params.is_empty() {
        return Vec::new();
    }
    let serialize = rt.serialize();
    let deserialize_owned = rt.deserialize_owned();
    let default = runtime::core_default();
    model
        .fields
        .iter()
        .filter(|f| mentions(f.ty.to_token_stream(), &params))
        .map(|f| {
            let ty = f.ty;
            parse_quote!(#ty: #serialize + #deserialize_owned + #default)
        })
        .collect()
}

/// Whether any identifier in `tokens` is one of `params` (a token-level look that is
/// enough for types: `Vec<T>`, `Option<(T, u8)>`, `T::Item`).
fn mentions(tokens: TokenStream, params: &HashSet<&Ident>) -> bool {
    tokens.into_iter().any(|token| match token {
        TokenTree::Ident(ident) => params.contains(&ident),
        TokenTree::Group(group) => mentions(group.stream(), params),
        _ => false,
    })
}

/// Emitted next to the errors: a `ContextState` impl whose methods are never reached,
/// so code using the type as state reports nothing further.
pub(crate) fn fallback(input: &DeriveInput, rt: &Runtime, error: syn::Error) -> TokenStream {
    let context_state = rt.context_state();
    let execution_context = rt.execution_context();
    let context_error = rt.context_error();
    let result = runtime::core_result();
    let stub = runtime::unreachable_stub();
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let error = error.to_compile_error();
    quote! {
        #error
        const _: () = {
            impl #impl_generics #context_state for #ident #ty_generics #where_clause {
                const KEYS: &'static [&'static str] = &[];

                fn load(_: &#execution_context) -> #result<Self, #context_error> {
                    #stub
                }

                fn store(&self, _: &mut #execution_context) -> #result<(), #context_error> {
                    #stub
                }
            }
        };
    }
}
