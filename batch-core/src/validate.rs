//! Parameter rules of a job: which keys it requires and which it accepts (Spring's
//! `DefaultJobParametersValidator`), and a trait for validators of one's own. Checked
//! by the launcher before any row is written, so that a misspelled key is refused as
//! a usage error instead of being silently ignored.

use std::fmt;

use crate::params::JobParameters;

/// Checks a launch's parameters before the launch writes anything.
pub trait JobParametersValidator: Send + Sync {
    /// `Err` refuses the launch (the command-line runner exits 2).
    fn validate(&self, parameters: &JobParameters) -> Result<(), InvalidParameters>;
}

impl<F> JobParametersValidator for F
where
    F: Fn(&JobParameters) -> Result<(), InvalidParameters> + Send + Sync,
{
    fn validate(&self, parameters: &JobParameters) -> Result<(), InvalidParameters> {
        self(parameters)
    }
}

/// The keys a job requires and the keys it also accepts. Once a job declares its
/// keys, a key that is neither is refused, with the nearest known key suggested
/// (`failat`: did you mean `fail.at`?).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParameterRules {
    required: Vec<String>,
    optional: Vec<String>,
}

impl ParameterRules {
    /// No keys yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keys every launch must give.
    pub fn required<S: Into<String>>(mut self, keys: impl IntoIterator<Item = S>) -> Self {
        self.required.extend(keys.into_iter().map(Into::into));
        self
    }

    /// Keys a launch may give.
    pub fn optional<S: Into<String>>(mut self, keys: impl IntoIterator<Item = S>) -> Self {
        for key in keys.into_iter().map(Into::into) {
            if !self.required.contains(&key) && !self.optional.contains(&key) {
                self.optional.push(key);
            }
        }
        self
    }

    /// Every key the rules know, required first.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.required
            .iter()
            .chain(&self.optional)
            .map(String::as_str)
    }

    fn known(&self) -> Vec<String> {
        self.keys().map(str::to_owned).collect()
    }
}

impl JobParametersValidator for ParameterRules {
    fn validate(&self, parameters: &JobParameters) -> Result<(), InvalidParameters> {
        if let Some(key) = self.required.iter().find(|k| parameters.get(k).is_none()) {
            return Err(InvalidParameters::Missing {
                key: key.clone(),
                known: self.known(),
            });
        }
        for (key, _) in parameters.iter() {
            if !self.keys().any(|k| k == key) {
                return Err(InvalidParameters::Unknown {
                    key: key.to_owned(),
                    suggestion: nearest(key, self.keys()).map(str::to_owned),
                    known: self.known(),
                });
            }
        }
        Ok(())
    }
}

/// Why a launch's parameters were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidParameters {
    /// A required key is missing.
    #[error("the required parameter `{key}` is missing; {}", Known(known))]
    Missing {
        /// The key.
        key: String,
        /// The keys the job knows.
        known: Vec<String>,
    },
    /// A key the job does not declare.
    #[error(
        "unknown parameter `{key}`{}; {}",
        Suggestion(suggestion),
        Known(known)
    )]
    Unknown {
        /// The key.
        key: String,
        /// The nearest known key, when one is near.
        suggestion: Option<String>,
        /// The keys the job knows.
        known: Vec<String>,
    },
    /// A validator of the job's own refused them.
    #[error("{0}")]
    Rejected(String),
}

struct Known<'a>(&'a [String]);

impl fmt::Display for Known<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("the job takes no parameters");
        }
        f.write_str("the job's parameters are ")?;
        for (i, k) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "`{k}`")?;
        }
        Ok(())
    }
}

struct Suggestion<'a>(&'a Option<String>);

impl fmt::Display for Suggestion<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(s) => write!(f, " (did you mean `{s}`?)"),
            None => Ok(()),
        }
    }
}

/// The known key nearest to `key` by edit distance, when it is near enough to be a
/// slip (at most a third of the key's length, at least one edit).
fn nearest<'a>(key: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (key.chars().count() / 3).max(1);
    known
        .map(|k| (distance(&key.to_lowercase(), &k.to_lowercase()), k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_name_the_key_and_suggest() {
        let rules = ParameterRules::new()
            .required(["input"])
            .optional(["fail.at", "pause.ms"]);
        let ok = JobParameters::new()
            .with("input", "a")
            .with("fail.at", 3i64);
        assert_eq!(rules.validate(&ok), Ok(()));
        let missing = rules.validate(&JobParameters::new()).unwrap_err();
        assert!(
            missing.to_string().contains("`input` is missing"),
            "{missing}"
        );
        let typo = rules
            .validate(&JobParameters::new().with("input", "a").with("failat", 3i64))
            .unwrap_err();
        let text = typo.to_string();
        assert!(text.contains("did you mean `fail.at`?"), "{text}");
        assert!(text.contains("`input`, `fail.at`, `pause.ms`"), "{text}");
        let far = rules
            .validate(&JobParameters::new().with("input", "a").with("zzz", 1i64))
            .unwrap_err();
        assert!(!far.to_string().contains("did you mean"), "{far}");
    }
}
