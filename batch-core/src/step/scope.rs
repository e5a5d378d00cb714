//! What a step's factory can draw on when the step starts: job parameters, the restored
//! contexts, shared resources (Spring's `@StepScope`), and the argument types that
//! `#[step]` functions take.

use std::any::{Any, TypeId, type_name};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::context::{ContextState, ExecutionContext, JobContext};
use crate::error::{Error, Result};
use crate::item::StepIdentity;
use crate::params::{FromParamValue, JobParameters};

/// Shared values a launcher hands to every step (a connection pool, an HTTP client),
/// looked up by type.
#[derive(Clone, Default)]
pub struct Resources {
    map: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl fmt::Debug for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resources")
            .field("count", &self.map.len())
            .finish()
    }
}

impl Resources {
    /// Adds `value`, replacing one of the same type.
    pub fn insert<T: Clone + Send + Sync + 'static>(&mut self, value: T) {
        self.map.insert(TypeId::of::<T>(), Arc::new(value));
    }

    /// Whether a resource of this type was given.
    pub fn has(&self, type_id: TypeId) -> bool {
        self.map.contains_key(&type_id)
    }

    /// A clone of the value of type `T`, if there is one.
    pub fn get<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.map
            .get(&TypeId::of::<T>())
            .and_then(|v| v.downcast_ref::<T>())
            .cloned()
    }
}

struct ScopeInner {
    identity: StepIdentity,
    parameters: JobParameters,
    job_context: JobContext,
    step_context: ExecutionContext,
    resources: Resources,
    restart: bool,
}

/// What a step's factory can draw on when the step starts.
#[derive(Clone)]
pub struct StepScope {
    inner: Arc<ScopeInner>,
}

impl fmt::Debug for StepScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepScope")
            .field("step", &self.inner.identity.step_name)
            .finish()
    }
}

/// A step argument was not available or not convertible.
#[derive(Debug, thiserror::Error)]
#[error("step `{step}`: {problem}")]
pub struct InjectionError {
    /// The step's name.
    pub step: String,
    /// What was missing or wrong.
    pub problem: String,
}

impl StepScope {
    pub(crate) fn new(
        identity: StepIdentity,
        parameters: JobParameters,
        job_context: JobContext,
        step_context: ExecutionContext,
        resources: Resources,
        restart: bool,
    ) -> Self {
        Self {
            inner: Arc::new(ScopeInner {
                identity,
                parameters,
                job_context,
                step_context,
                resources,
                restart,
            }),
        }
    }

    /// The job parameter `name` as a `T`; a missing or unconvertible parameter is an
    /// error naming the step, the parameter, its value and what was expected.
    pub fn param<T: FromParamValue>(&self, name: &str) -> Result<T> {
        self.inner.parameters.get_as(name).map_err(|e| {
            Error::new(InjectionError {
                step: self.inner.identity.step_name.clone(),
                problem: e.to_string(),
            })
        })
    }

    /// Every job parameter of the launch.
    pub fn parameters(&self) -> &JobParameters {
        &self.inner.parameters
    }

    /// The step ExecutionContext as the step starts: on a restart, what the failed
    /// execution saved.
    pub fn step_context(&self) -> &ExecutionContext {
        &self.inner.step_context
    }

    /// The job ExecutionContext, shared with the job: what the step (or any part it
    /// hands a clone of the handle to) puts there is saved when the step ends and
    /// seen by the steps after it.
    pub fn job_context(&self) -> &JobContext {
        &self.inner.job_context
    }

    /// Who is running.
    pub fn identity(&self) -> &StepIdentity {
        &self.inner.identity
    }

    /// The launcher's shared resources, for what runs a part of the step elsewhere
    /// (a partition on its own task).
    pub(crate) fn resources(&self) -> &Resources {
        &self.inner.resources
    }

    /// Whether this execution restarts a failed or stopped one.
    pub fn is_restart(&self) -> bool {
        self.inner.restart
    }

    /// The shared value of type `T` given to the launcher; an error naming the type
    /// when there is none.
    pub fn resource<T: Clone + Send + Sync + 'static>(&self) -> Result<T> {
        self.inner.resources.get::<T>().ok_or_else(|| {
            Error::new(InjectionError {
                step: self.inner.identity.step_name.clone(),
                problem: format!(
                    "needs a shared resource of type `{}`, but the launcher has none; add it with `JobLauncher::resource`",
                    type_name::<T>()
                ),
            })
        })
    }
}

/// A value a step function can take as an argument.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be injected into a step function",
    label = "this type is not injectable",
    note = "mark a job parameter with `#[param]`, or take `ExecutionContext`, `State<T>`, `Res<T>`, `JobParameters`, `StepIdentity` or `StepScope`"
)]
pub trait FromStepScope: Sized {
    /// The value, or an error naming what is missing.
    fn from_scope(scope: &StepScope) -> Result<Self>;

    /// The shared resource this argument needs from the launcher, if any: checked
    /// before a launch writes anything, so a missing one is a usage error rather than
    /// a failed step.
    fn resource_need() -> Option<ResourceNeed> {
        None
    }
}

/// A shared resource a step needs from its launcher (a `Res<T>` argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceNeed {
    /// The resource's type.
    pub type_id: TypeId,
    /// Its name, for messages.
    pub type_name: &'static str,
}

impl ResourceNeed {
    /// The need of a resource of type `T`.
    pub fn of<T: 'static>() -> Self {
        Self {
            type_id: TypeId::of::<T>(),
            type_name: type_name::<T>(),
        }
    }
}

impl FromStepScope for StepScope {
    fn from_scope(scope: &StepScope) -> Result<Self> {
        Ok(scope.clone())
    }
}

impl FromStepScope for JobParameters {
    fn from_scope(scope: &StepScope) -> Result<Self> {
        Ok(scope.parameters().clone())
    }
}

/// The step ExecutionContext as the step starts.
impl FromStepScope for ExecutionContext {
    fn from_scope(scope: &StepScope) -> Result<Self> {
        Ok(scope.step_context().clone())
    }
}

impl FromStepScope for StepIdentity {
    fn from_scope(scope: &StepScope) -> Result<Self> {
        Ok(scope.identity().clone())
    }
}

/// Typed state restored from the step ExecutionContext (see `#[derive(ExecutionContext)]`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct State<T>(pub T);

impl<T: ContextState> FromStepScope for State<T> {
    fn from_scope(scope: &StepScope) -> Result<Self> {
        Ok(State(scope.step_context().load::<T>()?))
    }
}

impl<T> std::ops::Deref for State<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// A shared resource registered with the launcher.
#[derive(Debug, Clone)]
pub struct Res<T>(pub T);

impl<T: Clone + Send + Sync + 'static> FromStepScope for Res<T> {
    fn from_scope(scope: &StepScope) -> Result<Self> {
        scope.resource::<T>().map(Res)
    }

    fn resource_need() -> Option<ResourceNeed> {
        Some(ResourceNeed::of::<T>())
    }
}

impl<T> std::ops::Deref for Res<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// A step's factory as the runners hold it: `FnMut`, so a factory may keep state
/// between runs or move a value out of what it captured (see [`Once`]). Each call is
/// made under a lock, released before the future it returns is awaited.
pub(crate) struct StepFactory<F>(std::sync::Mutex<F>);

impl<F> StepFactory<F> {
    pub(crate) fn new(factory: F) -> Self {
        Self(std::sync::Mutex::new(factory))
    }

    /// Calls the factory; a factory that panicked in an earlier call is called again
    /// all the same (the panic failed that step, not this one).
    pub(crate) fn call<Fut>(&self, scope: StepScope) -> Fut
    where
        F: FnMut(StepScope) -> Fut,
    {
        let mut factory = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (factory)(scope)
    }
}

/// A value a step's factory moves into the step's first run: an input that is not
/// `Clone` (a channel, a file handle, a big buffer), with no `Mutex<Option<…>>`. A
/// second run of the step in the same process finds it taken and fails with
/// [`InputTaken`], naming the step.
///
/// ```
/// # use batch_core::prelude::*;
/// # use batch_core::step::{Once, StepBuilder};
/// let mut input = Once::new("import", vec![String::from("a"), String::from("b")]);
/// let step = StepBuilder::new("import").chunk_size(10).chunk(move |_scope| {
///     let records = input.take();
///     async move { Ok(read_write(ListReader::new(records?), writer(|_: &[String]| Ok(())))) }
/// });
/// ```
pub struct Once<T> {
    step: String,
    value: Option<T>,
}

impl<T> Once<T> {
    /// `value`, for the first run of step `step`.
    pub fn new(step: impl Into<String>, value: T) -> Self {
        Self {
            step: step.into(),
            value: Some(value),
        }
    }

    /// The value, the first time; [`InputTaken`] after.
    pub fn take(&mut self) -> Result<T> {
        self.value.take().ok_or_else(|| {
            Error::new(InputTaken {
                step: self.step.clone(),
            })
        })
    }
}

/// A step's [`Once`] input was already used by an earlier run in this process.
#[derive(Debug, thiserror::Error)]
#[error(
    "step `{step}` was given its input once and an earlier run in this process used it; give the step a fresh input (build the job again) to run it again"
)]
pub struct InputTaken {
    /// The step.
    pub step: String,
}
