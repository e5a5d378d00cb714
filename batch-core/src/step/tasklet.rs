//! Tasklet steps: one piece of work called until it says FINISHED, each call in its
//! own transaction (Spring Batch's `TaskletStep` with a plain `Tasklet`).

use std::future::Future;
use std::marker::PhantomData;

use crate::context::{ExecutionContext, JobContext};
use crate::error::{Error, Result};
use crate::execution::{Contribution, ExitStatus};
use crate::item::StepIdentity;
use crate::repeat::{RepeatContext, RepeatStatus};
use crate::repository::{BoxFuture, ChunkTx};
use crate::step::boundary::{ChunkBoundary, StepIteration, StepRunner, StepRuntime, repeat_step};
use crate::step::output::StepOutput;
use crate::step::scope::{StepFactory, StepScope};

/// What a tasklet call gets: the step ExecutionContext, the call's transaction and
/// counters it may add to.
pub struct TaskletContext<'a> {
    context: &'a mut ExecutionContext,
    exit_status: &'a mut ExitStatus,
    tx: &'a mut ChunkTx,
    contribution: &'a mut Contribution,
    identity: &'a StepIdentity,
    job_context: &'a JobContext,
}

impl TaskletContext<'_> {
    /// The step ExecutionContext; what is put here is saved when the call commits.
    pub fn step_context(&mut self) -> &mut ExecutionContext {
        self.context
    }

    /// The job ExecutionContext, shared with the job's other steps: what is put here is
    /// saved when the step ends (completed or failed) and handed to a restart.
    pub fn job_context(&self) -> &JobContext {
        self.job_context
    }

    /// The call's transaction on the repository database.
    pub fn transaction(&mut self) -> &mut ChunkTx {
        self.tx
    }

    /// The transaction as a SQLite connection (an error on other repositories).
    #[cfg(feature = "sqlite")]
    pub fn sqlite(&mut self) -> Result<&mut sqlx::SqliteConnection> {
        self.tx.sqlite()
    }

    /// The transaction as a PostgreSQL connection (an error on other repositories).
    #[cfg(feature = "postgres")]
    pub fn postgres(&mut self) -> Result<&mut sqlx::PgConnection> {
        self.tx.postgres()
    }

    /// The transaction as a MySQL/MariaDB connection (an error on other repositories).
    #[cfg(feature = "mysql")]
    pub fn mysql(&mut self) -> Result<&mut sqlx::MySqlConnection> {
        self.tx.mysql()
    }

    /// Sets the step's exit status (Spring's `contribution.setExitStatus`): a custom
    /// code such as `ExitStatus::new("NOTHING_TO_DO")` routes the flow by its
    /// transitions. It is combined with the step's own status when the step ends, the
    /// more severe code winning (a custom code wins over COMPLETED).
    pub fn set_exit_status(&mut self, status: ExitStatus) {
        *self.exit_status = status;
    }

    /// Counters this call adds to the step (READ_COUNT, WRITE_COUNT, …).
    pub fn contribution(&mut self) -> &mut Contribution {
        self.contribution
    }

    /// Who is running.
    pub fn identity(&self) -> &StepIdentity {
        self.identity
    }
}

/// A unit of work; returning [`RepeatStatus::Continuable`] asks to be called again.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a tasklet",
    label = "this must implement `Tasklet`",
    note = "use a closure, `tasklet(|cx: &mut TaskletContext<'_>| Ok(RepeatStatus::Finished))`, or for async work `async_tasklet(|cx| Box::pin(async move {{ … }}))`, or implement `Tasklet`; a chunk step needs `chunk = N` in `#[step]`"
)]
pub trait Tasklet: StepOutput + Send {
    /// One call; [`RepeatStatus::Continuable`] asks to be called again, each call in
    /// its own transaction.
    fn execute(
        &mut self,
        cx: &mut TaskletContext<'_>,
    ) -> impl Future<Output = Result<RepeatStatus>> + Send;
}

// Not recommended in errors: a closure returning an async block is then reported as
// "not a tasklet", with the trait's note naming `async_tasklet`, rather than as
// rustc's bare return-type mismatch.
#[diagnostic::do_not_recommend]
impl<F, E> Tasklet for F
where
    F: FnMut(&mut TaskletContext<'_>) -> std::result::Result<RepeatStatus, E> + Send,
    E: Into<Error>,
{
    fn execute(
        &mut self,
        cx: &mut TaskletContext<'_>,
    ) -> impl Future<Output = Result<RepeatStatus>> + Send {
        std::future::ready(self(cx).map_err(Into::into))
    }
}

impl<T: Tasklet> StepOutput for T {}

pub(crate) struct TaskletRunner<F, T> {
    factory: StepFactory<F>,
    _types: PhantomData<fn() -> T>,
}

impl<F, T> TaskletRunner<F, T> {
    pub(crate) fn new(factory: F) -> Self {
        Self {
            factory: StepFactory::new(factory),
            _types: PhantomData,
        }
    }
}

impl<F, Fut, T> StepRunner for TaskletRunner<F, T>
where
    F: FnMut(StepScope) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T>> + Send + 'static,
    T: Tasklet + 'static,
{
    fn run<'a>(&'a self, scope: StepScope, mut rt: StepRuntime<'a>) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let job_context = scope.job_context().clone();
            let mut tasklet = self.factory.call(scope).await?;
            let mut calls = TaskletCalls {
                tasklet: &mut tasklet,
                job_context: &job_context,
            };
            repeat_step(&mut calls, &mut rt).await
        })
    }
}

/// The tasklet's turns of the step loop: one call each.
struct TaskletCalls<'a, T> {
    tasklet: &'a mut T,
    job_context: &'a JobContext,
}

impl<T: Tasklet> StepIteration for TaskletCalls<'_, T> {
    fn iterate(
        &mut self,
        _: &RepeatContext,
        rt: &mut StepRuntime<'_>,
    ) -> impl Future<Output = Result<RepeatStatus>> + Send {
        call_once(self.tasklet, rt, self.job_context)
    }
}

async fn call_once<T: Tasklet>(
    tasklet: &mut T,
    rt: &mut StepRuntime<'_>,
    job_context: &JobContext,
) -> Result<RepeatStatus> {
    let boundary = ChunkBoundary::begin(rt);
    let mut tx = match rt.repository.begin_chunk().await {
        Ok(tx) => tx,
        Err(e) => {
            return Err(boundary
                .rollback(rt, None, &Contribution::default(), e.into())
                .await);
        }
    };
    let mut contribution = Contribution::default();
    let result = tasklet
        .execute(&mut TaskletContext {
            context: &mut rt.execution.context,
            exit_status: &mut rt.execution.exit_status,
            tx: &mut tx,
            contribution: &mut contribution,
            identity: rt.identity,
            job_context,
        })
        .await;
    match result {
        Ok(status) => {
            boundary.commit(rt, tx, &contribution, Ok(())).await?;
            Ok(status)
        }
        Err(e) => Err(boundary.rollback(rt, Some(tx), &contribution, e).await),
    }
}
