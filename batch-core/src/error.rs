//! One error type that carries any source error.
//!
//! Step code returns `Result<_, E>` for any `E: std::error::Error + Send + Sync`; `?`
//! turns it into [`Error`] without losing it, so classification (retry, skip, no
//! rollback) can walk the source chain and find the type the policy names. Wrapping an
//! error plays the part that subclassing plays in Java.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Any error raised while running a job, with its source chain intact.
///
/// `Error` deliberately does not implement [`std::error::Error`] itself, so that every
/// error type converts into it with `?` (the same trade-off `anyhow::Error` makes).
/// Use [`Error::as_std`] where a `&dyn std::error::Error` is needed.
pub struct Error {
    inner: BoxError,
}

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps any error.
    pub fn new<E: StdError + Send + Sync + 'static>(error: E) -> Self {
        Self {
            inner: Box::new(error),
        }
    }

    /// An error made of a message alone.
    pub fn msg(message: impl fmt::Display) -> Self {
        Self::new(Message(message.to_string()))
    }

    /// The outermost error.
    pub fn as_std(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.inner
    }

    /// The outermost error and then each `source()`, outermost first. A [`Cause`] in
    /// the chain is seen through: the error it holds stands in its place, so a user's
    /// error kept as the cause of a framework error is found by its own type.
    pub fn chain(&self) -> impl Iterator<Item = &(dyn StdError + 'static)> {
        fn see_through<'a>(e: &'a (dyn StdError + 'static)) -> &'a (dyn StdError + 'static) {
            match e.downcast_ref::<Cause>() {
                Some(cause) => cause.0.as_std(),
                None => e,
            }
        }
        let first: &(dyn StdError + 'static) = &*self.inner;
        std::iter::successors(Some(see_through(first)), |e: &&(dyn StdError + 'static)| {
            (*e).source().map(see_through)
        })
    }

    /// The nearest error of type `T` in the chain, outermost first.
    pub fn find<T: StdError + 'static>(&self) -> Option<&T> {
        self.chain().find_map(|e| e.downcast_ref::<T>())
    }

    /// Whether an error of type `T` appears anywhere in the chain.
    pub fn is<T: StdError + 'static>(&self) -> bool {
        self.find::<T>().is_some()
    }

    /// Takes the outermost error back if it is a `T`.
    pub fn downcast<T: StdError + 'static>(self) -> std::result::Result<T, Self> {
        match self.inner.downcast::<T>() {
            Ok(e) => Ok(*e),
            Err(inner) => Err(Self { inner }),
        }
    }

    /// The message and every cause, joined by ": " (the form stored in EXIT_MESSAGE).
    /// A cause whose text the error above it already printed (as many library errors
    /// embed their source's text) is left out, so each cause reads once.
    pub fn report(&self) -> String {
        let mut out = String::new();
        let mut above = String::new();
        for e in self.chain() {
            let text = e.to_string();
            if above.contains(&text) {
                continue;
            }
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
            above = text;
        }
        out
    }

    /// Wraps this error as the source of a new message.
    pub fn context(self, message: impl fmt::Display) -> Self {
        Self::new(Contextual {
            message: message.to_string(),
            source: self.inner,
        })
    }
}

impl<E: StdError + Send + Sync + 'static> From<E> for Error {
    fn from(error: E) -> Self {
        Self::new(error)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            return fmt::Debug::fmt(&self.inner, f);
        }
        f.write_str(&self.report())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            f.write_str(&self.report())
        } else {
            fmt::Display::fmt(&self.inner, f)
        }
    }
}

impl AsRef<dyn StdError + Send + Sync> for Error {
    fn as_ref(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.inner
    }
}

impl From<Error> for Box<dyn StdError + Send + Sync + 'static> {
    fn from(error: Error) -> Self {
        error.inner
    }
}

#[derive(Debug)]
struct Message(String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for Message {}

#[derive(Debug)]
struct Contextual {
    message: String,
    source: BoxError,
}

impl fmt::Display for Contextual {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for Contextual {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.source)
    }
}

/// Adds a message in front of an error, keeping it as the source.
pub trait Context<T> {
    /// Wraps the error in `message`, keeping it as the source.
    fn context(self, message: impl fmt::Display) -> Result<T>;
    /// As [`context`](Self::context), building the message only on error.
    fn with_context<M: fmt::Display>(self, message: impl FnOnce() -> M) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
    fn context(self, message: impl fmt::Display) -> Result<T> {
        self.map_err(|e| e.into().context(message))
    }

    fn with_context<M: fmt::Display>(self, message: impl FnOnce() -> M) -> Result<T> {
        self.map_err(|e| e.into().context(message()))
    }
}

/// The cause of a framework error (retries used up, the skip limit reached, a failed
/// attempt): the user's [`Error`], shared, as the `source()` of the framework's own
/// error. [`Error::chain`] sees through it, so classification, [`Error::find`] and
/// [`Error::report`] meet the user's error itself, with its type and its own causes.
#[derive(Clone)]
pub struct Cause(Arc<Error>);

impl Cause {
    /// The error this cause holds.
    pub fn error(&self) -> &Error {
        &self.0
    }
}

impl From<Error> for Cause {
    fn from(error: Error) -> Self {
        Self(Arc::new(error))
    }
}

impl From<Arc<Error>> for Cause {
    fn from(error: Arc<Error>) -> Self {
        Self(error)
    }
}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.0.as_std(), f)
    }
}

impl StdError for Cause {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0.as_std().source()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_is_seen_through_by_type_and_printed_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("terminator is busy")]
        struct Busy;
        #[derive(Debug, thiserror::Error)]
        #[error("processing item 3 of a chunk of 500 failed")]
        struct Effect(#[source] Cause);
        let error = Error::new(Effect(Cause::from(Error::new(Busy).context("calling"))));
        assert!(error.is::<Busy>() && error.is::<Effect>());
        assert_eq!(
            error.report(),
            "processing item 3 of a chunk of 500 failed: calling: terminator is busy"
        );
    }

    #[test]
    fn a_cause_already_in_its_effects_text_is_printed_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("error communicating with database: {0}")]
        struct Embeds(#[source] std::io::Error);
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let report = Error::new(Embeds(io))
            .context("opening the repository")
            .report();
        assert_eq!(
            report,
            "opening the repository: error communicating with database: Connection refused"
        );
        assert_eq!(report.matches("Connection refused").count(), 1);
    }

    #[derive(Debug, thiserror::Error)]
    #[error("terminator failed")]
    struct TerminationFailed;

    #[derive(Debug, thiserror::Error)]
    #[error("writer error")]
    struct WriterError(#[source] TerminationFailed);

    #[test]
    fn finds_a_type_anywhere_in_the_chain_and_reports_every_cause() {
        let e = Error::from(WriterError(TerminationFailed)).context("chunk 3");
        assert!(e.is::<TerminationFailed>());
        assert!(e.is::<WriterError>());
        assert_eq!(e.report(), "chunk 3: writer error: terminator failed");
        assert_eq!(e.to_string(), "chunk 3");
        assert_eq!(e.chain().count(), 3);
    }
}
