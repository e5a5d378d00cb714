//! The ExecutionContext: key → JSON value state that survives a restart.
//!
//! There is one per job execution and one per step execution. It is stored as JSON in
//! SHORT_CONTEXT, or, when the JSON is longer than 2500 characters, in
//! SERIALIZED_CONTEXT with an abbreviated SHORT_CONTEXT, as Spring Batch does.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// The length of the SHORT_CONTEXT column.
pub const SHORT_CONTEXT_LENGTH: usize = 2500;

/// The job ExecutionContext as a running step sees it: shared by the step's parts
/// (factory, reader, processor, writer, tasklet; clone the handle freely), readable and
/// writable while the step runs, as Spring's
/// `stepExecution.getJobExecution().getExecutionContext()`. What the step puts here
/// is saved when the step ends, whether it completed or failed, and a restart of the
/// job finds it in its own job context.
#[derive(Debug, Clone, Default)]
pub struct JobContext(std::sync::Arc<std::sync::Mutex<ExecutionContext>>);

impl JobContext {
    /// A handle on `context`.
    pub fn new(context: ExecutionContext) -> Self {
        Self(std::sync::Arc::new(std::sync::Mutex::new(context)))
    }

    fn with<T>(&self, f: impl FnOnce(&mut ExecutionContext) -> T) -> T {
        // A panic while the lock was held (in a serializer) leaves the map whole.
        let mut guard = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard)
    }

    /// Reads a value; `Ok(None)` when the key is absent.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, ContextError> {
        self.with(|c| c.get(key))
    }

    /// Stores a value, saved with the job context when the step ends.
    pub fn put<T: Serialize + ?Sized>(
        &self,
        key: impl Into<String>,
        value: &T,
    ) -> Result<(), ContextError> {
        self.with(|c| c.put(key, value))
    }

    /// Removes a key, returning its value.
    pub fn remove(&self, key: &str) -> Option<Value> {
        self.with(|c| c.remove(key))
    }

    /// Whether the key is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.with(|c| c.contains_key(key))
    }

    /// A copy of the context as it stands.
    pub fn snapshot(&self) -> ExecutionContext {
        self.with(|c| c.clone())
    }
}

/// A context row that cannot be read back, or a value of the wrong shape.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// A stored value does not deserialize as the type asked for.
    #[error("execution context key `{key}` holds {found}, which cannot be read as {expected}")]
    WrongType {
        /// The key asked for.
        key: String,
        /// The stored value, abbreviated.
        found: String,
        /// The type asked for.
        expected: &'static str,
        /// Why deserializing failed.
        source: serde_json::Error,
    },
    /// A stored context row is not JSON.
    #[error("stored execution context of {owner} is not valid JSON; the row starts with `{start}`")]
    Corrupt {
        /// The row it was read from ("step execution 12").
        owner: String,
        /// The row's first characters, to recognise it by.
        start: String,
        /// Why parsing failed.
        source: serde_json::Error,
    },
    /// A stored context row is JSON, but not an object of keys.
    #[error("stored execution context of {owner} is JSON but not an object: `{start}`")]
    NotAnObject {
        /// The row it was read from.
        owner: String,
        /// The row's first characters.
        start: String,
    },
    /// A stored context row whose SHORT_CONTEXT is not the beginning of its
    /// SERIALIZED_CONTEXT: one of the two was changed without the other, and which one
    /// holds the truth cannot be told.
    #[error(
        "stored execution context of {owner} is inconsistent: {row} has a SHORT_CONTEXT that is not the beginning of its SERIALIZED_CONTEXT; mend the row (SHORT_CONTEXT holds the first 2492 characters of SERIALIZED_CONTEXT followed by \" ...\")"
    )]
    Inconsistent {
        /// The row it was read from ("step execution 12").
        owner: String,
        /// The table and key of the row.
        row: String,
    },
    /// A value given to `put` has no JSON form (a map with non-string keys, say).
    #[error("value for execution context key `{key}` cannot be stored as JSON")]
    Unserializable {
        /// The key it was to be stored under.
        key: String,
        /// Why serializing failed.
        source: serde_json::Error,
    },
}

/// Key → JSON value, with a flag telling whether it changed since it was last saved.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExecutionContext {
    map: Map<String, Value>,
    dirty: bool,
}

impl ExecutionContext {
    /// An empty context, not dirty.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores a value; the context becomes dirty only if the value changed.
    pub fn put<T: Serialize + ?Sized>(
        &mut self,
        key: impl Into<String>,
        value: &T,
    ) -> Result<(), ContextError> {
        let key = key.into();
        let value = serde_json::to_value(value).map_err(|source| ContextError::Unserializable {
            key: key.clone(),
            source,
        })?;
        self.put_value(key, value);
        Ok(())
    }

    /// Stores a JSON value as is; like [`put`](Self::put), dirty only if it changed.
    pub fn put_value(&mut self, key: impl Into<String>, value: Value) {
        let key = key.into();
        if self.map.get(&key) != Some(&value) {
            self.map.insert(key, value);
            self.dirty = true;
        }
    }

    /// Reads a value; `Ok(None)` when the key is absent.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, ContextError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => T::deserialize(v)
                .map(Some)
                .map_err(|source| ContextError::WrongType {
                    key: key.to_owned(),
                    found: abbreviate(&v.to_string(), 60),
                    expected: std::any::type_name::<T>(),
                    source,
                }),
        }
    }

    /// The raw JSON value of a key, for values of no fixed type.
    pub fn get_value(&self, key: &str) -> Option<&Value> {
        self.map.get(key)
    }

    /// Whether the key is present (even when it holds `null`).
    pub fn contains_key(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// Removes a key; the context becomes dirty if it was present.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let old = self.map.remove(key);
        self.dirty |= old.is_some();
        old
    }

    /// Whether the context holds no keys.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// The keys and their JSON values, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.map.iter()
    }

    /// Whether the context changed since it was last saved; a repository uses this
    /// to skip writing an unchanged context at a chunk commit.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Marks the context as saved; a repository calls this once it has written it.
    pub fn clear_dirty(&mut self) {
        self.dirty = false;
    }

    /// The whole context as a JSON object.
    pub fn to_json(&self) -> Value {
        Value::Object(self.map.clone())
    }

    /// The serialized form.
    pub fn serialize(&self) -> String {
        serde_json::to_string(&self.map).expect("a JSON map always serializes")
    }

    /// `(SHORT_CONTEXT, SERIALIZED_CONTEXT)` by the 2500 rule: a JSON text longer than
    /// 2500 characters goes whole to SERIALIZED_CONTEXT and its first 2492 characters
    /// followed by " ..." to SHORT_CONTEXT.
    pub fn to_columns(&self) -> (String, Option<String>) {
        split_for_columns(self.serialize())
    }

    /// Reads the stored columns back; SERIALIZED_CONTEXT wins when present.
    /// `owner` names the row in errors ("step execution 12").
    pub fn from_columns(
        owner: &str,
        short: &str,
        serialized: Option<&str>,
    ) -> Result<Self, ContextError> {
        if let Some(long) = serialized.filter(|s| !s.is_empty()) {
            // Spring writes the whole text to both when it is short, and its beginning
            // followed by " ..." to SHORT_CONTEXT when it is long.
            let consistent = short == long
                || short
                    .strip_suffix(" ...")
                    .is_some_and(|start| long.starts_with(start));
            if !consistent {
                return Err(ContextError::Inconsistent {
                    owner: owner.to_owned(),
                    row: context_row(owner),
                });
            }
        }
        let text = serialized.filter(|s| !s.is_empty()).unwrap_or(short);
        let start = || abbreviate(text, 80);
        let value: Value = serde_json::from_str(text).map_err(|source| ContextError::Corrupt {
            owner: owner.to_owned(),
            start: start(),
            source,
        })?;
        match value {
            Value::Object(map) => Ok(Self { map, dirty: false }),
            _ => Err(ContextError::NotAnObject {
                owner: owner.to_owned(),
                start: start(),
            }),
        }
    }

    /// Loads typed state (see `#[derive(ExecutionContext)]`).
    pub fn load<S: ContextState>(&self) -> Result<S, ContextError> {
        S::load(self)
    }

    /// Stores typed state.
    pub fn store<S: ContextState>(&mut self, state: &S) -> Result<(), ContextError> {
        state.store(self)
    }
}

pub(crate) fn split_for_columns(json: String) -> (String, Option<String>) {
    if json.chars().count() > SHORT_CONTEXT_LENGTH {
        let cut: String = json.chars().take(SHORT_CONTEXT_LENGTH - 8).collect();
        (format!("{cut} ..."), Some(json))
    } else {
        (json, None)
    }
}

/// The table and key of the context row of `owner` ("step execution 12").
pub(crate) fn context_row(owner: &str) -> String {
    let (table, column, id) = if let Some(id) = owner.strip_prefix("step execution ") {
        ("BATCH_STEP_EXECUTION_CONTEXT", "STEP_EXECUTION_ID", id)
    } else if let Some(id) = owner.strip_prefix("job execution ") {
        ("BATCH_JOB_EXECUTION_CONTEXT", "JOB_EXECUTION_ID", id)
    } else {
        return owner.to_owned();
    };
    format!("the row of {table} with {column} = {id}")
}

/// A step could not open on the context it was given (a value of the wrong shape for
/// its reader, writer or typed state): the step fails and its context is not saved
/// again, so the row named here is the one to mend before the next restart.
#[derive(Debug, thiserror::Error)]
#[error("the step could not open on its stored context, {row}; mend that row and restart")]
pub struct ContextNotOpened {
    /// The table and key of the row.
    pub row: String,
    /// What the step's parts found.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

impl ContextNotOpened {
    /// Names the row of step execution `step_execution_id` in `error` when the step
    /// failed to open because its context holds a value it cannot read.
    pub(crate) fn wrap(error: crate::error::Error, step_execution_id: i64) -> crate::error::Error {
        if !error.is::<ContextError>() {
            return error;
        }
        crate::error::Error::new(Self {
            row: context_row(&format!("step execution {step_execution_id}")),
            source: error.into(),
        })
    }
}

fn abbreviate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(max).collect();
        format!("{cut}…")
    }
}

/// Typed state kept in an [`ExecutionContext`], one key per field.
///
/// Usually derived: `#[derive(ExecutionContext)]` on a struct whose fields are
/// `Serialize + DeserializeOwned` generates both methods; a field's key is its name,
/// or the one given with `#[context(key = "current.index")]`. A missing key leaves the
/// field at its `Default`.
pub trait ContextState: Sized {
    /// The keys this state occupies.
    const KEYS: &'static [&'static str];
    /// Reads the state's keys; a missing key leaves its field at its `Default`.
    fn load(ctx: &ExecutionContext) -> Result<Self, ContextError>;
    /// Writes every field to its key.
    fn store(&self, ctx: &mut ExecutionContext) -> Result<(), ContextError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_marks_dirty_only_on_change() {
        let mut ctx = ExecutionContext::new();
        ctx.put("current.index", &2).unwrap();
        assert!(ctx.is_dirty());
        ctx.clear_dirty();
        ctx.put("current.index", &2).unwrap();
        assert!(!ctx.is_dirty());
        ctx.put("current.index", &3).unwrap();
        assert!(ctx.is_dirty());
        assert_eq!(ctx.get::<i64>("current.index").unwrap(), Some(3));
    }

    #[test]
    fn the_2500_rule() {
        let mut ctx = ExecutionContext::new();
        ctx.put("k", &"x".repeat(2000)).unwrap();
        let (short, long) = ctx.to_columns();
        assert!(long.is_none());
        assert_eq!(short, ctx.serialize());

        // 2500 characters exactly still fits.
        let mut exact = ExecutionContext::new();
        exact
            .put("k", &"x".repeat(2500 - r#"{"k":""}"#.len()))
            .unwrap();
        assert_eq!(exact.serialize().chars().count(), 2500);
        assert!(exact.to_columns().1.is_none());

        ctx.put("k", &"é".repeat(3000)).unwrap();
        let (short, long) = ctx.to_columns();
        let long = long.expect("long context goes to SERIALIZED_CONTEXT");
        assert_eq!(long, ctx.serialize());
        assert_eq!(short.chars().count(), 2496);
        assert!(short.ends_with(" ..."));
        let back = ExecutionContext::from_columns("t", &short, Some(&long)).unwrap();
        assert_eq!(
            back.get::<String>("k").unwrap().unwrap().chars().count(),
            3000
        );
    }

    #[test]
    fn corrupt_rows_and_wrong_types_name_the_problem() {
        let e = ExecutionContext::from_columns("step execution 7", "{not json", None).unwrap_err();
        assert!(e.to_string().contains("step execution 7"), "{e}");
        assert!(e.to_string().contains("{not json"), "{e}");
        let e = ExecutionContext::from_columns("job execution 1", "[1,2]", None).unwrap_err();
        assert!(e.to_string().contains("not an object"), "{e}");
        let mut ctx = ExecutionContext::new();
        ctx.put("current.index", &"two").unwrap();
        let e = ctx.get::<u32>("current.index").unwrap_err();
        assert!(e.to_string().contains("`current.index`"), "{e}");
    }

    #[test]
    fn a_short_context_that_disagrees_with_the_serialized_one_is_refused() {
        let mut ctx = ExecutionContext::new();
        ctx.put("k", &"x".repeat(3000)).unwrap();
        let (short, long) = ctx.to_columns();
        let long = long.unwrap();
        assert!(ExecutionContext::from_columns("step execution 4", &short, Some(&long)).is_ok());
        let changed = long.replace("\"k\"", "\"j\"");
        let e =
            ExecutionContext::from_columns("step execution 4", &short, Some(&changed)).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("BATCH_STEP_EXECUTION_CONTEXT") && text.contains("STEP_EXECUTION_ID = 4"),
            "{text}"
        );
        let e = ExecutionContext::from_columns("job execution 9", r#"{"a":1}"#, Some(r#"{"a":2}"#))
            .unwrap_err();
        assert!(e.to_string().contains("JOB_EXECUTION_ID = 9"), "{e}");
        // Spring's short rows: the whole text in both columns.
        assert!(ExecutionContext::from_columns("t", r#"{"a":1}"#, Some(r#"{"a":1}"#)).is_ok());
    }
}
