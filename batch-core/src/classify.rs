//! Classifying errors by type: the Rust answer to Spring's exception-class lists.
//!
//! A rule matches an error when an error of its type appears in the error's `source()`
//! chain: wrapping plays the part subclassing plays in Java. When rules match at
//! several depths, the one nearest the outside of the chain wins, as the nearest
//! superclass wins in Spring. The wildcard `*` (Java's `Exception`) matches every
//! error but only decides when no typed rule matches at any depth.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use crate::error::Error;

type Predicate = Arc<dyn Fn(&(dyn StdError + 'static)) -> bool + Send + Sync>;

/// Matches errors of one type (optionally only some values of it), or any error.
#[derive(Clone)]
pub struct ErrorMatcher {
    name: Arc<str>,
    predicate: Option<Predicate>,
}

impl fmt::Debug for ErrorMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl ErrorMatcher {
    /// Errors of type `T`.
    pub fn of<T: StdError + 'static>() -> Self {
        Self::custom(short_type_name::<T>(), |e| e.is::<T>())
    }

    /// Errors of type `T` for which `pred` holds (an enum variant, say).
    pub fn when<T: StdError + 'static>(
        name: impl Into<String>,
        pred: impl Fn(&T) -> bool + Send + Sync + 'static,
    ) -> Self {
        Self::custom(name, move |e| e.downcast_ref::<T>().is_some_and(&pred))
    }

    /// Any error (`*`).
    pub fn any() -> Self {
        Self {
            name: "*".into(),
            predicate: None,
        }
    }

    /// A matcher from a predicate on one error of the chain.
    pub fn custom(
        name: impl Into<String>,
        pred: impl Fn(&(dyn StdError + 'static)) -> bool + Send + Sync + 'static,
    ) -> Self {
        Self {
            name: name.into().into(),
            predicate: Some(Arc::new(pred)),
        }
    }

    /// The name errors are reported under (the type's short name, or `*`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this is `*`, which decides only when no typed rule matches.
    pub fn is_wildcard(&self) -> bool {
        self.predicate.is_none()
    }

    /// Whether this matcher matches the error at any depth.
    pub fn matches(&self, error: &Error) -> bool {
        match &self.predicate {
            None => true,
            Some(p) => error.chain().any(|e| p(e)),
        }
    }
}

fn short_type_name<T>() -> String {
    let full = std::any::type_name::<T>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base).to_owned()
}

/// Rules mapping matched errors to values, with a default for unmatched errors.
#[derive(Clone, Debug)]
pub struct Classifier<T> {
    rules: Vec<(ErrorMatcher, T)>,
    default: T,
}

impl<T: Clone + Default> Default for Classifier<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T: Clone> Classifier<T> {
    /// A classifier with no rules: every error classifies as `default`.
    pub fn new(default: T) -> Self {
        Self {
            rules: Vec::new(),
            default,
        }
    }

    /// Adds a rule, builder style: errors `matcher` matches classify as `value`.
    pub fn rule(mut self, matcher: ErrorMatcher, value: T) -> Self {
        self.rules.push((matcher, value));
        self
    }

    /// Adds a rule in place; later rules win over earlier ones at the same depth.
    pub fn push(&mut self, matcher: ErrorMatcher, value: T) {
        self.rules.push((matcher, value));
    }

    /// Whether there are no rules (every error then gets the default).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The value of the rule matching nearest the outside of the chain; among rules
    /// matching at the same depth, the one declared last wins (so a `no_retry` listed
    /// after `retry` overrides it). Wildcards decide only when nothing typed matched.
    pub fn classify(&self, error: &Error) -> T {
        self.find(error)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| self.default.clone())
    }

    /// The matching rule, if any.
    pub fn find(&self, error: &Error) -> Option<(&ErrorMatcher, &T)> {
        for e in error.chain() {
            let hit = self
                .rules
                .iter()
                .rev()
                .find(|(m, _)| m.predicate.as_ref().is_some_and(|p| p(e)));
            if let Some((m, v)) = hit {
                return Some((m, v));
            }
        }
        self.rules
            .iter()
            .rev()
            .find(|(m, _)| m.is_wildcard())
            .map(|(m, v)| (m, v))
    }
}

impl Classifier<bool> {
    /// `true` for `yes`, `false` for `no` (which wins where both match at one depth),
    /// `false` otherwise: the shape of a retry, skip or rollback list.
    pub fn binary(yes: &[ErrorMatcher], no: &[ErrorMatcher]) -> Self {
        let mut c = Self::new(false);
        for m in yes {
            c.push(m.clone(), true);
        }
        for m in no {
            c.push(m.clone(), false);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("inner")]
    struct Inner;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    enum Api {
        #[error("timeout")]
        Timeout,
        #[error("bad request")]
        BadRequest,
    }

    #[test]
    fn the_nearest_match_wins_and_wildcards_come_last() {
        let e = Error::from(Outer(Inner));
        let c = Classifier::new("none")
            .rule(ErrorMatcher::any(), "any")
            .rule(ErrorMatcher::of::<Inner>(), "inner")
            .rule(ErrorMatcher::of::<Outer>(), "outer");
        assert_eq!(c.classify(&e), "outer");
        let c = Classifier::new("none")
            .rule(ErrorMatcher::any(), "any")
            .rule(ErrorMatcher::of::<Inner>(), "inner");
        assert_eq!(
            c.classify(&e),
            "inner",
            "a type in the chain beats the wildcard"
        );
        assert_eq!(c.classify(&Error::msg("x")), "any");
        assert_eq!(Classifier::new("none").classify(&e), "none");
    }

    #[test]
    fn no_wins_at_the_same_depth_and_variants_can_be_named() {
        let retry = Classifier::binary(
            &[ErrorMatcher::of::<Api>()],
            &[ErrorMatcher::when::<Api>("Api::BadRequest", |a| {
                matches!(a, Api::BadRequest)
            })],
        );
        assert!(retry.classify(&Error::from(Api::Timeout)));
        assert!(!retry.classify(&Error::from(Api::BadRequest)));
        assert_eq!(ErrorMatcher::of::<Api>().name(), "Api");
    }
}
