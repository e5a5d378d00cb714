//! Building blocks shared by the attribute parsers: `key = value` pairs that remember
//! their keyword, the unknown-key message, and checks that turn a parsed value into the
//! typed value an expansion needs.
//!
//! Values are parsed as whole expressions and checked afterwards rather than parsed as
//! the expected literal directly: `chunk = "3"` then still parses, and the check can
//! say "write `chunk = 3`" next to every other mistake in the attribute instead of
//! stopping at syn's bare "expected integer literal".

use crate::errors::Errors;
use crate::runtime::Runtime;
use proc_macro2::TokenStream;
use quote::ToTokens;
use std::fmt::Display;
use std::str::FromStr;
use syn::ext::IdentExt;
use syn::parse::{Lookahead1, Parse, ParseStream};
use syn::{Expr, ExprLit, ExprUnary, Ident, Lit, LitBool, LitInt, LitStr, Path, Token, UnOp};

/// `key = value`, keeping the keyword token so errors can point at it.
pub(crate) struct KeyValue<K, V> {
    pub(crate) key: K,
    pub(crate) eq: Token![=],
    pub(crate) value: V,
}

impl<K: Parse + ToTokens, V: Parse> Parse for KeyValue<K, V> {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let key: K = input.parse()?;
        if !input.peek(Token![=]) {
            let name = key.to_token_stream();
            return Err(syn::Error::new_spanned(
                &key,
                format!("`{name}` needs a value: write `{name} = …`"),
            ));
        }
        Ok(KeyValue {
            key,
            eq: input.parse()?,
            value: input.parse()?,
        })
    }
}

impl<K: ToTokens, V: ToTokens> ToTokens for KeyValue<K, V> {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        self.key.to_tokens(tokens);
        self.eq.to_tokens(tokens);
        self.value.to_tokens(tokens);
    }
}

/// `key` alone (meaning `true`) or `key = value`.
pub(crate) struct Flag<K> {
    pub(crate) key: K,
    pub(crate) value: Option<(Token![=], Expr)>,
}

impl<K: Parse> Parse for Flag<K> {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let key = input.parse()?;
        let value = if input.peek(Token![=]) {
            Some((input.parse()?, input.parse()?))
        } else {
            None
        };
        Ok(Flag { key, value })
    }
}

impl<K: ToTokens> ToTokens for Flag<K> {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        self.key.to_tokens(tokens);
        if let Some((eq, value)) = &self.value {
            eq.to_tokens(tokens);
            value.to_tokens(tokens);
        }
    }
}

/// Parses `item, item, …` with an optional trailing comma, where each item decides
/// itself which key it is (through `lookahead1`).
pub(crate) fn comma_separated<T: Parse>(input: ParseStream) -> syn::Result<Vec<T>> {
    let mut items = Vec::new();
    while !input.is_empty() {
        items.push(input.parse()?);
        if input.is_empty() {
            break;
        }
        input.parse::<Token![,]>()?;
    }
    Ok(items)
}

/// The error for a key that no branch accepted. Lookahead's own message lists the known
/// keys ("expected one of: `chunk`, `name`, …") and stays right as keys are added; this
/// adds which word was not understood and where.
pub(crate) fn unknown_key(input: ParseStream, lookahead: Lookahead1, place: &str) -> syn::Error {
    let expected = lookahead.error();
    match input.fork().call(Ident::parse_any) {
        Ok(word) => syn::Error::new(
            word.span(),
            format!("unknown key `{word}` in {place}; {expected}"),
        ),
        Err(_) => expected,
    }
}

/// An integer literal that must be at least 1 and fit in `N` (`chunk = 3`).
///
/// `zero` is the message for `0`, which differs per key because the reason does.
pub(crate) fn positive_int<K: ToTokens, N>(
    errors: &mut Errors,
    pair: &KeyValue<K, Expr>,
    zero: &str,
) -> Option<LitInt>
where
    N: FromStr + Display + PartialOrd + From<u8>,
    N::Err: Display,
{
    let key = pair.key.to_token_stream();
    let type_name = std::any::type_name::<N>();
    match &pair.value {
        Expr::Lit(ExprLit {
            lit: Lit::Int(lit), ..
        }) => match lit.base10_parse::<N>() {
            Ok(n) if n < N::from(1) => {
                errors.at(pair, zero);
                None
            }
            // The suffix the user wrote (`3usize`) is dropped: the runtime takes `N`.
            Ok(n) => Some(LitInt::new(&format!("{n}"), lit.span())),
            Err(_) => {
                errors.at(
                    pair,
                    format!("`{key}` must fit in a {type_name}: write a number from 1 up"),
                );
                None
            }
        },
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => {
            let fix = match s.value().trim().parse::<N>() {
                Ok(n) if n >= N::from(1) => format!("`{key} = {n}`"),
                _ => format!("`{key} = 10`"),
            };
            errors.at(
                pair,
                format!(
                    "`{key}` takes an integer literal, not a string: write {fix} without quotes"
                ),
            );
            None
        }
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_), ..
        }) => {
            errors.at(pair, zero);
            None
        }
        other => {
            errors.at(
                other,
                format!(
                    "`{key}` takes an integer literal such as `{key} = 10`; \
                     constants and expressions are not accepted here"
                ),
            );
            None
        }
    }
}

/// A non-empty string literal (`name = "import_users"`).
pub(crate) fn non_empty_str<K: ToTokens>(
    errors: &mut Errors,
    pair: &KeyValue<K, Expr>,
    example: &str,
) -> Option<LitStr> {
    let key = pair.key.to_token_stream();
    match &pair.value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) if s.value().is_empty() => {
            errors.at(
                pair,
                format!("`{key}` cannot be empty: write `{key} = \"{example}\"`"),
            );
            None
        }
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Some(s.clone()),
        other => {
            let written = other.to_token_stream().to_string();
            errors.at(
                other,
                format!(
                    "`{key}` takes a string literal: write `{key} = \"{}\"`",
                    if matches!(other, Expr::Path(_) | Expr::Field(_)) {
                        written.replace(' ', "")
                    } else {
                        example.to_owned()
                    }
                ),
            );
            None
        }
    }
}

/// `key` (true) or `key = true|false`.
pub(crate) fn flag<K: ToTokens>(errors: &mut Errors, flag: &Flag<K>) -> Option<LitBool> {
    match &flag.value {
        None => Some(LitBool::new(
            true,
            flag.key.to_token_stream().into_iter().next()?.span(),
        )),
        Some((
            _,
            Expr::Lit(ExprLit {
                lit: Lit::Bool(b), ..
            }),
        )) => Some(b.clone()),
        Some((_, other)) => {
            let key = flag.key.to_token_stream();
            errors.at(
                other,
                format!("`{key}` takes `true` or `false`: write `{key}` alone for true, or `{key} = false`"),
            );
            None
        }
    }
}

/// `crate = ::path::to::batch`. Relative paths are refused: inside the generated code
/// they would resolve against whatever module the attribute is used in.
pub(crate) fn crate_path(
    errors: &mut Errors,
    pair: &KeyValue<Token![crate], Path>,
) -> Option<Runtime> {
    let path = &pair.value;
    let first = path.segments.first().map(|s| s.ident.to_string());
    let absolute =
        path.leading_colon.is_some() || matches!(first.as_deref(), Some("crate") | Some("$crate"));
    if absolute {
        Some(Runtime::at(path))
    } else {
        let written = path.to_token_stream().to_string().replace(' ', "");
        errors.at(
            pair,
            format!(
                "`crate` takes an absolute path to the `batch` facade: write `crate = ::{written}` \
                 (or start it with `crate::`); a relative path would resolve against the \
                 module where the attribute is used"
            ),
        );
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse::Parser;

    mod kw {
        syn::custom_keyword!(chunk);
        syn::custom_keyword!(name);
    }

    fn pair(src: &str) -> KeyValue<kw::chunk, Expr> {
        syn::parse_str(src).unwrap()
    }

    fn check_int(src: &str) -> Result<String, String> {
        let mut errors = Errors::default();
        let value = positive_int::<_, u64>(&mut errors, &pair(src), "zero");
        match errors.finish() {
            Ok(()) => Ok(value.unwrap().to_string()),
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn integers_are_checked() {
        assert_eq!(check_int("chunk = 3").unwrap(), "3");
        assert_eq!(check_int("chunk = 3usize").unwrap(), "3");
        assert_eq!(check_int("chunk = 0").unwrap_err(), "zero");
        assert_eq!(check_int("chunk = -2").unwrap_err(), "zero");
        assert_eq!(
            check_int("chunk = \"3\"").unwrap_err(),
            "`chunk` takes an integer literal, not a string: write `chunk = 3` without quotes"
        );
        assert!(
            check_int("chunk = SIZE")
                .unwrap_err()
                .contains("integer literal")
        );
        assert!(
            check_int("chunk = 99999999999999999999999")
                .unwrap_err()
                .contains("u64")
        );
    }

    #[test]
    fn missing_value_names_the_key() {
        let err = syn::parse_str::<KeyValue<kw::chunk, Expr>>("chunk")
            .err()
            .unwrap();
        assert_eq!(err.to_string(), "`chunk` needs a value: write `chunk = …`");
    }

    #[test]
    fn unknown_keys_list_the_known_ones() {
        let parser = |input: ParseStream| {
            let lookahead = input.lookahead1();
            if lookahead.peek(kw::chunk) || lookahead.peek(kw::name) {
                Ok(())
            } else {
                Err(unknown_key(input, lookahead, "`#[x(...)]`"))
            }
        };
        let err = parser.parse_str("chunkk = 3").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown key `chunkk` in `#[x(...)]`; expected `chunk` or `name`"
        );
    }

    #[test]
    fn crate_paths_must_be_absolute() {
        for (src, ok) in [
            ("crate = ::batch", true),
            ("crate = crate::b", true),
            ("crate = batch", false),
        ] {
            let mut errors = Errors::default();
            let parsed: KeyValue<Token![crate], Path> = syn::parse_str(src).unwrap();
            assert_eq!(crate_path(&mut errors, &parsed).is_some(), ok, "{src}");
            assert_eq!(errors.finish().is_ok(), ok, "{src}");
        }
    }
}
