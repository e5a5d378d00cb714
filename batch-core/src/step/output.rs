//! What a step function builds: the parts of a chunk step or a tasklet.

use crate::error::{Error, Result};

/// What a step function builds: the parts of a chunk step or a tasklet. It keeps
/// [`IntoStepOutput`] unambiguous (a `Result` is never a step's parts), and needs no
/// implementing by hand: every [`Tasklet`](crate::step::tasklet::Tasklet) and every
/// chunk spec has it.
pub trait StepOutput {}

/// Lets a step function return its parts either plainly or in a `Result`.
#[diagnostic::on_unimplemented(
    message = "a step function must return its parts (a chunk step or a tasklet), or a `Result` of them whose error converts into `batch::Error`",
    label = "`{Self}` is neither",
    note = "an error type converts when it implements `std::error::Error + Send + Sync + 'static`"
)]
pub trait IntoStepOutput<X> {
    /// The parts, or the error the step function returned.
    fn into_step_output(self) -> Result<X>;
}

impl<X: StepOutput> IntoStepOutput<X> for X {
    fn into_step_output(self) -> Result<X> {
        Ok(self)
    }
}

impl<X: StepOutput, E: Into<Error>> IntoStepOutput<X> for std::result::Result<X, E> {
    fn into_step_output(self) -> Result<X> {
        self.map_err(Into::into)
    }
}
