//! Checking `#[derive(ExecutionContext)]`: where each key is written, and that no two
//! fields share a context key.

use super::parse::{CONTEXT, ContextArg, ContextStruct};
use crate::args;
use crate::errors::{Errors, Once};
use crate::runtime::Runtime;
use quote::ToTokens;
use std::collections::HashMap;
use syn::ext::IdentExt;
use syn::{Ident, LitStr, Type};

pub(crate) struct ContextModel<'a> {
    pub(crate) runtime: Runtime,
    pub(crate) fields: Vec<KeyedField<'a>>,
}

pub(crate) struct KeyedField<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) ty: &'a Type,
    /// The full key, prefix included, spanned on where it was written.
    pub(crate) key: LitStr,
}

pub(crate) fn model<'a>(input: &ContextStruct<'a>, errors: &mut Errors) -> ContextModel<'a> {
    let mut runtime = Once::new(CONTEXT);
    let mut prefix = Once::new(CONTEXT);
    for arg in &input.args {
        match arg {
            ContextArg::Prefix(pair) => {
                let value = args::non_empty_str(errors, pair, "reader.");
                prefix.set(errors, pair, value);
            }
            ContextArg::Crate(pair) => {
                let value = args::crate_path(errors, pair);
                runtime.set(errors, pair, value);
            }
            ContextArg::Key(pair) => errors.at(
                pair,
                "`key` names the context key of one field: put `#[context(key = \"…\")]` on \
                 that field, or use `#[context(prefix = \"…\")]` here to prefix every key",
            ),
        }
    }
    let prefix = prefix
        .get()
        .flatten()
        .map(|p| p.value())
        .unwrap_or_default();

    let mut fields = Vec::new();
    let mut seen: HashMap<String, &Ident> = HashMap::new();
    for field in &input.fields {
        let mut key = Once::new(CONTEXT);
        for arg in &field.args {
            match arg {
                ContextArg::Key(pair) => {
                    let value = args::non_empty_str(errors, pair, "current.index");
                    key.set(errors, pair, value);
                }
                ContextArg::Prefix(pair) => errors.at(
                    pair,
                    "`prefix` applies to every field: move `#[context(prefix = \"…\")]` to \
                     the struct, or give this field its whole key with `key = \"…\"`",
                ),
                ContextArg::Crate(pair) => errors.at(
                    pair,
                    "`crate` applies to the whole derive: move `#[context(crate = …)]` to \
                     the struct",
                ),
            }
        }
        let key = match key.get().flatten() {
            Some(lit) => LitStr::new(&format!("{prefix}{}", lit.value()), lit.span()),
            None => LitStr::new(
                &format!("{prefix}{}", field.ident.unraw()),
                field.ident.span(),
            ),
        };
        if let Some(first) = seen.get(&key.value()) {
            errors.at(
                key_site(field),
                format!(
                    "fields `{first}` and `{}` are both stored under the context key `{}`: \
                     give one of them another key with `#[context(key = \"…\")]`",
                    field.ident,
                    key.value()
                ),
            );
        } else {
            seen.insert(key.value(), field.ident);
        }
        fields.push(KeyedField {
            ident: field.ident,
            ty: field.ty,
            key,
        });
    }

    ContextModel {
        runtime: runtime.get().flatten().unwrap_or_default(),
        fields,
    }
}

/// Where a field's key is written: its `key = "…"` if any, else its name.
fn key_site(field: &super::parse::Field) -> proc_macro2::TokenStream {
    field
        .args
        .iter()
        .find_map(|arg| match arg {
            ContextArg::Key(pair) => Some(pair.to_token_stream()),
            _ => None,
        })
        .unwrap_or_else(|| field.ident.to_token_stream())
}

#[cfg(test)]
mod tests {
    use super::super::parse::context_struct;
    use super::*;
    use syn::DeriveInput;

    fn keys(src: &str) -> Result<Vec<String>, Vec<String>> {
        let input: DeriveInput = syn::parse_str(src).unwrap();
        let mut errors = Errors::default();
        let parsed = context_struct(&input, &mut errors).unwrap();
        let model = model(&parsed, &mut errors);
        match errors.finish() {
            Ok(()) => Ok(model.fields.iter().map(|f| f.key.value()).collect()),
            Err(e) => Err(e.into_iter().map(|e| e.to_string()).collect()),
        }
    }

    #[test]
    fn keys_are_prefixed() {
        assert_eq!(
            keys(
                "#[context(prefix = \"reader.\")] struct S { \
                 #[context(key = \"current.index\")] index: u64, r#type: String }"
            )
            .unwrap(),
            ["reader.current.index", "reader.type"]
        );
    }

    #[test]
    fn duplicates_and_misplaced_keys_are_reported() {
        let errors = keys(
            "#[context(key = \"k\")] struct S { a: u8, #[context(key = \"a\")] b: u8, \
             #[context(prefix = \"p\", key = \"\")] c: u8 }",
        )
        .unwrap_err();
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(errors[0].starts_with("`key` names the context key of one field"));
        assert!(errors[1].starts_with("fields `a` and `b` are both stored under"));
        assert!(errors[2].starts_with("`prefix` applies to every field"));
        assert!(errors[3].starts_with("`key` cannot be empty"));
    }
}
