//! The function under `#[step]` / `#[job]`, and what both attributes emit around it.

use crate::errors::Errors;
use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::parse::{Parse, ParseStream};
use syn::{Attribute, Signature, Visibility};

/// A function item whose body is kept as raw tokens.
///
/// Only the signature matters to the macros. Not parsing the body means a half-typed
/// body (while the user is editing) still expands, so the IDE keeps completing inside
/// it, and rustc reports the body's syntax errors itself, once.
pub(crate) struct FnItem {
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) sig: Signature,
    pub(crate) body: TokenStream,
}

impl Parse for FnItem {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        Ok(FnItem {
            attrs: input.call(Attribute::parse_outer)?,
            vis: input.parse()?,
            sig: input.parse()?,
            body: input.parse()?,
        })
    }
}

impl FnItem {
    /// Parses the item under `#[attr]`; on failure returns what to emit instead: the
    /// item unchanged and an error saying where the attribute belongs.
    pub(crate) fn parse_or_explain(item: TokenStream, attr: &str) -> Result<FnItem, TokenStream> {
        syn::parse2::<FnItem>(item.clone()).map_err(|error| {
            let error = match syn::parse2::<syn::Item>(item.clone())
                .ok()
                .and_then(|i| kind_of(&i))
            {
                Some((keyword, kind)) => syn::Error::new_spanned(
                    keyword,
                    format!("`#[{attr}]` goes on a free `fn`, not on {kind}"),
                ),
                // A function with a syntax error in its signature, or something else.
                None => syn::Error::new(
                    error.span(),
                    format!("`#[{attr}]` goes on a free `fn`: {error}"),
                ),
            };
            let error = error.to_compile_error();
            quote!(#item #error)
        })
    }

    /// Attributes to repeat on the companion items: `#[cfg]` so that a function
    /// compiled out takes its companions with it, `#[deprecated]` so that naming the
    /// companion warns as calling the function does.
    pub(crate) fn companion_attrs(&self) -> Vec<&Attribute> {
        self.attrs
            .iter()
            .filter(|a| a.path().is_ident("cfg") || a.path().is_ident("deprecated"))
            .collect()
    }

    /// The `#[cfg]` attributes alone, for the `const _` block holding the impls.
    pub(crate) fn cfg_attrs(&self) -> Vec<&Attribute> {
        self.attrs
            .iter()
            .filter(|a| a.path().is_ident("cfg"))
            .collect()
    }

    /// Checks shared by `#[step]` and `#[job]`: a free, non-generic, safe function that
    /// returns something.
    pub(crate) fn check_plain_fn(&self, errors: &mut Errors, attr: &str, returns: &str) {
        let sig = &self.sig;
        if let Some(receiver) = sig.receiver() {
            errors.at(
                receiver,
                format!(
                    "`#[{attr}]` goes on a free function, not a method: move the function \
                     out of the `impl` block and drop `self`"
                ),
            );
        }
        if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
            let generics = &sig.generics;
            let at = match &generics.where_clause {
                Some(where_clause) => quote!(#generics #where_clause),
                None => generics.to_token_stream(),
            };
            errors.at(
                at,
                format!(
                    "a `#[{attr}]` function cannot be generic: the framework calls it \
                     without choosing types for it; replace the parameters with concrete types"
                ),
            );
        }
        if let Some(unsafety) = &sig.unsafety {
            errors.at(
                unsafety,
                format!(
                    "a `#[{attr}]` function cannot be `unsafe`: the framework cannot uphold \
                     its contract; make it safe and use an `unsafe` block inside"
                ),
            );
        }
        if let Some(variadic) = &sig.variadic {
            errors.at(
                variadic,
                format!("a `#[{attr}]` function cannot be variadic"),
            );
        }
        if let syn::ReturnType::Default = sig.output {
            let ident = &sig.ident;
            let paren = sig.paren_token.span.close();
            errors.push(syn::Error::new(
                paren,
                format!("`{ident}` must return {returns}: add `-> …` after the arguments"),
            ));
        }
    }
}

/// The keyword of an item that is not a function, and what to call it in a message.
fn kind_of(item: &syn::Item) -> Option<(TokenStream, &'static str)> {
    use syn::Item;
    Some(match item {
        Item::Struct(i) => (i.struct_token.to_token_stream(), "a struct"),
        Item::Enum(i) => (i.enum_token.to_token_stream(), "an enum"),
        Item::Union(i) => (i.union_token.to_token_stream(), "a union"),
        Item::Impl(i) => (i.impl_token.to_token_stream(), "an `impl` block"),
        Item::Trait(i) => (i.trait_token.to_token_stream(), "a trait"),
        Item::Mod(i) => (i.mod_token.to_token_stream(), "a module"),
        Item::Const(i) => (i.const_token.to_token_stream(), "a constant"),
        Item::Static(i) => (i.static_token.to_token_stream(), "a static"),
        Item::Type(i) => (i.type_token.to_token_stream(), "a type alias"),
        Item::Use(i) => (i.use_token.to_token_stream(), "a `use` declaration"),
        _ => return None,
    })
}

impl ToTokens for FnItem {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        tokens.extend(self.attrs.iter().map(ToTokens::to_token_stream));
        self.vis.to_tokens(tokens);
        self.sig.to_tokens(tokens);
        self.body.to_tokens(tokens);
    }
}

/// `#[doc(hidden)] #vis struct #name {}`: the companion that gives the function a value
/// in the type namespace. A braced struct does not occupy the value namespace, so the
/// function keeps its name there and stays callable as before.
pub(crate) fn companion_struct(item: &FnItem) -> TokenStream {
    let FnItem { vis, sig, .. } = item;
    let ident = &sig.ident;
    let attrs = item.companion_attrs();
    quote! {
        #(#attrs)*
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        #vis struct #ident {}
    }
}
