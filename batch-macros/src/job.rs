//! `#[job]` / `#[job(name = "...")]`: parse → validate → expand, in one file because
//! each stage is a few lines.

use crate::args::{self, KeyValue};
use crate::errors::{Errors, Once};
use crate::fn_item::{FnItem, companion_struct};
use crate::runtime::{self, Runtime};
use proc_macro2::TokenStream;
use quote::quote;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::{Expr, ExprArray, LitStr, Path, Token};

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let item = match FnItem::parse_or_explain(item, "job") {
        Ok(item) => item,
        Err(emitted) => return emitted,
    };
    let mut errors = Errors::default();
    let config = match syn::parse2::<JobArgs>(args) {
        Ok(args) => config(&args, &mut errors),
        Err(error) => {
            errors.push(error);
            JobConfig::default()
        }
    };
    check_fn(&item, &mut errors);
    match errors.finish() {
        Ok(()) => job(&item, &config),
        Err(error) => fallback(&item, &config.runtime, error),
    }
}

// ---- parse ----------------------------------------------------------------------

mod kw {
    syn::custom_keyword!(name);
    syn::custom_keyword!(required);
    syn::custom_keyword!(optional);
}

const JOB: &str = "`#[job(...)]`";

struct JobArgs {
    args: Vec<JobArg>,
}

enum JobArg {
    /// `name = "nightly_settlement"`: the JOB_NAME in the repository.
    Name(KeyValue<kw::name, Expr>),
    /// `required = ["input"]`: keys every launch must give.
    Required(KeyValue<kw::required, ExprArray>),
    /// `optional = ["fail.at"]`: keys a launch may give.
    Optional(KeyValue<kw::optional, ExprArray>),
    /// `crate = ::path::to::batch`
    Crate(KeyValue<Token![crate], Path>),
}

impl Parse for JobArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        Ok(JobArgs {
            args: args::comma_separated(input)?,
        })
    }
}

impl Parse for JobArg {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let lookahead = input.lookahead1();
        if lookahead.peek(kw::name) {
            input.parse().map(JobArg::Name)
        } else if lookahead.peek(kw::required) {
            input.parse().map(JobArg::Required)
        } else if lookahead.peek(kw::optional) {
            input.parse().map(JobArg::Optional)
        } else if lookahead.peek(Token![crate]) {
            input.parse().map(JobArg::Crate)
        } else {
            Err(args::unknown_key(input, lookahead, JOB))
        }
    }
}

// ---- validate -------------------------------------------------------------------

#[derive(Default)]
struct JobConfig {
    runtime: Runtime,
    name: Option<LitStr>,
    /// `required` and `optional` keys; `None` when neither is declared.
    keys: Option<(Vec<LitStr>, Vec<LitStr>)>,
}

/// The string literals of `required = [...]` / `optional = [...]`.
fn key_list(errors: &mut Errors, array: &ExprArray) -> Vec<LitStr> {
    let mut keys = Vec::new();
    for elem in &array.elems {
        match elem {
            Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) if !s.value().is_empty() => keys.push(s.clone()),
            other => errors.at(
                other,
                "a parameter key is a non-empty string literal: write `[\"input.file\", \"fail.at\"]`",
            ),
        }
    }
    keys
}

fn config(args: &JobArgs, errors: &mut Errors) -> JobConfig {
    let mut runtime = Once::new(JOB);
    let mut name = Once::new(JOB);
    let mut required = Once::new(JOB);
    let mut optional = Once::new(JOB);
    for arg in &args.args {
        match arg {
            JobArg::Name(pair) => {
                let value = args::non_empty_str(errors, pair, "nightly_settlement");
                name.set(errors, pair, value);
            }
            JobArg::Required(pair) => {
                let value = key_list(errors, &pair.value);
                required.set(errors, pair, value);
            }
            JobArg::Optional(pair) => {
                let value = key_list(errors, &pair.value);
                optional.set(errors, pair, value);
            }
            JobArg::Crate(pair) => {
                let value = args::crate_path(errors, pair);
                runtime.set(errors, pair, value);
            }
        }
    }
    let (required, optional) = (required.get(), optional.get());
    let keys = (required.is_some() || optional.is_some())
        .then(|| (required.unwrap_or_default(), optional.unwrap_or_default()));
    JobConfig {
        runtime: runtime.get().flatten().unwrap_or_default(),
        name: name.get().flatten(),
        keys,
    }
}

fn check_fn(item: &FnItem, errors: &mut Errors) {
    item.check_plain_fn(errors, "job", "the job's `Flow`");
    let sig = &item.sig;
    if let Some(asyncness) = &sig.asyncness {
        errors.at(
            asyncness,
            "a `#[job]` function only assembles the flow and runs nothing, so it cannot be \
             `async`: remove `async` and do the work in the steps",
        );
    }
    if !sig.inputs.is_empty() {
        let inputs = &sig.inputs;
        errors.at(
            inputs,
            "a `#[job]` function takes no arguments: the flow is built before any job runs; \
             read job parameters in the steps with `#[param] name: Type`, and remove these",
        );
    }
}

// ---- expand ---------------------------------------------------------------------

fn job(item: &FnItem, config: &JobConfig) -> TokenStream {
    let rt = &config.runtime;
    let into_job = rt.trait_into_job();
    let job = rt.job();
    let ident = &item.sig.ident;
    let name = config
        .name
        .clone()
        .unwrap_or_else(|| LitStr::new(&ident.unraw().to_string(), ident.span()));
    let companion = companion_struct(item);
    let cfgs = item.cfg_attrs();
    let rules = config.keys.as_ref().map(|(required, optional)| {
        let rules = rt.parameter_rules();
        quote! {
            .parameters(
                #rules::new()
                    .required(<[&'static str]>::iter(&[#(#required),*]).copied())
                    .optional(<[&'static str]>::iter(&[#(#optional),*]).copied())
            )
        }
    });
    quote! {
        #item
        #companion
        #(#cfgs)*
        const _: () = {
            #[allow(deprecated)]
            impl #into_job for #ident {
                fn into_job(self) -> #job {
                    #job::new(#name, #ident())#rules
                }
            }
        };
    }
}

/// The errors, the function unchanged, and the companion with a stub `IntoJob`, so
/// that code launching the job does not pile more errors on top.
fn fallback(item: &FnItem, rt: &Runtime, error: syn::Error) -> TokenStream {
    let error = error.to_compile_error();
    if item.sig.receiver().is_some() {
        return quote!(#error #item);
    }
    let into_job = rt.trait_into_job();
    let job = rt.job();
    let ident = &item.sig.ident;
    let companion = companion_struct(item);
    let cfgs = item.cfg_attrs();
    let stub = runtime::unreachable_stub();
    quote! {
        #error
        #item
        #companion
        #(#cfgs)*
        const _: () = {
            #[allow(deprecated)]
            impl #into_job for #ident {
                fn into_job(self) -> #job {
                    #stub
                }
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of(args: &str, item: &str) -> Vec<String> {
        let out = expand(syn::parse_str(args).unwrap(), syn::parse_str(item).unwrap());
        let out = out.to_string();
        out.split("compile_error !")
            .skip(1)
            .map(|s| s.split('"').nth(1).unwrap_or_default().to_owned())
            .collect()
    }

    #[test]
    fn a_plain_job_expands() {
        assert!(errors_of("", "fn nightly() -> Flow { build_flow() }").is_empty());
        assert!(errors_of("name = \"n\"", "pub fn nightly() -> Flow { build_flow() }").is_empty());
    }

    #[test]
    fn job_mistakes_are_reported() {
        let errors = errors_of("name = \"a\", name = \"b\"", "async fn j<T>(x: u8) {}");
        assert_eq!(errors.len(), 5, "{errors:?}");
        assert!(errors[0].starts_with("duplicate `name`"));
        assert!(errors[1].contains("cannot be generic"));
        assert!(errors[2].contains("must return the job"));
        assert!(errors[3].contains("cannot be `async`"));
        assert!(errors[4].contains("takes no arguments"));
    }
}
