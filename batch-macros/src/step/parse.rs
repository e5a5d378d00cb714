//! Parsing `#[step(...)]`: the attribute's keys, and the function's arguments with
//! their `#[param]` markers.

use crate::args::{self, Flag, KeyValue};
use crate::errors::{Errors, Once};
use crate::fn_item::FnItem;
use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::{Attribute, Expr, ExprLit, FnArg, Ident, Lit, LitStr, Pat, Path, Token, Type};

pub(crate) mod kw {
    syn::custom_keyword!(chunk);
    syn::custom_keyword!(name);
    syn::custom_keyword!(start_limit);
    syn::custom_keyword!(allow_start_if_complete);
}

/// Where step keys are written, for messages.
pub(crate) const STEP: &str = "`#[step(...)]`";

/// Everything between the parentheses of `#[step(...)]`, in the order written.
///
/// Keys are kept as written (with their keyword token) and only checked in
/// `validate`, so that one pass can report every mistake. A new key is a keyword in
/// `kw`, a variant here, a branch in `StepArg::parse`, and a line in
/// `validate::config`; keys with nested syntax, such as
/// `retry(TerminationFailed, limit = 3)`, get a variant holding their own parsed list.
pub(crate) struct StepArgs {
    pub(crate) args: Vec<StepArg>,
}

pub(crate) enum StepArg {
    /// `chunk = 10`: a chunk-oriented step committing every 10 items.
    Chunk(KeyValue<kw::chunk, Expr>),
    /// `name = "load_orders"`: the step's name in the job repository.
    Name(KeyValue<kw::name, Expr>),
    /// `start_limit = 3`: how many times the step may be started for one job instance.
    StartLimit(KeyValue<kw::start_limit, Expr>),
    /// `allow_start_if_complete [= bool]`: run again on restart even if it completed.
    AllowStartIfComplete(Flag<kw::allow_start_if_complete>),
    /// `crate = ::path::to::batch`
    Crate(KeyValue<Token![crate], Path>),
}

impl Parse for StepArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        Ok(StepArgs {
            args: args::comma_separated(input)?,
        })
    }
}

impl Parse for StepArg {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let lookahead = input.lookahead1();
        if lookahead.peek(kw::chunk) {
            input.parse().map(StepArg::Chunk)
        } else if lookahead.peek(kw::name) {
            input.parse().map(StepArg::Name)
        } else if lookahead.peek(kw::start_limit) {
            input.parse().map(StepArg::StartLimit)
        } else if lookahead.peek(kw::allow_start_if_complete) {
            input.parse().map(StepArg::AllowStartIfComplete)
        } else if lookahead.peek(Token![crate]) {
            input.parse().map(StepArg::Crate)
        } else {
            Err(args::unknown_key(input, lookahead, STEP))
        }
    }
}

/// The step function, borrowed from the parsed item.
pub(crate) struct StepFn<'a> {
    pub(crate) item: &'a FnItem,
    /// One entry per typed argument, in order. Receivers (`self`) are not listed; the
    /// validation reports them from the signature.
    pub(crate) inputs: Vec<Input<'a>>,
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
    StepFn { item, inputs }
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

    #[test]
    fn keys_parse_in_any_order() {
        let args = parse(
            "name = \"load\", chunk = 3, start_limit = 2, allow_start_if_complete, crate = ::b,",
        )
        .unwrap();
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
        let err = parse("chunk = 3, retries = 2").err().unwrap();
        assert_eq!(
            err.to_string(),
            "unknown key `retries` in `#[step(...)]`; expected one of: `chunk`, `name`, \
             `start_limit`, `allow_start_if_complete`, `crate`"
        );
    }

    #[test]
    fn missing_comma_is_reported() {
        assert_eq!(
            parse("chunk = 3 name = \"x\"").err().unwrap().to_string(),
            "expected `,`"
        );
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
