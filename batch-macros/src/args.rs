//! Building blocks shared by the attribute parsers: `key = value` pairs and `key(…)`
//! lists that remember their keyword, comma-separated parsing that survives a malformed
//! entry, the unknown-key message, and checks that turn a parsed value into the typed
//! value an expansion needs (integers, strings, flags, durations, the crate path).
//!
//! Values are parsed as whole expressions and checked afterwards rather than parsed as
//! the expected literal directly: `chunk = "3"` then still parses, and the check can
//! say "write `chunk = 3`" next to every other mistake in the attribute instead of
//! stopping at syn's bare "expected integer literal".

use crate::errors::Errors;
use crate::runtime::Runtime;
use proc_macro2::{TokenStream, TokenTree};
use quote::{ToTokens, quote};
use std::fmt::Display;
use std::str::FromStr;
use syn::ext::IdentExt;
use syn::parse::discouraged::Speculative;
use syn::parse::{Lookahead1, Parse, ParseStream};
use syn::token::Paren;
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

/// Parses `item, item, …` like [`comma_separated`], but does not stop at the first
/// malformed item: its error is recorded and parsing resumes after the next comma, so
/// that one build reports every mistake in the attribute (a misspelt key and a bad
/// value further on, say).
///
/// Each item is parsed on a fork and the stream only advances past items that parsed.
/// A failed item may have left a nested group half-read; on the fork that is dropped
/// with it, whereas on the real stream syn would turn it into an "unexpected token"
/// error replacing everything collected here.
pub(crate) fn comma_separated_recovering<T: Parse>(
    input: ParseStream,
    errors: &mut Vec<syn::Error>,
) -> Vec<T> {
    let mut items = Vec::new();
    while !input.is_empty() {
        let fork = input.fork();
        match fork.parse::<T>() {
            Ok(item) if fork.is_empty() || fork.peek(Token![,]) => {
                input.advance_to(&fork);
                items.push(item);
            }
            Ok(_) => {
                // The item parsed but something other than a comma follows it:
                // `chunk = 3 name = "x"`.
                input.advance_to(&fork);
                errors.push(input.error("expected `,`"));
                skip_to_comma(input);
            }
            Err(error) => {
                errors.push(error);
                skip_to_comma(input);
            }
        }
        if input.is_empty() {
            break;
        }
        // Only a comma can be next after `skip_to_comma` or a successful item.
        let _ = input.parse::<Token![,]>();
    }
    items
}

/// Moves past every token up to (not including) the next comma at this nesting level.
fn skip_to_comma(input: ParseStream) {
    let _ = input.step(|cursor| {
        let mut rest = *cursor;
        while let Some((tt, next)) = rest.token_tree() {
            if matches!(&tt, TokenTree::Punct(p) if p.as_char() == ',') {
                break;
            }
            rest = next;
        }
        Ok(((), rest))
    });
}

/// `key(item, item, …)`: a key whose value is a list, such as
/// `retry(TerminationFailed, limit = 3)`. Items are parsed with recovery; their
/// errors wait in `errors` until validation reports them with everything else.
pub(crate) struct KeyList<K, T> {
    pub(crate) key: K,
    pub(crate) paren: Paren,
    pub(crate) items: Vec<T>,
    pub(crate) errors: Vec<syn::Error>,
    /// The list as written, for spans that cover the whole key.
    tokens: TokenStream,
}

impl<K: Parse + ToTokens, T: Parse> KeyList<K, T> {
    /// Parses `key(…)`. `form` is how the key is written, for the error when the
    /// parentheses are missing: `retry(TimeoutError, limit = 3)`.
    pub(crate) fn parse_with(input: ParseStream, form: &str) -> syn::Result<Self> {
        let key: K = input.parse()?;
        if !input.peek(Paren) {
            let name = key.to_token_stream();
            let at = if input.peek(Token![=]) {
                let eq: Token![=] = input.parse()?;
                let value: TokenStream = match input.fork().parse::<Expr>() {
                    Ok(expr) => expr.into_token_stream(),
                    Err(_) => TokenStream::new(),
                };
                quote!(#key #eq #value)
            } else {
                key.to_token_stream()
            };
            return Err(syn::Error::new_spanned(
                at,
                format!("`{name}` takes a list in parentheses: write `{form}`"),
            ));
        }
        let content;
        let paren = syn::parenthesized!(content in input);
        let tokens = content.fork().parse::<TokenStream>()?;
        let mut errors = Vec::new();
        let items = comma_separated_recovering(&content, &mut errors);
        Ok(KeyList {
            key,
            paren,
            items,
            errors,
            tokens,
        })
    }
}

impl<K: ToTokens, T> ToTokens for KeyList<K, T> {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        self.key.to_tokens(tokens);
        self.paren
            .surround(tokens, |inner| inner.extend(self.tokens.clone()));
    }
}

/// The error for a key that no branch accepted. Lookahead's own message lists the known
/// keys ("expected one of: `chunk`, `name`, …") and stays right as keys are added; this
/// adds which word was not understood and where.
pub(crate) fn unknown_key(input: ParseStream, lookahead: Lookahead1, place: &str) -> syn::Error {
    unknown_word(input, lookahead, &format!("key `{{}}` in {place}"))
}

/// Like [`unknown_key`] for other words: `what` describes the word, with `{}` where
/// it goes ("backoff `{}`").
pub(crate) fn unknown_word(input: ParseStream, lookahead: Lookahead1, what: &str) -> syn::Error {
    let expected = lookahead.error();
    match input.fork().call(Ident::parse_any) {
        Ok(word) => syn::Error::new(
            word.span(),
            format!(
                "unknown {}; {expected}",
                what.replace("{}", &word.to_string())
            ),
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

/// A duration written as a string literal, read at compile time: a whole number and
/// a unit, `"500ms"`, `"30s"`, `"5m"`, `"1h"`. Returns milliseconds.
///
/// `form` is how the value is written, with `{}` where the literal goes
/// (`timeout = {}`, `fixed({})`), for the fix in messages.
pub(crate) fn duration(errors: &mut Errors, value: &Expr, form: &str) -> Option<u64> {
    let with = |literal: &str| form.replace("{}", literal);
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => match parse_duration(&s.value()) {
            Ok(millis) => Some(millis),
            Err(DurationError::Fraction { millis }) => {
                errors.at(
                    s,
                    format!(
                        "`{}` is not a whole number of its unit: write `{}`",
                        s.to_token_stream(),
                        with(&format!("\"{millis}ms\""))
                    ),
                );
                None
            }
            Err(DurationError::NoUnit(n)) => {
                errors.at(
                    s,
                    format!(
                        "`{}` has no unit: write `{}` or `{}`",
                        s.to_token_stream(),
                        with(&format!("\"{n}ms\"")),
                        with(&format!("\"{n}s\""))
                    ),
                );
                None
            }
            Err(problem) => {
                let problem = match problem {
                    DurationError::UnknownUnit(unit) => format!("has an unknown unit `{unit}`"),
                    DurationError::TooLong => "is too long for a duration".to_owned(),
                    _ => "is not a duration".to_owned(),
                };
                errors.at(
                    s,
                    format!(
                        "`{}` {problem}: write a whole number followed by `ms`, `s`, `m` or \
                         `h`, as in `{}` or `{}`",
                        s.to_token_stream(),
                        with("\"500ms\""),
                        with("\"30s\"")
                    ),
                );
                None
            }
        },
        Expr::Lit(ExprLit {
            lit: Lit::Int(n), ..
        }) => {
            errors.at(
                value,
                format!(
                    "a duration is a string with its unit: write `{}` or `{}`",
                    with(&format!("\"{}ms\"", n.base10_digits())),
                    with(&format!("\"{}s\"", n.base10_digits())),
                ),
            );
            None
        }
        other => {
            errors.at(
                other,
                format!(
                    "a duration is a string literal such as `{}`, read when the macro runs; \
                     constants and expressions are not accepted here",
                    with("\"30s\"")
                ),
            );
            None
        }
    }
}

#[derive(Debug, PartialEq)]
enum DurationError {
    /// Not a number and a unit at all (`"30 secs"`, `""`).
    Malformed,
    /// A number alone (`"30"`).
    NoUnit(u64),
    /// A number and a word that is not a unit (`"5min"`).
    UnknownUnit(String),
    /// A fraction (`"1.5s"`); `millis` is what it means when that is whole.
    Fraction {
        millis: u64,
    },
    TooLong,
}

/// `"500ms"` → 500 (milliseconds).
fn parse_duration(text: &str) -> Result<u64, DurationError> {
    let digits = text.len() - text.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let (number, unit) = text.split_at(digits);
    if number.is_empty() {
        return Err(DurationError::Malformed);
    }
    let number: u64 = number.parse().map_err(|_| DurationError::TooLong)?;
    let factor = |unit: &str| match unit {
        "ms" => Some(1u64),
        "s" => Some(1_000),
        "m" => Some(60_000),
        "h" => Some(3_600_000),
        _ => None,
    };
    if unit.is_empty() {
        return Err(DurationError::NoUnit(number));
    }
    if let Some(factor) = factor(unit) {
        return number.checked_mul(factor).ok_or(DurationError::TooLong);
    }
    // `1.5s`: say what it is in milliseconds when that is a whole number.
    if let Some(rest) = unit.strip_prefix('.') {
        let fraction_digits =
            rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let (fraction, unit) = rest.split_at(fraction_digits);
        if let (Some(factor), Ok(value)) =
            (factor(unit), format!("{number}.{fraction}").parse::<f64>())
        {
            let millis = value * factor as f64;
            if millis.fract() == 0.0 && millis < u64::MAX as f64 {
                return Err(DurationError::Fraction {
                    millis: millis as u64,
                });
            }
        }
        return Err(DurationError::Malformed);
    }
    if unit.chars().all(|c| c.is_ascii_alphabetic()) {
        Err(DurationError::UnknownUnit(unit.to_owned()))
    } else {
        Err(DurationError::Malformed)
    }
}

/// Tokens as a person would write them (`ApiError::Timeout { .. }`, not
/// `ApiError :: Timeout { .. }`), for messages and for names shown at run time.
pub(crate) fn pretty(tokens: &impl ToTokens) -> String {
    let mut text = tokens.to_token_stream().to_string();
    for (from, to) in [
        (" :: ", "::"),
        (":: ", "::"),
        (" ::", "::"),
        (" : ", ": "),
        (" < ", "<"),
        ("< ", "<"),
        (" >", ">"),
        (" (", "("),
        ("( ", "("),
        (" )", ")"),
        (" ,", ","),
        ("& ", "&"),
    ] {
        text = text.replace(from, to);
    }
    text
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
    fn durations_are_read_at_compile_time() {
        assert_eq!(parse_duration("500ms"), Ok(500));
        assert_eq!(parse_duration("2s"), Ok(2_000));
        assert_eq!(parse_duration("1m"), Ok(60_000));
        assert_eq!(parse_duration("1h"), Ok(3_600_000));
        assert_eq!(parse_duration("0s"), Ok(0));
        assert_eq!(parse_duration("30"), Err(DurationError::NoUnit(30)));
        assert_eq!(parse_duration("30 s"), Err(DurationError::Malformed));
        assert_eq!(parse_duration("30 secs"), Err(DurationError::Malformed));
        assert_eq!(
            parse_duration("5min"),
            Err(DurationError::UnknownUnit("min".to_owned()))
        );
        assert_eq!(parse_duration("s"), Err(DurationError::Malformed));
        assert_eq!(parse_duration(""), Err(DurationError::Malformed));
        assert_eq!(
            parse_duration("1.5s"),
            Err(DurationError::Fraction { millis: 1_500 })
        );
        assert_eq!(parse_duration("0.5ms"), Err(DurationError::Malformed));
        assert_eq!(
            parse_duration("99999999999999999h"),
            Err(DurationError::TooLong)
        );
        assert_eq!(
            parse_duration("99999999999999999999s"),
            Err(DurationError::TooLong)
        );

        let mut errors = Errors::default();
        let lit: Expr = syn::parse_str("30").unwrap();
        assert_eq!(duration(&mut errors, &lit, "timeout = {}"), None);
        assert_eq!(
            errors.finish().unwrap_err().to_string(),
            "a duration is a string with its unit: write `timeout = \"30ms\"` or `timeout = \"30s\"`"
        );
    }

    #[test]
    fn tokens_print_as_written() {
        let pat: syn::Pat = syn::Pat::parse_single
            .parse_str("ApiError::Http { status: 500, .. }")
            .unwrap();
        assert_eq!(pretty(&pat), "ApiError::Http { status: 500, .. }");
        let pat: syn::Pat = syn::Pat::parse_single
            .parse_str("::api::ApiError::Timeout(..)")
            .unwrap();
        assert_eq!(pretty(&pat), "::api::ApiError::Timeout(..)");
        let ty: syn::Type = syn::parse_str("std::io::Error").unwrap();
        assert_eq!(pretty(&ty), "std::io::Error");
        let ty: syn::Type = syn::parse_str("Wrapper<Inner, u8>").unwrap();
        assert_eq!(pretty(&ty), "Wrapper<Inner, u8>");
    }

    #[test]
    fn recovery_reports_every_malformed_item() {
        let parser = |input: ParseStream| {
            let mut errors = Vec::new();
            let items: Vec<KeyValue<kw::chunk, Expr>> =
                comma_separated_recovering(input, &mut errors);
            Ok((items.len(), errors))
        };
        let (parsed, errors) = parser
            .parse_str("chunk = 1, name = 2, chunk = (3 4), chunk = 5 chunk = 6, chunk = 7")
            .unwrap();
        let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(parsed, 2, "{errors:?}");
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert_eq!(errors[0], "expected `chunk`");
        assert_eq!(errors[2], "expected `,`");
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
