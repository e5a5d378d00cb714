//! Parsing `#[derive(ExecutionContext)]`: the struct's shape and its `#[context(...)]`
//! attributes.

use crate::args::{self, KeyValue};
use crate::errors::Errors;
use syn::parse::{Parse, ParseStream};
use syn::{Attribute, Data, DeriveInput, Expr, Fields, Ident, Path, Token, Type};

pub(crate) mod kw {
    syn::custom_keyword!(key);
    syn::custom_keyword!(prefix);
}

pub(crate) const CONTEXT: &str = "`#[context(...)]`";

/// One key of a `#[context(...)]` attribute. The struct and its fields share the key
/// set, so a key in the wrong place gets "move it there" rather than "unknown key".
pub(crate) enum ContextArg {
    /// On a field: `key = "current.index"`, the key it is stored under.
    Key(KeyValue<kw::key, Expr>),
    /// On the struct: `prefix = "reader."`, put in front of every field's key.
    Prefix(KeyValue<kw::prefix, Expr>),
    /// On the struct: `crate = ::path::to::batch`.
    Crate(KeyValue<Token![crate], Path>),
}

impl Parse for ContextArg {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let lookahead = input.lookahead1();
        if lookahead.peek(kw::key) {
            input.parse().map(ContextArg::Key)
        } else if lookahead.peek(kw::prefix) {
            input.parse().map(ContextArg::Prefix)
        } else if lookahead.peek(Token![crate]) {
            input.parse().map(ContextArg::Crate)
        } else {
            Err(args::unknown_key(input, lookahead, CONTEXT))
        }
    }
}

/// The struct, borrowed from the derive input.
pub(crate) struct ContextStruct<'a> {
    pub(crate) args: Vec<ContextArg>,
    pub(crate) fields: Vec<Field<'a>>,
}

pub(crate) struct Field<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) ty: &'a Type,
    pub(crate) args: Vec<ContextArg>,
}

/// Fails when the input is not a struct with named fields: nothing else can be
/// checked then. Mistakes in `#[context(...)]` attributes go to `errors`.
pub(crate) fn context_struct<'a>(
    input: &'a DeriveInput,
    errors: &mut Errors,
) -> syn::Result<ContextStruct<'a>> {
    const SHAPE: &str = "`#[derive(ExecutionContext)]` needs a struct with named fields, \
                         one per context key";
    let fields = match &input.data {
        Data::Struct(data) => match &data.fields {
            Fields::Named(fields) => fields
                .named
                .iter()
                .filter_map(|field| {
                    Some(Field {
                        ident: field.ident.as_ref()?,
                        ty: &field.ty,
                        args: context_args(&field.attrs, errors),
                    })
                })
                .collect(),
            Fields::Unit => Vec::new(),
            Fields::Unnamed(fields) => {
                return Err(syn::Error::new_spanned(
                    fields,
                    format!(
                        "{SHAPE}: a tuple struct has no names to use as keys; write \
                         `struct {} {{ name: Type, … }}`",
                        input.ident
                    ),
                ));
            }
        },
        Data::Enum(data) => {
            return Err(syn::Error::new_spanned(
                data.enum_token,
                format!(
                    "{SHAPE}, not an enum: keep the enum as the type of a field, \
                     `struct State {{ phase: {} }}`, and derive on that struct",
                    input.ident
                ),
            ));
        }
        Data::Union(data) => {
            return Err(syn::Error::new_spanned(
                data.union_token,
                format!("{SHAPE}, not a union: use a struct"),
            ));
        }
    };
    Ok(ContextStruct {
        args: context_args(&input.attrs, errors),
        fields,
    })
}

/// All keys of all `#[context(...)]` attributes in `attrs`. An attribute that does not
/// parse is reported and skipped; the others are still used.
fn context_args(attrs: &[Attribute], errors: &mut Errors) -> Vec<ContextArg> {
    let mut all = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("context")) {
        let parsed = match &attr.meta {
            syn::Meta::List(list) => list.parse_args_with(args::comma_separated::<ContextArg>),
            other => Err(syn::Error::new_spanned(
                other,
                "`#[context]` needs keys: write `#[context(key = \"name\")]` on a field or \
                 `#[context(prefix = \"reader.\")]` on the struct",
            )),
        };
        match parsed {
            Ok(args) => all.extend(args),
            Err(error) => errors.push(error),
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_context_keys_list_the_known_ones() {
        let input: DeriveInput =
            syn::parse_str("struct S { #[context(name = \"x\")] a: u8 }").unwrap();
        let mut errors = Errors::default();
        assert!(context_struct(&input, &mut errors).is_ok());
        assert_eq!(
            errors.finish().unwrap_err().to_string(),
            "unknown key `name` in `#[context(...)]`; expected one of: `key`, `prefix`, `crate`"
        );
    }

    #[test]
    fn only_structs_with_named_fields() {
        for src in ["enum E { A }", "struct T(u8);", "union U { a: u8 }"] {
            let input: DeriveInput = syn::parse_str(src).unwrap();
            let mut errors = Errors::default();
            assert!(context_struct(&input, &mut errors).is_err(), "{src}");
        }
    }
}
