//! Collecting errors instead of stopping at the first one.
//!
//! A user who misspells two keys and repeats a third should learn about all three in
//! one build, so every check pushes into an [`Errors`] and the expansion looks at the
//! collection once, at the end.

use proc_macro2::TokenStream;
use quote::ToTokens;
use std::fmt::Display;

#[derive(Default)]
pub(crate) struct Errors {
    errors: Vec<syn::Error>,
}

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        self.errors.push(error);
    }

    /// An error underlining `tokens` (from their first to their last token).
    pub(crate) fn at(&mut self, tokens: impl ToTokens, message: impl Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    /// All collected errors as one `syn::Error`, or `Ok` when there were none.
    pub(crate) fn finish(self) -> syn::Result<()> {
        let mut errors = self.errors.into_iter();
        match errors.next() {
            None => Ok(()),
            Some(mut first) => {
                first.extend(errors);
                Err(first)
            }
        }
    }
}

/// A setting that may be given at most once.
///
/// Every key of every attribute goes through this one type, so the duplicate check and
/// its message cannot drift apart between keys.
pub(crate) struct Once<T> {
    /// Where the key is written, for the message: "`#[step(...)]`".
    place: &'static str,
    /// The fix: "remove one of them", or for a list key, where its entries go
    /// (`{key}` stands for the key's name).
    fix: &'static str,
    value: Option<T>,
}

impl<T> Once<T> {
    pub(crate) fn new(place: &'static str) -> Self {
        Once {
            place,
            fix: "remove one of them",
            value: None,
        }
    }

    /// A key whose value is a list (`retry(A, B, limit = 3)`): a second occurrence is
    /// told to move its entries into the first, rather than to be removed.
    pub(crate) fn list(place: &'static str) -> Self {
        Once {
            fix: "write all its entries in one `{key}(...)`",
            ..Once::new(place)
        }
    }

    /// Whether the key was given, valid or not.
    pub(crate) fn is_set(&self) -> bool {
        self.value.is_some()
    }

    /// Stores `value`, or reports a duplicate at `at`. The key is named after the first
    /// token of `at`, which is the keyword itself for a `key = value` pair.
    pub(crate) fn set(&mut self, errors: &mut Errors, at: impl ToTokens, value: T) {
        if self.value.is_some() {
            let tokens = at.into_token_stream();
            let key = first_token(&tokens);
            errors.at(
                tokens,
                format!(
                    "duplicate `{key}` in {place}: it may be given only once; {fix}",
                    place = self.place,
                    fix = self.fix.replace("{key}", &key),
                ),
            );
        } else {
            self.value = Some(value);
        }
    }

    pub(crate) fn get(self) -> Option<T> {
        self.value
    }
}

fn first_token(tokens: &TokenStream) -> String {
    tokens
        .clone()
        .into_iter()
        .next()
        .map(|token| token.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    #[test]
    fn errors_are_combined_in_order() {
        let mut errors = Errors::default();
        errors.at(quote!(a), "first");
        errors.at(quote!(b), "second");
        let messages: Vec<String> = errors
            .finish()
            .unwrap_err()
            .into_iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(messages, ["first", "second"]);
    }

    #[test]
    fn once_reports_the_second_setting() {
        let mut errors = Errors::default();
        let mut chunk = Once::new("`#[step(...)]`");
        chunk.set(&mut errors, quote!(chunk = 3), 3);
        chunk.set(&mut errors, quote!(chunk = 4), 4);
        assert_eq!(chunk.get(), Some(3));
        let error = errors.finish().unwrap_err();
        assert_eq!(
            error.to_string(),
            "duplicate `chunk` in `#[step(...)]`: it may be given only once; remove one of them"
        );
    }
}
